#!/usr/bin/env bash
# Benchmarks `cordon proxy` (guard on) against nginx in front of the same
# small Go JSON app, on loopback, in one run, for the shapes a site meets:
#
#   root     GET /       small JSON, no cookie in the answer      (-c CONNS)
#   login    GET /login  a fresh session in a Set-Cookie each time (-c CONNS)
#   big      GET /big    a 64 KiB body                             (-c CONNS)
#   root256  GET /       small JSON                                (-c 256)
#
# Method (RESULTS.md beside this file): the upstream is pinned to
# UPSTREAM_CPU, the proxy under test (nginx with one worker, or cordon proxy)
# to PROXY_CPU, so the proxy has a core of its own and its cost is not
# diluted by the app's; wrk (-t THREADS) runs on LOAD_CPUS. Every request
# presents a device cookie and a session, so cordon looks up a binding on
# ingress of every request, and at /login binds the fresh session and checks
# it on egress. Rounds are interleaved (round 1: every shape, nginx then
# cordon; round 2: ...), so the machine's drift hits both alike; the table
# gives medians of RUNS rounds, and the ratios are medians of each round's
# ratio. Besides requests/s and latency it reports each proxy's CPU time per
# request (from /proc, user+system), which a busy shared machine disturbs
# far less than throughput, and cordon's resident set size.
#
#   bench/proxy/run.sh                       # 3 rounds of 8 s per shape and proxy
#   RUNS=5 DURATION=10s SHAPES="root login" bench/proxy/run.sh
#
# Environment: RUNS (3), DURATION (8s), CONNS (64), THREADS (2), SHAPES
# (root login big root256), UPSTREAM_CPU (0), PROXY_CPU (1), LOAD_CPUS (0),
# KEEP=1 keeps the temporary directory, CORDON_FLAGS adds flags to cordon
# proxy, NETHTTP=1 also runs a second cordon proxy with -nethttp (every
# request through net/http's server, the lean HTTP/1.1 loop off) in the
# same rounds, on the same core.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-8s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
SHAPES=${SHAPES:-root login big root256}
UPSTREAM_CPU=${UPSTREAM_CPU:-0}
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPUS=${LOAD_CPUS:-0}

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx)
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
# cputicks PID: user+system clock ticks of a process so far.
cputicks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rsskb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwmkb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

go build -o "$tmp/cordon" ./cmd/cordon
go build -C bench -o "$tmp/upstream" ./proxy/upstream   # bench/ is a module of its own

upport=$(freeport) ngport=$(freeport) coport=$(freeport) nhport=$(freeport)

taskset -c "$UPSTREAM_CPU" "$tmp/upstream" -listen "127.0.0.1:$upport" -session-cookie sid &
uppid=$!
pids+=($uppid)

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
taskset -c "$PROXY_CPU" /usr/sbin/nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" &
ngpid=$!
pids+=($ngpid)

# shellcheck disable=SC2086
taskset -c "$PROXY_CPU" "$tmp/cordon" proxy -listen "127.0.0.1:$coport" \
  -upstream "http://127.0.0.1:$upport" -session-cookie sid -mode block \
  -log "$tmp/requests.log" ${CORDON_FLAGS:-} 2>"$tmp/cordon.stderr" &
copid=$!
pids+=($copid)
targets="nginx cordon"
if [ "${NETHTTP:-}" = 1 ]; then
  # shellcheck disable=SC2086
  taskset -c "$PROXY_CPU" "$tmp/cordon" proxy -nethttp -listen "127.0.0.1:$nhport" \
    -upstream "http://127.0.0.1:$upport" -session-cookie sid -mode block \
    -log "$tmp/requests-nethttp.log" ${CORDON_FLAGS:-} 2>"$tmp/cordon-nethttp.stderr" &
  nhpid=$!
  pids+=($nhpid)
  targets="nginx cordon nethttp"
  waitfor "http://127.0.0.1:$nhport/"
fi

waitfor "http://127.0.0.1:$upport/"
waitfor "http://127.0.0.1:$ngport/"
waitfor "http://127.0.0.1:$coport/"
# nginx's worker is the child of the master process.
sleep 0.2
ngworker=$(pgrep -P "$ngpid" | head -n1)

dev=$(token) sid=$(token)
cookie="Cookie: __Host-cordon-dev=$dev; sid=$sid"
# The guard lets the device's own fresh session through at /login (200,
# the session cookie set), and the small answer at / has no cookie.
check=$(curl -sS -o /dev/null -D - -H "$cookie" "http://127.0.0.1:$coport/login")
if ! grep -q '^HTTP/1.1 200' <<<"$check" || ! grep -qi "^set-cookie: sid=" <<<"$check"; then
  echo "run.sh: cordon proxy did not pass the device's own session:" >&2
  sed 's/sid=[^;]*/sid=(redacted)/' <<<"$check" >&2
  exit 1
fi

declare -A path=([root]=/ [login]=/login [big]=/big [root256]=/)
declare -A conns=([root]=$CONNS [login]=$CONNS [big]=$CONNS [root256]=256)
declare -A port=([nginx]=$ngport [cordon]=$coport [nethttp]=$nhport)
declare -A pidof=([nginx]=$ngworker [cordon]=$copid [nethttp]=${nhpid:-})
hz=$(getconf CLK_TCK)

ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
for shape in $SHAPES; do # warm up connections and pools
  for target in $targets; do
    taskset -c "$LOAD_CPUS" wrk -t"$THREADS" -c"${conns[$shape]}" -d1s -H "$cookie" "http://127.0.0.1:${port[$target]}${path[$shape]}" >/dev/null
  done
done
declare -A rps p50 p99 cpu upc rss errs
maxrss=0 total=0 up0=$(cputicks "$uppid")
for run in $(seq "$RUNS"); do
  for shape in $SHAPES; do
    for target in $targets; do
      out="$tmp/wrk-$shape-$target-$run.txt"
      pid=${pidof[$target]}
      t0=$(cputicks "$pid") u0=$(cputicks "$uppid")
      taskset -c "$LOAD_CPUS" wrk -t"$THREADS" -c"${conns[$shape]}" -d"$DURATION" --latency -H "$cookie" \
        "http://127.0.0.1:${port[$target]}${path[$shape]}" >"$out"
      t1=$(cputicks "$pid") u1=$(cputicks "$uppid")
      k=$shape,$target,$run
      rss[$k]=$(rsskb "$pid")
      [ "$target" = cordon ] && [ "${rss[$k]}" -gt "$maxrss" ] && maxrss=${rss[$k]}
      reqs=$(awk '/requests in/ { print $1 }' "$out")
      total=$((total + reqs))
      rps[$k]=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
      p50[$k]=$(ms "$(awk '$1 == "50%" { print $2 }' "$out")")
      p99[$k]=$(ms "$(awk '$1 == "99%" { print $2 }' "$out")")
      cpu[$k]=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
      upc[$k]=$(awk -v t="$((u1 - u0))" -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
      errs[$k]=$(awk '/Non-2xx|Socket errors/ { print }' "$out" | tr '\n' ' ')
      printf 'round %d %-8s %-6s %8.0f req/s  p50 %7.3f ms  p99 %7.3f ms  %6.1f us CPU/req (app %5.1f)  RSS %6d KiB %s\n' \
        "$run" "$shape" "$target" "${rps[$k]}" "${p50[$k]}" "${p99[$k]}" "${cpu[$k]}" "${upc[$k]}" "${rss[$k]}" "${errs[$k]}" >&2
    done
  done
done
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)
upcpu=$(awk -v t="$(($(cputicks "$uppid") - up0))" -v hz="$hz" -v n="$total" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')

cp "$tmp/requests.log" "$tmp/requests.snapshot"
lines=$(wc -l <"$tmp/requests.snapshot")
bad=$(grep -c -e '"guard_block"' -e '"device_mismatch"' "$tmp/requests.snapshot" || true)

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); host: $(nproc) CPUs, $(uname -sr); go: $(go env GOVERSION); $(/usr/sbin/nginx -v 2>&1); $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
echo "upstream on CPU $UPSTREAM_CPU, proxy on CPU $PROXY_CPU, wrk -t$THREADS -d$DURATION --latency on CPU $LOAD_CPUS; $RUNS interleaved rounds, medians"
echo "load average (1/5/15 min): $loadavg_start at start, $loadavg_end at end"
echo
echo "| shape | conns | nginx req/s | cordon req/s | cordon/nginx | nginx p99 ms | cordon p99 ms | p99 cordon/nginx | nginx CPU us/req | cordon CPU us/req | CPU nginx/cordon |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for shape in $SHAPES; do
  rr=() pr=() cr=() a=() b=() c=() d=() e=() f=()
  for run in $(seq "$RUNS"); do
    n=$shape,nginx,$run c_=$shape,cordon,$run
    a+=("${rps[$n]}") b+=("${rps[$c_]}") c+=("${p99[$n]}") d+=("${p99[$c_]}") e+=("${cpu[$n]}") f+=("${cpu[$c_]}")
    rr+=("$(ratio "${rps[$c_]}" "${rps[$n]}")") pr+=("$(ratio "${p99[$c_]}" "${p99[$n]}")") cr+=("$(ratio "${cpu[$n]}" "${cpu[$c_]}")")
  done
  printf '| %s | %d | %.0f | %.0f | **%s** (%s) | %.2f | %.2f | %s | %.1f | %.1f | %s |\n' "$shape" "${conns[$shape]}" \
    "$(median "${a[@]}")" "$(median "${b[@]}")" "$(median "${rr[@]}")" "${rr[*]}" "$(median "${c[@]}")" "$(median "${d[@]}")" \
    "$(median "${pr[@]}")" "$(median "${e[@]}")" "$(median "${f[@]}")" "$(median "${cr[@]}")"
done
if [ "${NETHTTP:-}" = 1 ]; then
  echo
  echo "cordon proxy -nethttp (net/http's server for every request), in the same rounds:"
  echo
  echo "| shape | -nethttp req/s | -nethttp/nginx | -nethttp p99 ms | -nethttp CPU us/req | CPU nginx/-nethttp | CPU -nethttp/cordon |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for shape in $SHAPES; do
    a=() rr=() d=() f=() cr=() lr=()
    for run in $(seq "$RUNS"); do
      n=$shape,nginx,$run h=$shape,nethttp,$run c_=$shape,cordon,$run
      a+=("${rps[$h]}") d+=("${p99[$h]}") f+=("${cpu[$h]}")
      rr+=("$(ratio "${rps[$h]}" "${rps[$n]}")") cr+=("$(ratio "${cpu[$n]}" "${cpu[$h]}")") lr+=("$(ratio "${cpu[$h]}" "${cpu[$c_]}")")
    done
    printf '| %s | %.0f | %s | %.2f | %.1f | %s | %s |\n' "$shape" "$(median "${a[@]}")" "$(median "${rr[@]}")" \
      "$(median "${d[@]}")" "$(median "${f[@]}")" "$(median "${cr[@]}")" "$(median "${lr[@]}")"
  done
fi
echo
echo "cordon RSS: at most $((maxrss / 1024)) MiB after a run, peak (VmHWM) $(( $(hwmkb "$copid") / 1024 )) MiB; nginx worker RSS $(( $(rsskb "$ngworker") / 1024 )) MiB"
echo "the upstream (a bare Go net/http server) spent $upcpu us of CPU per request over the run (all shapes)"
echo "cordon request log: $lines lines, $bad guard_block/device_mismatch"
for k in "${!errs[@]}"; do
  [ -n "${errs[$k]}" ] && echo "warning: $k: ${errs[$k]}"
done
exit 0
