#!/usr/bin/env bash
# Usage: bench/http/wrk.sh [ROUNDS [SECONDS]]
# `cordon demo` (its defaults: SQLite behind the cache) and the plain
# net/http handler in ./bare, both answering GET /api/whoami with the same
# JSON body, loaded by wrk (one thread, 8 keep-alive connections) in
# alternating runs: ROUNDS rounds (default 3) of SECONDS seconds (default
# 5). For each run it prints the requests per second and the server's CPU
# time per request (from /proc), then the medians and the ratio of the
# demo's requests per second to the bare handler's in the same round. wrk
# and the server share the machine's cores, as a client on the same host
# would; wrk costs far less per request than a Go client, so the servers'
# own costs show.
#
# BASE=REV (a git revision) adds a third server, `cordon demo` built from
# REV, to every round, so that a change is measured before and after side
# by side against the same bare handler in one run (the machine is shared
# and its load varies: runs minutes apart do not compare).
#
# NETHTTP=1 adds `cordon demo -nethttp` (this build, every request served
# by net/http's server instead of the lean HTTP/1.1 loop) the same way.
set -euo pipefail
rounds=${1:-3}; secs=${2:-5}
cd "$(dirname "$0")"
tmp=$(mktemp -d /tmp/cordon-wrk.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/cordon" ../../cmd/cordon
go build -o "$tmp/bare" ./bare
servers=(bare demo)
if [ -n "${BASE:-}" ]; then
  mkdir "$tmp/base-src"
  git -C ../.. archive "$BASE" | tar -x -C "$tmp/base-src"
  (cd "$tmp/base-src" && go build -o "$tmp/cordon-base" ./cmd/cordon)
  servers+=(base)
fi
[ "${NETHTTP:-}" = 1 ] && servers+=(nethttp)
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
dport=$(freeport)
"$tmp/cordon" demo -addr "127.0.0.1:$dport" -db "$tmp/users.db" -log "$tmp/requests.log" > "$tmp/demo.out" 2>&1 & pids+=($!); demo=$!
"$tmp/bare" > "$tmp/bare.out" 2>&1 & pids+=($!); bare=$!
# signup PORT JAR: sign the bench user up on the demo at PORT.
signup() {
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/api/whoami" && break; sleep 0.1; done
  curl -s -c "$2" -H 'Content-Type: application/json' \
    -d '{"user":"bench","password":"a long enough password 123"}' "http://127.0.0.1:$1/api/signup" > /dev/null
  awk '$6 == "session" {print $7}' "$2"
}
cookie=$(signup "$dport" "$tmp/jar")
for _ in $(seq 100); do grep -q 'serving on' "$tmp/bare.out" && break; sleep 0.1; done
burl=$(sed -n 's/.*serving on //p' "$tmp/bare.out")api/whoami
durl="http://127.0.0.1:$dport/api/whoami"
[ -n "$cookie" ] || { echo "signup set no session cookie" >&2; exit 1; }
for u in "$burl" "$durl"; do
  curl -s -H "Cookie: session=$cookie" "$u" | grep -q '"user":"bench"' || { echo "$u does not answer whoami" >&2; exit 1; }
done
if [ -n "${BASE:-}" ]; then
  bport=$(freeport)
  "$tmp/cordon-base" demo -addr "127.0.0.1:$bport" -db "$tmp/base-users.db" -log "$tmp/base-requests.log" > "$tmp/base.out" 2>&1 & pids+=($!); base=$!
  bcookie=$(signup "$bport" "$tmp/base-jar")
  baseurl="http://127.0.0.1:$bport/api/whoami"
  curl -s -H "Cookie: session=$bcookie" "$baseurl" | grep -q '"user":"bench"' || { echo "$baseurl does not answer whoami" >&2; exit 1; }
fi
if [ "${NETHTTP:-}" = 1 ]; then
  nport=$(freeport)
  "$tmp/cordon" demo -nethttp -addr "127.0.0.1:$nport" -db "$tmp/nethttp-users.db" -log "$tmp/nethttp-requests.log" > "$tmp/nethttp.out" 2>&1 & pids+=($!); nethttp=$!
  ncookie=$(signup "$nport" "$tmp/nethttp-jar")
  nurl="http://127.0.0.1:$nport/api/whoami"
  curl -s -H "Cookie: session=$ncookie" "$nurl" | grep -q '"user":"bench"' || { echo "$nurl does not answer whoami" >&2; exit 1; }
fi
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| round | server | req/s | server CPU per request |"
echo "|---|---|---|---|"
for r in $(seq "$rounds"); do
  for which in "${servers[@]}"; do
    c=$cookie
    case $which in
    bare) pid=$bare; u=$burl ;;
    demo) pid=$demo; u=$durl ;;
    base) pid=$base; u=$baseurl; c=$bcookie ;;
    nethttp) pid=$nethttp; u=$nurl; c=$ncookie ;;
    esac
    a=$(cpu $pid)
    out=$(wrk -t1 -c8 -d"${secs}s" -H "Cookie: session=$c" "$u")
    b=$(cpu $pid)
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    us=$(echo "($b - $a) * 1000000 / $tck / $n" | bc -l)
    printf '| %d | %s | %.0f | %.1f µs |\n' "$r" "$which" "$rps" "$us"
    echo "$r $which $rps $us" >> "$tmp/runs"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp/runs" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for r, w, rps, us in rows:
    by.setdefault(w, []).append((int(r), float(rps), float(us)))
for w in by:
    print(f"median {w}: {st.median(x[1] for x in by[w]):.0f} req/s, {st.median(x[2] for x in by[w]):.1f} µs CPU per request")
for w in by:
    if w != "bare":
        ratios = [d[1] / b[1] for b, d in zip(by["bare"], by[w])]
        print(f"{w} / bare, requests per second, median of the rounds' ratios: {st.median(ratios):.2f}")
PY
