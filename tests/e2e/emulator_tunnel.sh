#!/usr/bin/env bash
# emulator_tunnel.sh: the real lunnel-emulator binary serving the tunnel protocol end to end:
# runs the ReadRecords benchmark client (bench/emulator) on a small table, which bulk-loads
# rows over the admin API, creates a BaseData and a Stream (EARLIEST) tunnel, connects,
# heartbeats and drains every channel over HTTP; both drains must deliver every row.
set -euo pipefail
src=${LUNNEL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${LUNNEL_BUILD_DIR:-$src/build}
[ -x "$build/lunnel-emulator" ] || { echo "SKIP: $build/lunnel-emulator not built"; exit 0; }
out=$(ROWS=3000 VALUE_BYTES=50 REPEAT=1 bash "$src/bench/emulator/run.sh" "$build")
echo "$out"
echo "$out" | grep -q '^RESULT BaseData records=3000 ' || { echo "FAIL: BaseData drain"; exit 1; }
echo "$out" | grep -q '^RESULT Stream records=3000 ' || { echo "FAIL: Stream drain"; exit 1; }
echo "PASS"
