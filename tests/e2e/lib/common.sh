# tests/e2e/lib/common.sh: what the e2e shell tests share; source it right after
# `set -uo pipefail`. Gives B (build dir), S (source dir), L (the lunnel binary), POST (the
# signed-request helper), a scratch dir $work removed at exit together with every process
# whose pid is in $pids, the pass/fail counters (ok, bad, expect, contains, finish) and
# start_emulator (through the harness CLI). Not a test itself: the build runs tests/e2e/*.sh only.
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

# HARNESS: the end-to-end harness's CLI (tests/harness/cli.mjs), the same start and waits as
# the Node tests. Node runs without the sanitizer runtime preloaded (it is not instrumented).
HARNESS=(env -u LD_PRELOAD node "$S/tests/harness/cli.mjs")

# start_emulator [ARG...]: lunnel-emulator on 127.0.0.1:<free port> through the harness
# (output in $work/emulator.out, emulator.err; ready line awaited with a deadline); sets
# emu_port and emu_pid. Exits the test when the emulator does not come up.
start_emulator() {
  local line
  line=$("${HARNESS[@]}" emulator --dir "$work" -- "$@") || { echo "emulator did not start" >&2; exit 1; }
  read -r emu_port emu_pid <<<"$line"
  pids+=("$emu_pid")
}
