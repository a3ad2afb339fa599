#!/usr/bin/env bash
# Usage: docs/scan-bench.sh BIN FILE — cat baseline, then cordon scan on one core and
# on all cores, in one run. Prints a markdown table. On a shared machine,
# NICE="nice -n -15" (as root) gives the runs the CPU their neighbours take.
set -eu
NICE=${NICE:-}
bin=$1; f=$2
size=$(stat -c %s "$f")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
t() { # label cmd...
  local s e
  s=$(date +%s.%N)
  $NICE /usr/bin/time -f "%U %S %M" -o "$tmp/rss" "$@" > /dev/null 2>"$tmp/err"
  e=$(date +%s.%N)
  python3 -c "
import sys
s,e,n=map(float,sys.argv[1:4]); u,sy,r=map(float,open('"$tmp/rss"').read().split())
print(f'| {sys.argv[4]} | {e-s:.1f} s | {n/(e-s)/1e6:.0f} MB/s | {u+sy:.1f} s | {n/max(u+sy,0.01)/1e6:.0f} MB/s | {r/1024:.0f} MB |')" $s $e $size "$LABEL"
}
echo "file: $f, $size bytes, $(wc -l < $f) lines; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| run | wall | wall throughput | CPU (user+sys) | per CPU-second | peak RSS |"
echo "|---|---|---|---|---|---|"
LABEL='cat FILE > /dev/null' t cat "$f"
LABEL='GOMAXPROCS=1 cordon scan -format json FILE' t env GOMAXPROCS=1 "$bin" scan -format json "$f"
LABEL='cordon scan -format json FILE (GOMAXPROCS=2)' t "$bin" scan -format json "$f"
LABEL='cat FILE > /dev/null (again)' t cat "$f"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
