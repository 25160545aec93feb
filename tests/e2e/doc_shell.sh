#!/usr/bin/env bash
# doc_shell.sh: every ```sh block of README.md, docs/scripts.md and docs/migrating.md runs
# here, as written, in a scratch directory that looks like the source root (build/, examples/,
# scripts/ linked; a spec/ and a records.jsonl to work on), with these substitutions, each
# printed: `make` lines are skipped (the tree is built); the emulator's 127.0.0.1:8866 becomes
# a free port; PREFIX=/opt/lunnel becomes a fresh `cmake --install` prefix; `lunnel run` lines
# (they run until stopped) run for 10 s and must print; busted lines get the sanitizer
# runtime preloaded in ASan builds (LUNNEL_LUA_PRELOAD, as tests/e2e/docs.sh does); after an emulator started in the
# background the block waits for its port (a person types the next line later). Lua blocks run in
# spec/docs/doc_blocks_spec.lua; ```text blocks are not run.
set -uo pipefail
build=${LUNNEL_BUILD_DIR:?}
src=${LUNNEL_SOURCE_DIR:?}
build=$(cd "$build" && pwd)
src=$(cd "$src" && pwd)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
passed=0 failed=0

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
root=$work/root
mkdir -p "$root/spec" "$root/bin"
ln -s "$build" "$root/build"
ln -s "$src/examples" "$root/examples"
ln -s "$src/scripts" "$root/scripts"
ln -s "$src/tests" "$root/tests"
ln -s "$build/lunnel" "$root/bin/lunnel"
cat >"$root/spec/doc_shell_spec.lua" <<'LUA'
local T = require("lunnel.testing")
describe("an installed lunnel", function()
  it("builds records", function()
    assert.equal(1, T.put{ pk = {{"id", 1}}, cols = { v = "x" } }.pk.id)
  end)
end)
LUA
echo '{"action":"PUT","pk":{"id":7},"cols":{"v":"seven","b":{"binary":"AAE="}}}' >"$root/records.jsonl"

# ```sh blocks -> files, one per block: <doc>:<line>
n=0
for doc in README.md docs/scripts.md docs/migrating.md; do
  [ -f "$src/$doc" ] || continue
  awk -v out="$work/block" -v doc="$doc" -v doc_id="${doc//\//_}" '
    /^```sh[ \t]*$/ { inb = 1; n++; f = sprintf("%s.%s.%d", out, doc_id, NR); print doc ":" NR > (f ".where"); close(f ".where"); next }
    /^```/ && inb { inb = 0; close(f); next }
    inb { print > f }
  ' "$src/$doc"
done
for f in $(ls "$work"/block.* 2>/dev/null | grep -v '\.where$' | grep -v '\.sh$' | grep -v '\.out$'); do
  where=$(cat "$f.where")
  n=$((n + 1))
  {
    echo 'set -e'
    while IFS= read -r line; do
      case "$line" in
        make|make\ *) echo "# skipped (the tree is built): $line"; continue ;;
      esac
      line=${line//127.0.0.1:8866/127.0.0.1:$port}
      line=${line//PREFIX=\/opt\/lunnel/PREFIX=$prefix}
      if [[ $line =~ ^busted\  ]]; then
        # sanitizer builds: LuaJIT loads an ASan liblunnel only with the runtime preloaded
        line="LD_PRELOAD=\"\${LUNNEL_LUA_PRELOAD:-}\" $line"
      fi
      if [[ $line =~ ^(build/)?lunnel\ run\  ]]; then
        line="timeout 10 $line >>\"$f.out\" || [ \$? -eq 124 ]; test -s \"$f.out\""
      fi
      echo "$line"
      if [[ $line =~ lunnel-emulator.*\&[[:space:]]*(#.*)?$ ]]; then
        # a person types the next line later; a script waits for the port (the harness:
        # a deadline, and a failure at once if the emulator exited)
        echo "env -u LD_PRELOAD node \"$src/tests/harness/cli.mjs\" wait-port --port $port --pid \$! --timeout-ms 10000"
      fi
    done <"$f"
  } >"$f.sh"
  echo "== $where"
  sed 's/^/   /' "$f.sh"
  # its own process group: background jobs of the block (an emulator) are stopped after it
  (cd "$root" && PATH="$root/bin:$PATH" setsid bash "$f.sh" >"$work/log" 2>&1) &
  pid=$!
  pids+=("$pid")
  if wait "$pid"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: the shell block at $where"
    tail -30 "$work/log"
  fi
  kill -- -"$pid" 2>/dev/null
done
[ "$n" -gt 0 ] || { echo "FAIL: no sh block found"; failed=$((failed + 1)); }
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
