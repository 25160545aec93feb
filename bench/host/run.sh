#!/usr/bin/env bash
# bench/host/run.sh [BUILD_DIR]: records/s through the Lua host (`lunnel replay`, the same host
# `lunnel run` uses) with 1, 2 and 4 workers, 4 channels, on a corpus of ReadRecordsResponse
# bodies of 500 records x (INTEGER pk + 5 strings of 20 bytes + 5 integers). Two scripts:
# count.lua (host + decode cost) and touch.lua (every column read through the view).
# Each figure is the best of 3 runs. Writes bench/results/host.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
bin=${LUNNEL_BIN:-$build/lunnel}
tmp=$root/bench/tmp/host
mkdir -p "$tmp" "$root/bench/results"
python3 "$root/bench/host/gen_corpus.py" "$tmp" 8 500 >/dev/null
export LUNNEL_LUA_DIR=$root/lua
repeat=${HOST_BENCH_REPEAT:-150} # 4 channels x 8 files x 150 x 500 = 2.4 M records per run

best() { # script workers -> "wall_rate cpu_rate" of the best (by wall rate) of 3 runs
  local b=0 bc=0 line r c
  for _ in 1 2 3; do
    line=$("$bin" replay --quiet --log-level warn --script "$root/bench/host/$1" --workers "$2" \
        --channels 4 --repeat "$repeat" "$tmp"/batch-*.bin | tail -1)
    r=$(sed -n 's/.* records_per_s=\([0-9]*\).*/\1/p' <<<"$line")
    c=$(sed -n 's/.*records_per_cpu_s=\([0-9]*\).*/\1/p' <<<"$line")
    if [ "${r:-0}" -gt "$b" ]; then b=$r; bc=$c; fi
  done
  echo "$b $bc"
}

out=$root/bench/results/host.md
{
  echo "# Lua host throughput (bench/host/run.sh)"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $(date -u +%Y-%m-%dT%H:%MZ);"
  echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: wall figures are noisy)."
  echo
  echo "Corpus: ReadRecordsResponse bodies of 500 records (INTEGER pk, 5 strings of 20 bytes,"
  echo "5 integers), 180 KB each; \`lunnel replay --channels 4 --repeat $repeat\` ($((4 * 8 * repeat * 500)) records per"
  echo "run; best of 3 by wall time). Measured through the whole host: scanning, PlainBuffer"
  echo "decoding with CRC checks on the workers, one pcall per batch, queues, completions through"
  echo "ev_async on the loop thread. count.lua only counts (#batch); touch.lua reads every column"
  echo "of every record through the view (integers as numbers, string lengths)."
  echo
  echo "| script | workers | records/s (wall) | vs 1 worker | records per CPU-second |"
  echo "|---|---|---|---|---|"
  for s in count.lua touch.lua; do
    read -r w1 c1 < <(best $s 1)
    for w in 1 2 4; do
      if [ "$w" = 1 ]; then r=$w1 c=$c1; else read -r r c < <(best $s $w); fi
      printf '| %s | %d | %s | %.2f | %s |\n' "$s" "$w" "$r" "$(echo "$r / $w1" | bc -l)" "$c"
    done
  done
  echo
  echo "The machine has 2 cores: 2 workers can at best double 1 worker; 4 workers show the cost"
  echo "of oversubscription. Records per CPU-second (user + system time of the whole process,"
  echo "loop thread included) is the efficiency figure that other load on the machine disturbs"
  echo "least."
} > "$out"
cat "$out"
