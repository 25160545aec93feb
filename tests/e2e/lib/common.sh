# tests/e2e/lib/common.sh: what the e2e shell tests share; source it right after
# `set -uo pipefail`. Gives B (build dir), S (source dir), L (the lunnel binary), POST (the
# signed-request helper), a scratch dir $work removed at exit together with every process
# whose pid is in $pids, the pass/fail counters (ok, bad, expect, contains, finish) and
# start_emulator. Not a test itself: the build runs tests/e2e/*.sh only.
B=${LUNNEL_BUILD_DIR:-build}
S=${LUNNEL_SOURCE_DIR:-.}
L=$B/lunnel
POST=$S/tests/fixtures/net/ots_post.sh
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }
# expect STATUS DESCRIPTION -- command...: runs it, output in $work/out, $work/err
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [[ $got == "$want" ]]; then ok; else bad "$what: exit $got, want $want; stderr: $(cat "$work/err")"; fi
}
# contains FILE PATTERN DESCRIPTION
contains() { if grep -q -- "$2" "$1"; then ok; else bad "$3: '$2' not in $(cat "$1")"; fi; }
# finish: prints the counts; its status is the test's (0 when nothing failed)
finish() { echo "$passes passed, $fails failed"; [[ $fails == 0 ]]; }

# start_emulator [ARG...]: lunnel-emulator on 127.0.0.1:<free port> (stdout/stderr in
# $work/emu.out, emu.err), waiting up to 5 s for its "listening" line; sets emu_port. Exits
# the test when the emulator does not come up.
start_emulator() {
  "$B/lunnel-emulator" --listen 127.0.0.1:0 "$@" >"$work/emu.out" 2>"$work/emu.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$work/emu.out" 2>/dev/null && break; sleep 0.05; done
  emu_port=$(sed -nE '1s/.*127\.0\.0\.1:([0-9]+).*/\1/p' "$work/emu.out")
  [[ -n $emu_port ]] || { echo "emulator did not start: $(cat "$work/emu.err")" >&2; exit 1; }
}
