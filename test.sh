#!/usr/bin/env bash
# Runs every test of every cordon module with the race detector.
#
# It starts PostgreSQL and Redis on temporary directories and free loopback
# ports, exports their addresses to the tests, and stops them when it ends.
# When something the tests need is missing (Debian's chromium, postgresql,
# redis-server, and unicorn, puma and ruby-rack for the proxy's tests
# against a non-Go app), it installs it, which needs root; once they are
# installed it runs as any user (PostgreSQL then runs as that user; as
# root, as the postgres user, since PostgreSQL refuses to run as root).
#
#   ./test.sh                  # everything: every module of go.work, then the install test
#   ./test.sh ./session/...    # only these packages (of any module of the workspace)
#
# For every module that go.work uses, it runs go vet, cordonvet (over the
# non-test code) and go test -race ./...; then internal/installtest/run.sh,
# which installs cordon from a module proxy built from the tree, as a user
# outside the tree would.
#
# Environment the tests read:
#   CORDON_TEST_POSTGRES  postgres:// URL of a scratch database
#   CORDON_TEST_REDIS     redis:// URL of a scratch server
#   CORDON_CHROME         path of the chromium binary for browser tests
#   CORDON_TEST_PG_BIN, CORDON_TEST_PG_DATA  PostgreSQL's bin directory and
#                         the data directory of the scratch server
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD
# go.work ties the modules together: let the go command find it (tests that
# make modules of their own in temporary directories must not see it).
unset GOWORK

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -x "$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)/initdb" ] 2>/dev/null || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v unicorn >/dev/null 2>&1 || need+=(unicorn ruby-rack)
command -v puma >/dev/null 2>&1 || need+=(puma)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "test.sh: need root to apt-get install ${need[*]}; install them, then run again" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# PostgreSQL refuses to run as root: as root its files belong to the
# postgres user and it runs as that user; as anyone else, as the invoking user.
pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
tmp=$(mktemp -d /tmp/cordon-test.XXXXXX)
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
cleanup() {
  [ -f "$tmp/redis.pid" ] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true
  if [ -d "$tmp/pg" ]; then
    pg "$pgbin/pg_ctl" -D "$tmp/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

pgport=$(freeport)
mkdir -p "$tmp/pg" "$tmp/pgsock"
if [ "$(id -u)" = 0 ]; then
  chown postgres "$tmp/pg" "$tmp/pgsock"
  chmod 755 "$tmp"
fi
pg "$pgbin/initdb" -D "$tmp/pg" -U postgres -A trust --no-sync >/dev/null
pg "$pgbin/pg_ctl" -D "$tmp/pg" -l "$tmp/pg/server.log" -w \
  -o "-p $pgport -k $tmp/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
export CORDON_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"
export CORDON_TEST_PG_BIN="$pgbin" CORDON_TEST_PG_DATA="$tmp/pg"

redisport=$(freeport)
redis-server --port "$redisport" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log" --dir "$tmp"
for _ in $(seq 50); do redis-cli -p "$redisport" ping >/dev/null 2>&1 && break; sleep 0.1; done
export CORDON_TEST_REDIS="redis://127.0.0.1:$redisport/0"
export CORDON_CHROME=$(command -v chromium)

status=0
if [ $# -gt 0 ]; then
  go test -race "$@" || status=$?
else
  # cordonvet (docs/cordonvet.md) runs over every module's non-test code,
  # which must be clean: no request-scoped value may escape its request.
  go build -C cordonvet -o "$tmp/cordonvet" ./cmd/cordonvet || status=1
  # Every module of the workspace: the library and the modules beside it.
  for mod in $(go work edit -json | sed -n 's/^.*"DiskPath": "\(.*\)".*$/\1/p'); do
    echo "== go vet, cordonvet, go test -race ./... in $mod"
    (cd "$mod" && go vet ./... && "$tmp/cordonvet" -test=false ./... && go test -race ./...) || status=1
  done
  echo "== cordonvet under golangci-lint on its corpus, and over pinned public modules"
  (cd cordonvet && ./golangci.sh && ./realcode.sh) || status=1
  echo "== install test (internal/installtest/run.sh)"
  internal/installtest/run.sh || status=1
fi
exit $status
