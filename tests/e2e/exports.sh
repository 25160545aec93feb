#!/usr/bin/env bash
# exports.sh: liblunnel's public surface stays what README "Embedding" says it is.
#   1. every dynamic symbol liblunnel.so defines starts with lunnel_ and is not protobuf-c's
#      generated code (lunnel__...); no exceptions (no Lua C-module entry point exists: Lua
#      reaches the library through LuaJIT's FFI only);
#   2. what it exports is exactly the LUNNEL_API declarations of runtime/include/lunnel/*.h:
#      nothing leaks past them, none is missing;
#   3. every function the Lua modules resolve by name (the ffi.cdef blocks of record.lua,
#      testing.lua, sinks/native.lua) is exported, by liblunnel.so (ffi.load, busted) and by
#      the lunnel program (ffi.C inside the binary), which exports nothing else of ours;
#   4. the installed headers are exactly the public ones, each compiles on its own, included
#      twice (C99, pedantic; the include guard), and examples/c/decode_rows.c builds against
#      the installed prefix alone and decodes real rows.
set -uo pipefail
source "$(dirname "$0")/lib/common.sh"

lib=$B/liblunnel.so
defined() { nm -D --defined-only "$1" | awk 'NF == 3 {print $3}' | sort -u; }
defined "$lib" >"$work/lib.syms"
echo "liblunnel.so exports $(wc -l <"$work/lib.syms") symbols"
[[ -s $work/lib.syms ]] && ok || bad "nm -D found no symbols in $lib"

# 1. the prefix
stray=$(grep -v '^lunnel_[a-z0-9]' "$work/lib.syms" | head -20)
[[ -z $stray ]] && ok || bad "liblunnel.so exports symbols outside the lunnel_ API (first 20):
$stray"

# 2. exactly the LUNNEL_API declarations (a declaration may span lines)
perl -0777 -ne 'while (/\bLUNNEL_API\b[^;(]*?\b(lunnel_\w+)\s*\(/g) { print "$1\n" }' \
  "$S"/runtime/include/lunnel/*.h | sort -u >"$work/declared"
[[ $(wc -l <"$work/declared") -ge 40 ]] && ok || bad "found only $(wc -l <"$work/declared") LUNNEL_API declarations"
leaked=$(comm -13 "$work/declared" "$work/lib.syms")
[[ -z $leaked ]] && ok || bad "exported without a LUNNEL_API declaration: $leaked"
missing=$(comm -23 "$work/declared" "$work/lib.syms")
[[ -z $missing ]] && ok || bad "declared LUNNEL_API but not exported: $missing"

# 3. what LuaJIT resolves by name
for f in record.lua testing.lua sinks/native.lua; do
  perl -0777 -ne 'while (/ffi\.cdef\s*(?:\(\s*)?\[\[(.*?)\]\]/gs) { my $b = $1;
    while ($b =~ /\b(lunnel_\w+)\s*\(/g) { print "$1\n" } }
    while (/cdef_once\([^,]*,\s*\[\[(.*?)\]\]/gs) { my $b = $1;
    while ($b =~ /\b(lunnel_\w+)\s*\(/g) { print "$1\n" } }' "$S/lua/lunnel/$f"
done | sort -u >"$work/lua.needs"
[[ $(wc -l <"$work/lua.needs") -ge 30 ]] && ok || bad "found only $(wc -l <"$work/lua.needs") functions in the Lua cdefs"
defined "$B/lunnel" >"$work/bin.syms"
for want in "$work/lib.syms:liblunnel.so" "$work/bin.syms:the lunnel program"; do
  unresolved=$(comm -23 "$work/lua.needs" "${want%%:*}")
  [[ -z $unresolved ]] && ok || bad "${want#*:} does not export what the Lua modules call: $unresolved"
done
# the program exports the same API, nothing of its internals or of protobuf-c (the C
# runtime's and the linker's own aside: _start, __data_start, data_start, _end, ..., and
# copy-relocated libc data such as stderr@GLIBC_2.2.5)
bin_ours=$(grep -v -e '^_' -e '@' -e '^data_start$' "$work/bin.syms" | grep -vxFf "$work/declared")
[[ -z $bin_ours ]] && ok || bad "the lunnel program exports internals: $(head -20 <<<"$bin_ours")"

# 4. the installed headers
P=$work/prefix
cmake --install "$B" --prefix "$P" >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; echo "FAIL: cmake --install" >&2; exit 1; }
got=$(cd "$P/include/lunnel" && ls | sort | tr '\n' ' ')
want="codec.h export.h plainbuffer.h readrecords.h record.h version.h "
[[ $got == "$want" ]] && ok || bad "installed headers: got '$got', want '$want'"
cc=${CC:-cc}
for h in "$P"/include/lunnel/*.h; do
  if printf '#include <lunnel/%s>\n#include <lunnel/%s>\ntypedef int not_empty;\n' "${h##*/}" "${h##*/}" |
     "$cc" -std=c99 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$P/include" -x c - 2>"$work/h.err"; then ok
  else bad "installed header ${h##*/} does not compile alone: $(cat "$work/h.err")"; fi
done
# an embedder's program: the installed prefix only (no source include path)
if "$cc" -std=c99 -Wall -Wextra -Werror -I"$P/include" "$S/examples/c/decode_rows.c" -L"$P/lib" -llunnel \
   -Wl,-rpath,"$P/lib" -o "$work/decode_rows" 2>"$work/cc.err"; then
  ok
  out=$(LD_PRELOAD="${LUNNEL_LUA_PRELOAD:-}" "$work/decode_rows" "$S/fuzz/corpus/plainbuffer/put_all_types.bin" 2>"$work/run.err")
  [[ $out == *'"pk":{"id":42,"k":"key-42"}'* ]] && ok || bad "decode_rows printed '$out' ($(cat "$work/run.err"))"
  grep -q "liblunnel $(sed -n 's/^project(lunnel VERSION \([0-9.]*\).*/\1/p' "$S/CMakeLists.txt"): 1 rows" "$work/run.err" &&
    ok || bad "decode_rows: $(cat "$work/run.err")"
else
  bad "examples/c/decode_rows.c does not build against the installed prefix: $(cat "$work/cc.err")"
fi

finish
