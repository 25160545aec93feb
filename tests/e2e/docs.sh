#!/usr/bin/env bash
# Keeps the documentation true: docs/options.md must be exactly what `lunnel help --markdown`
# prints (the option reference can never drift from the option table in the code), and the
# busted spec shown in README.md ("Testing a transform") must pass as written.
set -euo pipefail
build=${LUNNEL_BUILD_DIR:?}
src=${LUNNEL_SOURCE_DIR:?}
passed=0 failed=0

if diff -u "$src/docs/options.md" <("$build/lunnel" help --markdown); then
  passed=$((passed + 1))
else
  echo "FAIL: docs/options.md is stale; regenerate: build/lunnel help --markdown > docs/options.md"
  failed=$((failed + 1))
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -n '/^-- spec\/aggregate_readme_spec.lua/,/^end)$/p' "$src/README.md" > "$work/readme_spec.lua"
if [ ! -s "$work/readme_spec.lua" ]; then
  echo "FAIL: README.md no longer holds the aggregate_readme_spec example"
  failed=$((failed + 1))
else
  # run from the source root (the example loads examples/aggregate.lua) but from the scratch
  # dir: a test never writes into the source tree
  if (cd "$src" && LD_PRELOAD="${LUNNEL_LUA_PRELOAD:-}" LUNNEL_LIB="$build/liblunnel.so" \
      busted --lua=luajit --pattern=_spec "$work/readme_spec.lua"); then
    passed=$((passed + 1))
  else
    echo "FAIL: the README's busted example does not pass"
    failed=$((failed + 1))
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
