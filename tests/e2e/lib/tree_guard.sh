#!/usr/bin/env bash
# tree_guard.sh snapshot|check: the suites write nothing into the source tree. ctest runs
# `snapshot` before the first Lua/e2e/Node test and `check` after the last (a fixture, see
# cmake/tests.cmake): check fails naming every untracked file that appeared in between.
# Untracked files only (git status, ignore rules applied): someone editing tracked files in
# the same tree while the suite runs is not a test writing there. Without git, nothing to do.
set -uo pipefail
src=${LUNNEL_SOURCE_DIR:?}
snap=${LUNNEL_BUILD_DIR:?}/tree_guard.untracked
untracked() { git -C "$src" status --porcelain=v1 --untracked-files=all | sed -n 's/^?? //p' | sort; }
git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "not a git checkout: nothing to check"; exit 0; }
case ${1:-} in
  snapshot) untracked >"$snap" ;;
  check)
    [ -f "$snap" ] || { echo "no snapshot ($snap): run through ctest"; exit 1; }
    new=$(untracked | comm -13 "$snap" -)
    if [ -n "$new" ]; then
      echo "FAIL: files appeared in the source tree while the tests ran:"
      echo "$new" | sed 's/^/  /'
      exit 1
    fi
    echo "no test wrote into the source tree" ;;
  *) echo "usage: tree_guard.sh snapshot|check" >&2; exit 2 ;;
esac
