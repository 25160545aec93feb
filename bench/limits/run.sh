#!/usr/bin/env bash
# bench/limits/run.sh BUILD_DIR: peak RSS of `lunnel run` against --max-inflight-bytes.
# Starts lunnel-emulator with 8 partitions, loads ROWS rows (default 60,000) of VALUE_BYTES
# (default 2,000) in one column, so a ReadRecords reply (1,000 records) is about 2 MiB; then,
# for each budget in BUDGETS_MIB (default "4 16 64"), consumes a fresh BaseData tunnel with
# the slow script bench/limits/slow.lua (40 ms per batch: reads outpace processing, the held
# batches fill the budget), --prefetch 8, 2 Lua workers, under /usr/bin/time. A run with a
# 64 KiB table gives the baseline (the process without data). Prints one RESULT line per
# budget: peak RSS, peak RSS minus the budget, and that minus the baseline.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rows=${ROWS:-60000}
vb=${VALUE_BYTES:-2000}
budgets=${BUDGETS_MIB:-4 16 64}
work=$(mktemp -d)
emu_pid=
trap 'kill $emu_pid 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
. "$root/bench/lib/emulator.sh"
bench_emulator "$work" --partitions 8
"$root/scripts/emulator-admin" load "{\"table\":\"big\",\"rows\":$rows,\"columns\":1,\"value_bytes\":$vb}" >/dev/null
"$root/scripts/emulator-admin" load "{\"table\":\"tiny\",\"rows\":32,\"columns\":1,\"value_bytes\":$vb}" >/dev/null
run() { # table tunnel budget_bytes -> "peak_kb records"
  /usr/bin/time -f "%M" -o "$work/time" \
    "$build/lunnel" run --table "$1" --tunnel "$2" --create BaseData --exit-when-done \
    --heartbeat-interval 0.2 --no-watch --workers 2 --prefetch 8 --max-inflight-bytes "$3" \
    "$root/bench/limits/slow.lua" 2>"$work/$2.err" || {
      echo "run $2 failed:" >&2; tail -20 "$work/$2.err" >&2; exit 1; }
  local n
  n=$(grep 'channel counted' "$work/$2.err" | grep -o 'records=[0-9]*' | awk -F= '{s+=$2} END {print s+0}')
  echo "$(cat "$work/time") $n"
}
read -r base_kb _ < <(run tiny base $((4 << 20)))
echo "RESULT baseline peak_rss_mib=$(awk -v k="$base_kb" 'BEGIN{printf "%.1f", k/1024}')"
for b in $budgets; do
  read -r kb n < <(run big "b$b" $((b << 20)))
  [ "$n" -eq "$rows" ] || { echo "budget $b MiB: counted $n records, want $rows" >&2; exit 1; }
  awk -v k="$kb" -v b="$b" -v base="$base_kb" 'BEGIN {
    printf "RESULT budget_mib=%d peak_rss_mib=%.1f over_budget_mib=%.1f over_budget_and_baseline_mib=%.1f\n",
      b, k/1024, k/1024 - b, k/1024 - b - base/1024 }'
done
