#!/usr/bin/env bash
# bench/emulator/run.sh BUILD_DIR: ReadRecords throughput of lunnel-emulator (one client,
# loopback, ~200-byte records). Builds the client, starts the emulator on a free port (tests/harness/cli.mjs), runs
# readrecords_bench and prints its RESULT lines. Env: ROWS (default 1000000), VALUE_BYTES
# (default 138: with the key, cell framing and checksums a base row is 200 bytes, a stream
# row 229 with its sequence-info extension), REPEAT (default 3 drains of each tunnel type).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rows=${ROWS:-1000000}
vb=${VALUE_BYTES:-138}
work=$(mktemp -d)
emu_pid=
trap 'kill $emu_pid 2>/dev/null || true; rm -rf "$work"' EXIT
# Built by CMake with the build's own compiler and flags (cmake/bench.cmake); compiled here
# only for a build tree that predates that target.
bench_bin="$build/bench/readrecords_bench"
if [ ! -x "$bench_bin" ]; then
  proto_lib=$(find "$build" -name liblunnel_proto.a | head -1)
  cc -O2 -std=gnu11 -Wall -Wextra -D_GNU_SOURCE \
    -I "$root/runtime/include" -I "$root/emulator/tests" -I "$build/proto" \
    "$root/bench/emulator/readrecords_bench.c" "$root/runtime/src/net/sign.c" \
    "$root/runtime/src/base/buf.c" "$proto_lib" \
    -lprotobuf-c -lcurl -lcrypto -o "$work/readrecords_bench"
  bench_bin="$work/readrecords_bench"
fi
. "$root/bench/lib/emulator.sh"
bench_emulator "$work"
"$bench_bin" "$emu_port" "$emu_pid" "$rows" "$vb" "${REPEAT:-3}"
