#!/usr/bin/env bash
# The seams of DESIGN.md "Who may include whom", checked on the sources: the tunnel side
# reaches the Lua host only through the queue contract (lunnel/host_queue.h, never
# lunnel/host.h), the Lua host includes no tunnel header, net includes neither; the worker's
# state machine reaches the service, time and timers only through its environment
# (lunnel/worker_env.h: run_calls.c and run_clock.c are the real ones), never api.h or libev;
# base includes nothing else of lunnel; net (the transport) no codec, protobuf or tunnel rules.
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
check "base includes another part of lunnel" runtime/src/base \
  '(codec|net|tunnel|lua|cli|sinks)/[a-z_]+\.h|lunnel/(api|http|errors|error_class|credentials|sign|retry|codec|plainbuffer|record|readrecords|host|host_queue|worker|worker_env|channel|metrics|dead_letter|sink_support)\.h'
check "net includes codec or tunnel error rules" runtime/src/net \
  'lunnel/(codec|plainbuffer|record|readrecords|error_class|api|sink_support)\.h'
if grep -rnE '^#include +<proto/' runtime/src/net; then
  echo "FAIL: net includes protobuf messages (the tunnel reads its own error bodies)"
  fail=$((fail + 1))
fi
for f in worker channel checkpointer error_policy daemon channel_pace run_internal; do
  file=runtime/src/tunnel/$f.c
  [ -f "$file" ] || file=runtime/src/tunnel/$f.h
  check "the worker calls the service or libev directly" "$file" 'lunnel/api\.h|ev\.h'
  if grep -nE '#include <ev\.h>|\bev_(now|timer_[a-z]+)\(' "$file" >/dev/null; then
    echo "FAIL: $file uses libev directly (use run_now / run_timer_* of run_internal.h)"
    fail=$((fail + 1))
  fi
done
if [ "$fail" -gt 0 ]; then
  echo "0 passed, $fail failed"
  exit 1
fi
echo "22 passed, 0 failed"
