#!/usr/bin/env bash
# Every C source and header follows the repository's .clang-format (fix with `make format`).
set -euo pipefail
src=${LUNNEL_SOURCE_DIR:?}
cd "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.c' '*.h')
else
  mapfile -t files < <(find runtime emulator fuzz bench -name '*.[ch]')
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "FAIL: ${#bad[@]} of ${#files[@]} C files differ from .clang-format (run make format):"
  printf '  %s\n' "${bad[@]}"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "1 passed, 0 failed (${#files[@]} files formatted)"
