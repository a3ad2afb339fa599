# Shared by run.sh and tidy.sh (sourced, not run): the version the tree's
# modules require each other at, and a module proxy built from the tree.

# The root of the tree.
tree=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# cordon_version prints the one version at which the modules of the tree
# require each other, and fails if they disagree.
cordon_version() {
  local v
  v=$(cd "$tree" && git ls-files -co --exclude-standard -- '*go.mod' 2>/dev/null || find . -name go.mod)
  v=$(cd "$tree" && sed -n 's/^[[:space:]]*\(require[[:space:]]\)\{0,1\}github\.com\/cordon-sec\/cordon[a-z/]* \(v[^ ]*\).*/\2/p' $v | sort -u)
  if [ -z "$v" ] || [ "$(printf '%s\n' "$v" | wc -l)" != 1 ]; then
    echo "the modules require cordon at ${v:-no version} (want exactly one)" >&2
    return 1
  fi
  printf '%s\n' "$v"
}

# build_proxy DIR VERSION writes every module of the tree at VERSION into
# the proxy directory DIR.
build_proxy() {
  GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" go run -C "$tree/internal/installtest" . -root "$tree" -version "$2" -o "$1" >/dev/null
}

# use_proxy DIR DIR2 sets up the environment of a user outside the tree:
# no workspace, cordon's modules from the proxy DIR (not in the checksum
# database, since they are not published), third-party modules from this
# machine's module cache or else the usual proxy, and a module cache of
# its own in DIR2 so that nothing of the tree leaks into the real one.
use_proxy() {
  local cache
  cache=$(go env GOMODCACHE)
  export GOPROXY="file://$1,file://$cache/cache/download,$(go env GOPROXY)"
  export GOWORK=off GOTOOLCHAIN=local GONOSUMDB=github.com/cordon-sec/cordon
  export GOMODCACHE="$2"
}
