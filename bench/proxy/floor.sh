#!/usr/bin/env bash
# CPU time per request at GET / of a bare Go reverse proxy
# (httputil.ReverseProxy, ./bareproxy: no guard, no request log) and of
# cordon proxy (guard on, request log written), interleaved, pinned as in
# run.sh (the app and wrk on CPU 0, the proxies on CPU 1).
#
#   bench/proxy/floor.sh          # 3 rounds of 8 s each
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d /tmp/cordon-floor.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/cordon" ./cmd/cordon
go build -C bench -o "$tmp/upstream" ./proxy/upstream
go build -C bench -o "$tmp/bareproxy" ./proxy/bareproxy
taskset -c 0 "$tmp/upstream" -listen 127.0.0.1:18180 & pids+=($!)
taskset -c 1 "$tmp/bareproxy" -listen 127.0.0.1:18182 -upstream http://127.0.0.1:18180 & bare=$!; pids+=($bare)
taskset -c 1 "$tmp/cordon" proxy -listen 127.0.0.1:18181 -upstream http://127.0.0.1:18180 -session-cookie sid \
  -log "$tmp/requests.log" 2>/dev/null & cordon=$!; pids+=($cordon)
sleep 1
hz=$(getconf CLK_TCK)
cookie="Cookie: __Host-cordon-dev=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'); sid=s"
for round in 1 2 3; do
  for t in bare:18182:$bare cordon:18181:$cordon; do
    IFS=: read -r name port pid <<<"$t"
    t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    out=$(taskset -c 0 wrk -t2 -c64 -d8s -H "$cookie" "http://127.0.0.1:$port/")
    t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    n=$(awk '/requests in/ { print $1 }' <<<"$out")
    printf 'round %d %-6s %8s req/s %6s us CPU/req RSS %s KiB\n' "$round" "$name" "$(awk '/Requests\/sec/ { print $2 }' <<<"$out")" \
      "$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$n" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')" "$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
