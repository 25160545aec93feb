#!/usr/bin/env bash
# bench/emulator_durable/run.sh BUILD_DIR: start-up time of lunnel-emulator --data-dir with
# ROWS stored rows (default 1000000, VALUE_BYTES default 100): write-ahead-log replay,
# start-up with compaction, snapshot restore; plus the bulk load's cost with and without
# the journal. Prints RESULT lines (bench.mjs). Needs node (no npm packages).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
[ -x "$build/lunnel-emulator" ] || { echo "no $build/lunnel-emulator" >&2; exit 1; }
LUNNEL_BUILD_DIR="$build" exec node "$root/bench/emulator_durable/bench.mjs"
