#!/usr/bin/env bash
# Installs the Node test dependencies (the official Tablestore Node.js SDK 5.6.5 and what it
# pulls in) exactly as pinned by the committed package-lock.json (idempotent: nothing to do
# when node_modules already matches the lockfile).
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.package-lock.json
if [ -f node_modules/tablestore/package.json ] && [ -f "$stamp" ] &&
   grep -q '"version": "5.6.5"' node_modules/tablestore/package.json &&
   [ ! package-lock.json -nt "$stamp" ]; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
