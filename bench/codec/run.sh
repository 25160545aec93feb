#!/usr/bin/env bash
# bench/codec/run.sh: codec + record-view benchmarks. Builds bench_codec.c against
# BUILD_DIR/liblunnel.so, runs it and the LuaJIT view benchmark, prints their RESULT lines.
# Usage: bench/codec/run.sh [BUILD_DIR] (default: build). Env: RECORDS (1000), SECONDS (1).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
records=${RECORDS:-1000}
seconds=${SECONDS_PER_RUN:-1}
[ -f "$build/liblunnel.so" ] || { echo "no $build/liblunnel.so: build first (make)" >&2; exit 1; }
cc -O2 -Wall -Wextra -Werror -I"$root/runtime/include" "$root/bench/codec/bench_codec.c" \
   -L"$build" -llunnel -Wl,-rpath,"$build" -o "$build/bench_codec"
echo "-- C: CRC-8, ReadRecords scan, decode with checksum verification (per core, thread CPU time)"
"$build/bench_codec" "$records" "$seconds"
echo "-- LuaJIT: record view, decode excluded"
cd "$root"
LUNNEL_LIB="$build/liblunnel.so" luajit bench/codec/lua_view.lua "$records" "$seconds"
