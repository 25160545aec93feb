# bench/lib/emulator.sh: sourced by the bench scripts (after they set $root and $build) to
# start lunnel-emulator the way the end-to-end tests do.
#
# bench_emulator DIR [ARGS...]: starts it through the test harness CLI (free port, ready line
# awaited with a deadline; output in DIR/emulator.out, DIR/emulator.err) with ARGS, sets
# emu_port and emu_pid (the caller's trap kills emu_pid) and exports the TABLESTORE_*
# environment that `lunnel` and scripts/emulator-admin read; exits the script when it did
# not start.
bench_emulator() {
  local dir=$1
  shift
  read -r emu_port emu_pid < <(LUNNEL_BUILD_DIR=$build env -u LD_PRELOAD node "$root/tests/harness/cli.mjs" emulator --dir "$dir" -- "$@") ||
    { echo "emulator did not start" >&2; exit 1; }
  export TABLESTORE_ENDPOINT="http://127.0.0.1:$emu_port"
  export TABLESTORE_ACCESS_KEY_ID=lunnel-ak TABLESTORE_ACCESS_KEY_SECRET=lunnel-secret TABLESTORE_INSTANCE=lunnel
}
