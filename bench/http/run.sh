#!/usr/bin/env bash
# Runs BenchmarkWhoami against a PostgreSQL and a Redis of its own, started
# the way ../../test.sh starts them (temporary directories, free loopback
# ports, PostgreSQL as the postgres user when root), and stops them after.
# Extra arguments go to go test, e.g.:
#
#   bench/http/run.sh -count 3 -benchtime 3s
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d /tmp/cordon-bench-http.XXXXXX)
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
cleanup() {
  [ -f "$tmp/redis.pid" ] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true
  [ -d "$tmp/pg" ] && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$tmp/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

pgport=$(freeport)
mkdir -p "$tmp/pg" "$tmp/pgsock"
[ "$(id -u)" = 0 ] && chown postgres "$tmp/pg" "$tmp/pgsock"
chmod 755 "$tmp"
"${as_pg[@]}" "$pgbin/initdb" -D "$tmp/pg" -U postgres -A trust --no-sync >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$tmp/pg" -l "$tmp/pg/server.log" -w \
  -o "-p $pgport -k $tmp/pgsock -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
export CORDON_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"

redisport=$(freeport)
redis-server --port "$redisport" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log" --dir "$tmp"
for _ in $(seq 50); do redis-cli -p "$redisport" ping >/dev/null 2>&1 && break; sleep 0.1; done
export CORDON_TEST_REDIS="redis://127.0.0.1:$redisport/0"

go test -run '^$' -bench BenchmarkWhoami "$@" .
