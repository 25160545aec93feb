#!/usr/bin/env bash
# docs/options.md must be exactly what `lunnel help --markdown` prints: the option reference
# the README points to can never drift from the option table in the code.
set -euo pipefail
build=${LUNNEL_BUILD_DIR:?}
src=${LUNNEL_SOURCE_DIR:?}
if ! diff -u "$src/docs/options.md" <("$build/lunnel" help --markdown); then
  echo "FAIL: docs/options.md is stale; regenerate: build/lunnel help --markdown > docs/options.md"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "1 passed, 0 failed"
