#!/usr/bin/env bash
# Usage: docs/scan-bench.sh BIN FILE [FILE.gz]
# Times `cat FILE`, `cordon scan` on one core and on all cores, and, given a
# gzip file, `gzip -dc` and `cordon scan` of it: RUNS rounds (default 3), the
# commands alternating within each round so that a busy neighbour hits them
# alike. Prints every run, then the medians and the ratio to the baseline of
# the same round (cat, or gzip -dc). On a shared machine,
# NICE="nice -n -15" (as root) gives the runs the CPU their neighbours take.
set -eu
NICE=${NICE:-}
RUNS=${RUNS:-3}
bin=$1; f=$2; gz=${3:-}
size=$(stat -c %s "$f")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# run LABEL BYTES cmd... : one timed run, appended to $tmp/runs as
# label<TAB>wall<TAB>cpu<TAB>rss_kb<TAB>bytes
run() {
  local label=$1 n=$2 s e; shift 2
  s=$(date +%s.%N)
  $NICE /usr/bin/time -f "%U %S %M" -o "$tmp/t" "$@" > /dev/null 2>"$tmp/err" || [ $? -le 1 ] # scan exits 1 on incidents
  e=$(date +%s.%N)
  read -r u sy m < <(tail -n 1 "$tmp/t")
  printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$(echo "$e - $s" | bc)" "$(echo "$u + $sy" | bc)" "$m" "$n" >> "$tmp/runs"
}
echo "file: $f, $size bytes, $(wc -l < "$f") lines${gz:+; gzip: $gz, $(stat -c %s "$gz") bytes}; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$RUNS"); do
  run "cat FILE > /dev/null" "$size" cat "$f"
  run "cordon scan -format json FILE, GOMAXPROCS=1" "$size" env GOMAXPROCS=1 "$bin" scan -format json "$f"
  run "cordon scan -format json FILE, GOMAXPROCS=2" "$size" env GOMAXPROCS=2 "$bin" scan -format json "$f"
  if [ -n "$gz" ]; then
    run "gzip -dc FILE.gz > /dev/null" "$size" gzip -dc "$gz"
    run "cordon scan -format json FILE.gz, GOMAXPROCS=2" "$size" env GOMAXPROCS=2 "$bin" scan -format json "$gz"
  fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp/runs" "$RUNS" <<'PY'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
runs = int(sys.argv[2])
labels = list(dict.fromkeys(r[0] for r in rows))
per = len(labels)
print("\nevery run (MB/s of log text: decompressed bytes for gzip):")
print("| round | run | wall | MB/s | CPU (user+sys) | MB per CPU-second | peak RSS |")
print("|---|---|---|---|---|---|---|")
for i, (lab, wall, cpu, rss, n) in enumerate(rows):
    w, c, n = float(wall), float(cpu), float(n)
    print(f"| {i // per + 1} | {lab} | {w:.2f} s | {n / w / 1e6:.0f} | {c:.2f} s | {n / max(c, 0.01) / 1e6:.0f} | {int(rss) / 1024:.0f} MB |")
print(f"\nmedians of {runs} round(s); ratio: wall time over the baseline's (cat, or gzip -dc for gzip) in the same round:")
print("| run | wall | MB/s | CPU | MB per CPU-second | peak RSS | wall / baseline |")
print("|---|---|---|---|---|---|---|")
for lab in labels:
    rs = [r for r in rows if r[0] == lab]
    idx = [i for i, r in enumerate(rows) if r[0] == lab]
    base = "gzip -dc FILE.gz > /dev/null" if "FILE.gz" in lab else "cat FILE > /dev/null"
    ratios = [float(rows[i][1]) / float(rows[(i // per) * per + labels.index(base)][1]) for i in idx]
    w = st.median(float(r[1]) for r in rs); c = st.median(float(r[2]) for r in rs); n = float(rs[0][4])
    m = max(int(r[3]) for r in rs)
    print(f"| {lab} | {w:.2f} s | {n / w / 1e6:.0f} | {c:.2f} s | {n / max(c, 0.01) / 1e6:.0f} | {m / 1024:.0f} MB | {st.median(ratios):.1f}× |")
PY
