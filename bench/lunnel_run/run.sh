#!/usr/bin/env bash
# bench/lunnel_run/run.sh BUILD_DIR: end-to-end `lunnel run` consumption benchmark. Starts
# lunnel-emulator with 16 partitions, pre-loads ROWS rows (default 1,000,000, VALUE_BYTES 100
# per row in one column), then REPEAT times (default 3) creates a fresh BaseData tunnel
# (16 channels) and consumes it to the end with bench/lunnel_run/count.lua and
# --exit-when-done, under /usr/bin/time. Per run: wall seconds, records/s, client CPU seconds
# (user + sys) per million records, peak RSS. Prints one RESULT line per run and the medians.
# Options are lunnel's defaults except --heartbeat-interval 0.2 (so the end of the tunnel is
# noticed promptly; the default 30 s would only add idle time) and extra flags in LUNNEL_ARGS.
# SCRIPTS="count columns" (default: count) runs each script per repeat, alternating, so their
# figures are side by side on the same load (columns.lua reads every column of every record);
# LUA_DIR_<script>=DIR runs that script with another copy of lua/ (a before/after comparison).
# BEFORE=OTHER_BUILD_DIR compares two builds on the one loaded emulator: each round runs
# OTHER's lunnel, then BUILD_DIR's (alternating, so machine load hits both alike); RESULT and
# MEDIAN lines then carry build=before|after.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rows=${ROWS:-1000000}
vb=${VALUE_BYTES:-100}
repeat=${REPEAT:-3}
work=$(mktemp -d)
emu_pid=
trap 'kill $emu_pid 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
. "$root/bench/lib/emulator.sh"
bench_emulator "$work" --partitions 16
"$root/scripts/emulator-admin" load "{\"table\":\"bench\",\"rows\":$rows,\"columns\":1,\"value_bytes\":$vb}" >"$work/load.json"
echo "loaded: $(cat "$work/load.json")"
scripts=${SCRIPTS:-count}
declare -A results
builds=after
[ -n "${BEFORE:-}" ] && builds="before after"
for i in $(seq 1 "$repeat"); do
  for b in $builds; do
  bin=$build
  [ "$b" = before ] && bin=$(cd "$BEFORE" && pwd)
  for s in $scripts; do
    tag="$b.$s.$i"
    lua_dir_var="LUA_DIR_$s"
    env ${!lua_dir_var:+LUNNEL_LUA_DIR=${!lua_dir_var}} /usr/bin/time -f "%e %U %S %M" -o "$work/time.$tag" \
      "$bin/lunnel" run --endpoint "$TABLESTORE_ENDPOINT" --instance lunnel --table bench \
      --tunnel "bench$b$s$i" --create BaseData --exit-when-done --heartbeat-interval 0.2 --no-watch \
      ${LUNNEL_ARGS:-} "$root/bench/lunnel_run/${s%%_*}.lua" 2>"$work/run.$tag.err" || {
        echo "run $tag failed:" >&2; tail -20 "$work/run.$tag.err" >&2; exit 1; }
    counted=$(grep 'channel counted' "$work/run.$tag.err" | grep -o 'records=[0-9]*' | awk -F= '{s+=$2} END {print s+0}' || true)
    read -r wall user sys rss_kb <"$work/time.$tag"
    line=$(awk -v n="$counted" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss_kb" 'BEGIN {
      printf "records=%d wall_s=%.2f records_per_s=%.0f cpu_s_per_million=%.3f peak_rss_mb=%.1f",
        n, w, n / w, (u + s) / (n / 1e6), r / 1024 }')
    echo "RESULT ${BEFORE:+build=$b }script=$s run=$i $line"
    results[$b.$s]+="$line"$'\n'
    [ "$counted" -eq "$rows" ] || { echo "run $tag counted $counted records, want $rows" >&2; exit 1; }
  done
  done
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for b in $builds; do
for s in $scripts; do
  for key in records_per_s cpu_s_per_million peak_rss_mb wall_s; do
    m=$(printf '%s' "${results[$b.$s]}" | grep -o "$key=[0-9.]*" | cut -d= -f2 | median)
    echo "MEDIAN ${BEFORE:+build=$b }script=$s $key=$m"
  done
done
done
