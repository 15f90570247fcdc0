#!/usr/bin/env bash
# Rebuilds contracts/artifacts from contracts/src with the pinned solcjs, offline and
# byte-for-byte reproducible. `--check` verifies the committed artifacts instead.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d tools/node_modules/solc ] || npm ci --prefix tools --no-audit --no-fund --loglevel=error
node contracts/build.js "$@"
