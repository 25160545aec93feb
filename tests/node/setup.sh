#!/usr/bin/env bash
# Installs the official Tablestore Node.js SDK, pinned, for the node.* tests (idempotent).
set -euo pipefail
cd "$(dirname "$0")"
if [ -f node_modules/tablestore/package.json ] &&
   grep -q '"version": "5.6.5"' node_modules/tablestore/package.json; then
  exit 0
fi
npm install --no-save --no-audit --no-fund --loglevel=error tablestore@5.6.5
