#!/usr/bin/env bash
# bench/pacing/run.sh BUILD_DIR: requests and log lines one persistent failure costs in 8 s
# (bench/pacing/measure.mjs: a failing open(), refused ReadRecords); BEFORE=OTHER_BUILD_DIR
# measures that build too, for a before/after table (results: bench/results/pacing.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
for mode in open readrecords; do
  if [ -n "${BEFORE:-}" ]; then
    LUNNEL_BUILD_DIR=$(cd "$BEFORE" && pwd) node "$root/bench/pacing/measure.mjs" "$mode"
  fi
  LUNNEL_BUILD_DIR=$build node "$root/bench/pacing/measure.mjs" "$mode"
done
