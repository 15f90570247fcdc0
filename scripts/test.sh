#!/usr/bin/env bash
# Sets up what the tests need on a fresh machine and runs the whole suite.
#
# Installs the pinned external clients with npm (anvil, cast, ethers, ethers-provider-bundle,
# mev-share-client, solc: tools/package-lock.json) and pip (web3-flashbots:
# tools/requirements.txt, in tools/.venv), checks the contract artifacts, formatting and lints, then runs every test,
# including the end-to-end tests that start real `cobuild` processes and the cross-validation
# against anvil.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
  echo "npm is required (apt-get install -y nodejs npm)" >&2
  exit 1
fi
echo "==> installing pinned test tools (tools/package-lock.json)"
npm ci --prefix tools --no-audit --no-fund --loglevel=error
echo "==> installing pinned Python clients (tools/requirements.txt) into tools/.venv"
[ -x tools/.venv/bin/python ] || python3 -m venv tools/.venv
tools/.venv/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
export COBUILD_TOOLS_BIN="$PWD/tools/node_modules/.bin"
export FOUNDRY_DISABLE_NIGHTLY_WARNING=1

echo "==> contracts: artifacts match their sources"
scripts/build-contracts.sh --check

echo "==> cargo fmt"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked
