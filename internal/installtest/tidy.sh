#!/usr/bin/env bash
# Tidies every module of the tree (go mod tidy) against the tree itself:
# `go mod tidy` ignores go.work, and the version the modules require each
# other at is not published until it is tagged, so this serves the tree at
# that version from a local module proxy. go.sum keeps no entries for
# cordon's own modules (the workspace does not need them, and they would be
# checksums of unreleased zips).
#
#   internal/installtest/tidy.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
version=$(cordon_version)
tmp=$(mktemp -d /tmp/cordon-tidy.XXXXXX)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
mods=$(cd "$tree" && go work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p')
# Twice: a module's requirements depend on its siblings' tidied go.mod.
for pass in 1 2; do
  rm -rf "$tmp/proxy"
  build_proxy "$tmp/proxy" "$version"
  (
    use_proxy "$tmp/proxy" "$tmp/modcache"
    for m in $mods; do
      (cd "$tree/$m" && go mod tidy) || { echo "tidy.sh: go mod tidy failed in $m" >&2; exit 1; }
      [ ! -f "$tree/$m/go.sum" ] || sed -i '/^github\.com\/cordon-sec\/cordon[^ ]* /d' "$tree/$m/go.sum"
      [ -s "$tree/$m/go.sum" ] || rm -f "$tree/$m/go.sum"
    done
  )
done
