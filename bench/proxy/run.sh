#!/usr/bin/env bash
# Benchmarks `cordon proxy` against nginx and against no proxy at all, on
# loopback, in one run (results and method: RESULTS.md beside this file):
#
#   direct  wrk -> upstream
#   nginx   wrk -> nginx (Debian's; proxy_pass with upstream keep-alive) -> upstream
#   cordon  wrk -> cordon proxy (guard on, block mode, request log) -> upstream
#
# The upstream (./upstream) renews the presented session on every response,
# and wrk presents a device cookie and a session cookie, so cordon checks a
# binding on ingress and on egress of every request. The servers run pinned
# to one core, wrk to another. Each round measures the three paths back to
# back; the table gives the median of RUNS rounds, and the ratios are the
# medians of each round's ratios (side by side, the machine's noise cancels).
#
#   bench/proxy/run.sh                 # 3 rounds of 10 s per path
#   RUNS=5 DURATION=20s bench/proxy/run.sh
#
# Environment: RUNS (3), DURATION (10s), CONNS (64), THREADS (1),
# SERVER_CPUS (0), LOAD_CPUS (1), KEEP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
SERVER_CPUS=${SERVER_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "run.sh: need ${need[*]}: install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

tmp=$(mktemp -d /tmp/cordon-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${KEEP:-}" = 1 ] && echo "run.sh: kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
waitfor() {
  for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "run.sh: $1 did not answer" >&2
  return 1
}
# token: 256 random bits, base64url without padding (the proxy's format).
token() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

go build -o "$tmp/cordon" ./cmd/cordon
go build -C bench -o "$tmp/upstream" ./proxy/upstream   # bench/ is a module of its own

upport=$(freeport) ngport=$(freeport) coport=$(freeport)

GOMAXPROCS=1 taskset -c "$SERVER_CPUS" "$tmp/upstream" -listen "127.0.0.1:$upport" -session-cookie sid &
pids+=($!)

mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log $tmp/nginx/logs/access.log combined buffer=64k flush=1s;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  upstream app {
    server 127.0.0.1:$upport;
    keepalive 128;
  }
  server {
    listen 127.0.0.1:$ngport;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CONF
taskset -c "$SERVER_CPUS" /usr/sbin/nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" &
pids+=($!)

GOMAXPROCS=1 taskset -c "$SERVER_CPUS" "$tmp/cordon" proxy -listen "127.0.0.1:$coport" \
  -upstream "http://127.0.0.1:$upport" -session-cookie sid -mode block \
  -log "$tmp/requests.log" 2>"$tmp/cordon.stderr" &
pids+=($!)

waitfor "http://127.0.0.1:$upport/"
waitfor "http://127.0.0.1:$ngport/"
waitfor "http://127.0.0.1:$coport/"

dev=$(token) sid=$(token)
cookie="Cookie: cordon-dev=$dev; sid=$sid"
# The first request binds the session to the device; check that the guard
# lets the device's own renewal through (200, the session cookie set).
check=$(curl -sS -o /dev/null -D - -H "$cookie" "http://127.0.0.1:$coport/")
if ! grep -q '^HTTP/1.1 200' <<<"$check" || ! grep -qi "^set-cookie: sid=$sid" <<<"$check"; then
  echo "run.sh: cordon proxy did not pass the device's own session:" >&2
  sed 's/sid=[^;]*/sid=(redacted)/' <<<"$check" >&2
  exit 1
fi

declare -A url=([direct]="http://127.0.0.1:$upport/" [nginx]="http://127.0.0.1:$ngport/" [cordon]="http://127.0.0.1:$coport/")
paths=(direct nginx cordon)

# ms converts wrk's latency (850.00us, 1.23ms, 1.02s) to milliseconds.
ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A rps p50 p99 errs
for target in "${paths[@]}"; do # warm up connections, JIT-free but caches and pools
  taskset -c "$LOAD_CPUS" wrk -t"$THREADS" -c"$CONNS" -d2s -H "$cookie" "${url[$target]}" >/dev/null
done
r_cn=() r_nd=()
for run in $(seq "$RUNS"); do
  for target in "${paths[@]}"; do
    out="$tmp/wrk-$target-$run.txt"
    taskset -c "$LOAD_CPUS" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -H "$cookie" "${url[$target]}" >"$out"
    rps[$target,$run]=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50[$target,$run]=$(ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99[$target,$run]=$(ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    errs[$target,$run]=$(awk '/Non-2xx|Socket errors/ { print }' "$out" | tr '\n' ' ')
    printf 'round %d %-6s %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  %s\n' "$run" "$target" \
      "${rps[$target,$run]}" "${p50[$target,$run]}" "${p99[$target,$run]}" "${errs[$target,$run]}" >&2
  done
  r_cn+=("$(ratio "${rps[cordon,$run]}" "${rps[nginx,$run]}")")
  r_nd+=("$(ratio "${rps[nginx,$run]}" "${rps[direct,$run]}")")
done
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)

# The guard really ran: every logged request presented the bound session,
# and none was blocked.
# (on a snapshot: cordon is still running and its writer still flushing)
cp "$tmp/requests.log" "$tmp/requests.snapshot"
lines=$(wc -l <"$tmp/requests.snapshot")
bad=$(grep -c -e '"guard_block"' -e '"device_mismatch"' "$tmp/requests.snapshot" || true)
withsid=$(grep -c '"sid_in":"' "$tmp/requests.snapshot" || true)

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); host: $(nproc) CPUs, $(uname -sr); go: $(go env GOVERSION); $(nginx -v 2>&1); $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency on CPU $LOAD_CPUS; servers on CPU $SERVER_CPUS; $RUNS rounds, median"
echo "load average (1/5/15 min): $loadavg_start at start, $loadavg_end at end"
echo
echo "| path | requests/s | p50 ms | p99 ms |"
echo "| --- | ---: | ---: | ---: |"
for target in "${paths[@]}"; do
  a=() b=() c=()
  for run in $(seq "$RUNS"); do a+=("${rps[$target,$run]}") b+=("${p50[$target,$run]}") c+=("${p99[$target,$run]}"); done
  printf '| %s | %.0f | %.3f | %.3f |\n' "$target" "$(median "${a[@]}")" "$(median "${b[@]}")" "$(median "${c[@]}")"
done
echo
echo "cordon/nginx throughput: $(median "${r_cn[@]}") (rounds: ${r_cn[*]}); target >= 0.5"
echo "nginx/direct throughput: $(median "${r_nd[@]}") (rounds: ${r_nd[*]})"
echo "cordon request log: $lines lines, $withsid with the session presented, $bad guard_block/device_mismatch"
for target in "${paths[@]}"; do
  for run in $(seq "$RUNS"); do
    [ -n "${errs[$target,$run]}" ] && echo "warning: $target round $run: ${errs[$target,$run]}"
  done
done
exit 0
