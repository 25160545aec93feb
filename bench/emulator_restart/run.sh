#!/usr/bin/env bash
# bench/emulator_restart/run.sh BUILD_DIR: lunnel-emulator --data-dir at the scale the README
# quotes: ROWS stored rows (1000000), CHANGES updates on top (200000) and TUNNELS tunnels
# (a BaseAndStream and a Stream one). Measures start-up (spawn to ready line, and to the first
# answered request) from the log and from a snapshot, and how long the loop stops answering
# while a compaction runs (the longest gap seen by a client pinging every 5 ms). Prints RESULT
# lines (bench.mjs). Needs node (no npm packages) and build/lunnel (tunnel create).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
[ -x "$build/lunnel-emulator" ] || { echo "no $build/lunnel-emulator" >&2; exit 1; }
LUNNEL_BUILD_DIR="$build" exec node "$root/bench/emulator_restart/bench.mjs"
