#!/usr/bin/env bash
# The seams of DESIGN.md "Who may include whom", checked on the sources: the tunnel side
# reaches the Lua host only through the queue contract (lunnel/host_queue.h, never
# lunnel/host.h), the Lua host includes no tunnel header, net includes neither.
set -euo pipefail
src=${LUNNEL_SOURCE_DIR:?}
cd "$src"
fail=0
check() { # check <what> <dir> <regex of forbidden includes>
  local hits
  hits=$(grep -rnHE "^#include +\"($3)\"" "$2" || true)
  if [ -n "$hits" ]; then
    echo "FAIL: $1:"
    echo "$hits" | sed 's/^/  /'
    fail=$((fail + 1))
  fi
}
check "the tunnel side includes the whole host instead of host_queue.h" runtime/src/tunnel \
  'lunnel/host\.h|lua/[a-z_]+\.h'
check "a tunnel header includes the host" runtime/include/lunnel/worker.h 'lunnel/host\.h'
check "a tunnel header includes the host" runtime/include/lunnel/metrics.h 'lunnel/host\.h'
check "the Lua host includes tunnel headers" runtime/src/lua \
  'lunnel/(worker|api|channel|metrics|dead_letter)\.h|tunnel/[a-z_]+\.h'
check "net includes tunnel or lua" runtime/src/net \
  'lunnel/(host|host_queue|worker|channel|metrics)\.h|(tunnel|lua)/[a-z_]+\.h'
if [ "$fail" -gt 0 ]; then
  echo "0 passed, $fail failed"
  exit 1
fi
echo "5 passed, 0 failed"
