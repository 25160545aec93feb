#!/usr/bin/env bash
# install.sh: `cmake --install` (what `make install PREFIX=...` runs) into a temporary prefix,
# then the INSTALLED lunnel runs an installed example (lunnel replay of real PlainBuffer rows
# through examples/to_jsonl.lua and the lunnel.sinks.jsonl module). Checks: the file layout
# (programs, liblunnel, Lua modules under share/lua/5.1, examples, man pages, contrib, the
# destination sinks' modules in lib/lunnel/, loadable, and linked by nothing of lunnel),
# programs that need no liblunnel (the runtime is in them), the man pages render without
# warnings, and -- with the source and build trees hidden in a private mount namespace (root
# only; skipped otherwise) -- the installed lunnel still finds its Lua modules and library.
set -uo pipefail
B=$(cd "${LUNNEL_BUILD_DIR:-build}" && pwd)
S=$(cd "${LUNNEL_SOURCE_DIR:-.}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
P=$work/prefix
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }
has() { if [[ -e $P/$1 ]]; then ok; else bad "not installed: $1"; fi; }

cmake --install "$B" --prefix "$P" >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; echo "FAIL: cmake --install" >&2; exit 1; }

for f in bin/lunnel bin/lunnel-emulator lib/liblunnel.so include/lunnel/record.h \
         share/lua/5.1/lunnel/init.lua share/lua/5.1/lunnel/record.lua share/lua/5.1/lunnel/host.lua \
         share/lua/5.1/lunnel/testing.lua share/lua/5.1/lunnel/sinks/jsonl.lua \
         share/lua/5.1/lunnel/sinks/http.lua share/lua/5.1/lunnel/sinks/tablestore.lua \
         share/lua/5.1/lunnel/sinks/native.lua share/lunnel/examples/to_jsonl.lua \
         share/lunnel/examples/replicate.lua share/lunnel/examples/post_http.lua \
         share/man/man1/lunnel.1 share/man/man1/lunnel-emulator.1 \
         share/lunnel/contrib/systemd/lunnel@.service share/lunnel/contrib/container/Containerfile; do
  has "$f"
done
for h in api.h options.h worker.h host.h; do # internal contracts (tests/e2e/exports.sh: the public set)
  [[ -e $P/include/lunnel/$h ]] && bad "internal header $h installed" || ok
done

# destination sinks: each C half is its own module in lib/lunnel/, found by the installed Lua
# sink from its own location; lunnel and liblunnel link none of their client libraries
for n in postgres mysql redis kafka; do
  has "lib/lunnel/lunnel_sink_$n.so"
  has "share/lua/5.1/lunnel/sinks/$n.lua"
  has "share/lunnel/examples/to_$n.lua"
done
linked=$(ldd "$P/bin/lunnel" "$P/lib/liblunnel.so" | grep -E 'libpq|mariadb|rdkafka|hiredis')
[[ -z $linked ]] && ok || bad "lunnel links a sink's client library: $linked"
for n in postgres mysql redis kafka; do
  got=$(cd "$work" && env -u LUNNEL_SINK_DIR LD_PRELOAD="${LUNNEL_LUA_PRELOAD:-}" LUNNEL_LIB="$P/lib/liblunnel.so" luajit -e "
    package.path = '$P/share/lua/5.1/?.lua;' .. package.path
    require('lunnel.sinks.$n') print('loaded')" 2>&1)
  [[ $got == loaded ]] && ok || bad "installed lunnel.sinks.$n: $got"
done

# the installed programs contain the runtime: they load no liblunnel, neither the build
# tree's nor the prefix's (the Lua modules inside lunnel resolve it through ffi.C)
lib=$(ldd "$P/bin/lunnel" "$P/bin/lunnel-emulator" | grep liblunnel)
[[ -z $lib ]] && ok || bad "installed programs load a liblunnel: $lib"
"$P/bin/lunnel" --version >"$work/v" 2>&1 && ok || bad "lunnel --version: $(cat "$work/v")"
"$P/bin/lunnel-emulator" --help >"$work/h" 2>&1; grep -qi "listen" "$work/h" && ok || bad "lunnel-emulator --help: $(head -3 "$work/h")"

# man pages: render cleanly (groff warnings are errors here)
if command -v groff >/dev/null; then
  for m in lunnel lunnel-emulator; do
    out=$(groff -man -Tutf8 -ww "$P/share/man/man1/$m.1" 2>&1 >/dev/null)
    [[ -z $out ]] && ok || bad "man page $m.1: $out"
  done
fi

# the installed lunnel replays real rows through an installed example + sink
cp "$S/fuzz/corpus/plainbuffer/put_all_types.bin" "$S/fuzz/corpus/plainbuffer/delete_row.bin" "$work/"
replay() { # OUTDIR [env...]
  local out=$1; shift
  mkdir -p "$out"
  env "$@" "$P/bin/lunnel" replay --script "$P/share/lunnel/examples/to_jsonl.lua" \
    --custom "{\"dir\":\"$out\"}" --workers 1 "$work/put_all_types.bin" "$work/delete_row.bin"
}
check_out() { # OUTDIR WHAT
  local f=$1/replay-0.jsonl
  if [[ -f $f ]] && [[ $(wc -l <"$f") == 2 ]] && grep -q '"pk":{"id":42,"k":"key-42"}' "$f" &&
     grep -q '"action":"DELETE"' "$f"; then ok; else bad "$2: output $(cat "$f" 2>/dev/null)"; fi
}
replay "$work/out1" -u LUNNEL_LUA_DIR >"$work/r1.out" 2>"$work/r1.err" && ok || bad "installed replay: $(cat "$work/r1.err")"
check_out "$work/out1" "installed replay"

# without the source and build trees: a private mount namespace hides them
if [[ $(id -u) == 0 ]] && unshare -m --propagation private true 2>/dev/null; then
  mkdir -p "$work/empty"
  hide="mount --bind '$work/empty' '$S/lua' && mount --bind '$work/empty' '$B'"
  # 1. the installed module tree is complete (explicit LUNNEL_LUA_DIR)
  unshare -m --propagation private bash -c "$hide && $(declare -f replay); P='$P' work='$work'; replay '$work/out2' LUNNEL_LUA_DIR='$P/share/lua/5.1'" \
    >"$work/r2.out" 2>"$work/r2.err" && ok || bad "installed replay, source hidden, LUNNEL_LUA_DIR=prefix: $(cat "$work/r2.err")"
  check_out "$work/out2" "installed modules"
  # 2. by default (no LUNNEL_LUA_DIR) the installed lunnel finds them itself
  unshare -m --propagation private bash -c "$hide && $(declare -f replay); P='$P' work='$work'; replay '$work/out3' -u LUNNEL_LUA_DIR" \
    >"$work/r3.out" 2>"$work/r3.err" && ok ||
    bad "installed lunnel without the source tree and without LUNNEL_LUA_DIR: $(head -2 "$work/r3.err")
      (the Lua host's default lua_dir must also try <exe>/../share/lua/5.1)"
  check_out "$work/out3" "installed lunnel, default module path"
else
  echo "note: not root or no unshare: source-tree independence not checked" >&2
fi

echo "install.sh: $passes passed, $fails failed"
[[ $fails == 0 ]]
