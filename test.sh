#!/usr/bin/env bash
# Runs every test of every cordon module with the race detector.
#
# It installs what the tests need when it is missing (Debian's chromium,
# postgresql, redis-server, and unicorn, puma and ruby-rack for the proxy's tests
# against a non-Go app; it must run as root for that), starts
# PostgreSQL and Redis on temporary directories and free loopback ports,
# exports their addresses to the tests, and stops them when it ends.
#
#   ./test.sh                  # everything
#   ./test.sh ./session/...    # only these packages of the root module
#
# Environment the tests read:
#   CORDON_TEST_POSTGRES  postgres:// URL of a scratch database
#   CORDON_TEST_REDIS     redis:// URL of a scratch server
#   CORDON_CHROME         path of the chromium binary for browser tests
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD

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

tmp=$(mktemp -d /tmp/cordon-test.XXXXXX)
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
cleanup() {
  [ -f "$tmp/redis.pid" ] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true
  if [ -d "$tmp/pg" ]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$tmp/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# PostgreSQL refuses to run as root, so its files belong to the postgres user.
pgport=$(freeport)
mkdir -p "$tmp/pg" "$tmp/pgsock"
chown postgres "$tmp/pg" "$tmp/pgsock"
chmod 755 "$tmp"
runuser -u postgres -- "$pgbin/initdb" -D "$tmp/pg" -U postgres -A trust --no-sync >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$tmp/pg" -l "$tmp/pg/server.log" -w \
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
  # Every module in the tree: the library and the modules beside it.
  for mod in $(find . -name go.mod -not -path './_examples/*' -printf '%h\n' | sort); do
    echo "== go test -race ./... in $mod"
    (cd "$mod" && go vet ./... && "$tmp/cordonvet" -test=false ./... && go test -race ./...) || status=1
  done
  (cd cordonvet && ./golangci.sh && ./realcode.sh) || status=1 # cordonvet under golangci-lint on its corpus; over pinned public modules
fi
exit $status
