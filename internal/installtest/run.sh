#!/usr/bin/env bash
# The install test: cordon installed the way a stranger installs it.
#
# It serves every module of the tree, at the version the go.mod files
# require each other at, from a local module proxy (the tree zipped per
# module, as `go mod download` expects), and then, from empty modules
# outside the tree, with no workspace and a module cache of its own:
#
#   - `go get` the core: `go list -m all` must list nothing but the core;
#   - `go get` each store, adapter and sentryreport and build a program
#     with it; a store must not bring another store's driver;
#   - `go install github.com/cordon-sec/cordon/cmd/cordon@VERSION` and run it.
#
# Third-party modules come from this machine's module cache or else the
# usual proxy, checked against the checksum database as usual; only
# cordon's own, unpublished, modules are exempt (GONOSUMDB).
#
#   internal/installtest/run.sh        # ./test.sh runs it
set -euo pipefail
. "$(dirname "$0")/lib.sh"
version=$(cordon_version)
tmp=$(mktemp -d /tmp/cordon-installtest.XXXXXX)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
build_proxy "$tmp/proxy" "$version"
use_proxy "$tmp/proxy" "$tmp/modcache"
export GOFLAGS="$(go env GOFLAGS) -mod=mod -trimpath"
C=github.com/cordon-sec/cordon
fail=0

# consumer NAME MODULE... makes an empty module $tmp/NAME and go-gets the
# modules at $version into it.
consumer() {
  local name=$1; shift
  mkdir -p "$tmp/$name"
  cd "$tmp/$name"
  printf 'module example.com/%s\n\ngo 1.26\n' "$name" >go.mod
  local m
  for m in "$@"; do
    go get "$m@$version" >/dev/null 2>"$tmp/$name.log" || { cat "$tmp/$name.log" >&2; return 1; }
  done
}

# program NAME writes main.go (from stdin) and builds and runs it.
program() {
  cat >main.go
  go build -o prog . && ./prog
}

# without NAME PATTERN... fails if the module graph has a module matching
# one of the patterns.
without() {
  local name=$1 p mods; shift
  mods=$(go list -m all) # whole, then matched: see install_cmd on grep -q and pipefail
  for p in "$@"; do
    if grep -q -- "$p" <<<"$mods"; then
      echo "installtest: $name pulls in $(grep -- "$p" <<<"$mods" | head -n1)" >&2
      return 1
    fi
  done
}

check() {
  local what=$1; shift
  if ("$@"); then
    echo "ok   $what"
  else
    echo "FAIL $what" >&2
    fail=1
  fi
}

with_core() {
  consumer core "$C" || return 1
  local out
  out=$(program <<'GO'
package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
)

func main() {
	m := session.New(memstore.New(memstore.Options{}), session.Options{})
	defer m.Close()
	rec := httptest.NewRecorder()
	m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := session.From(r).Principal()
		fmt.Fprintf(w, "anonymous=%v", p == "")
	})).ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/", nil))
	fmt.Println(rec.Body.String())
}
GO
  ) || return 1
  [ "$out" = anonymous=true ] || { echo "installtest: the core program printed $out" >&2; return 1; }
  local all
  all=$(go list -m all)
  if [ "$all" != "$(printf 'example.com/core\n%s %s' "$C" "$version")" ]; then
    printf 'installtest: the core brings more than itself:\n%s\n' "$all" >&2
    return 1
  fi
}

# with_store NAME PKG FORBIDDEN...: a program that refers to PKG.Open.
with_store() {
  local name=$1 pkg=$2; shift 2
  consumer "$name" "$C" "$C/$pkg" || return 1
  program >/dev/null <<GO || return 1
package main

import (
	"fmt"

	"github.com/cordon-sec/cordon/$pkg"
)

var open = $name.Open

func main() { fmt.Println(open != nil) }
GO
  without "$name" chromedp prometheus "$@"
}

with_gin() {
  consumer gin "$C" "$C/adapters/ginsession" || return 1
  program >/dev/null <<'GO'
package main

import (
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/cordon-sec/cordon/adapters/ginsession"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
)

func main() {
	m := session.New(memstore.New(memstore.Options{}), session.Options{})
	defer m.Close()
	r := gin.New()
	r.Use(ginsession.Middleware(m))
	fmt.Println(len(r.Handlers))
}
GO
}

with_echo() {
  consumer echo "$C" "$C/adapters/echosession" || return 1
  program >/dev/null <<'GO'
package main

import (
	"fmt"

	"github.com/labstack/echo/v5"

	"github.com/cordon-sec/cordon/adapters/echosession"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
)

func main() {
	m := session.New(memstore.New(memstore.Options{}), session.Options{})
	defer m.Close()
	e := echo.New()
	e.Use(echosession.Middleware(m))
	fmt.Println(e != nil)
}
GO
}

with_sentry() {
  consumer sentry "$C" "$C/report/sentryreport" || return 1
  program >/dev/null <<'GO'
package main

import (
	"fmt"

	"github.com/cordon-sec/cordon/report"
	"github.com/cordon-sec/cordon/report/sentryreport"
)

func main() {
	var s report.Sink = sentryreport.New(nil)
	fmt.Println(s != nil)
}
GO
}

install_cmd() {
  mkdir -p "$tmp/install" && cd "$tmp/install"
  GOBIN="$tmp/bin" go install "$C/cmd/cordon@$version" 2>"$tmp/install.log" || { cat "$tmp/install.log" >&2; return 1; }
  # The output first, then the match: grep -q leaves the pipe as soon as it
  # matches, and a cordon still writing would die of SIGPIPE (a failure
  # under pipefail).
  local out
  out=$("$tmp/bin/cordon" help 2>&1 || true)
  grep -q '^usage: cordon' <<<"$out" || { printf '%s\n' "$out" >&2; return 1; }
}

check "go get $C@$version: builds, and the module graph is the core alone" with_core
check "sqlitestore: builds, no other driver" with_store sqlitestore store/sqlitestore jackc/pgx redis/go-redis
check "pgstore: builds, no other driver" with_store pgstore store/pgstore modernc.org/sqlite redis/go-redis
check "redisstore: builds, no other driver" with_store redisstore store/redisstore modernc.org/sqlite jackc/pgx
check "storeurl: builds" with_store storeurl store/storeurl
check "ginsession: builds" with_gin
check "echosession: builds" with_echo
check "sentryreport: builds" with_sentry
check "go install $C/cmd/cordon@$version" install_cmd
exit $fail
