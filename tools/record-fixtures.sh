#!/usr/bin/env bash
# Records crates/test-utils/fixtures/flashbots-client-requests.jsonl: the signed Flashbots and
# MEV-Share requests (raw body + X-Flashbots-Signature) that the pinned real clients send,
# @flashbots/ethers-provider-bundle and @flashbots/mev-share-client with ethers
# (tools/package-lock.json) and PyPI flashbots with web3 (tools/requirements.txt, tools/.venv),
# captured by a local JSON-RPC server (tools/record/). Deterministic and idempotent: rerun it with
# `tools/record-fixtures.sh` after changing a client pin, and check the file in if it changed.
set -euo pipefail
cd "$(dirname "$0")/.."

out=crates/test-utils/fixtures/flashbots-client-requests.jsonl

npm ci --prefix tools --no-audit --no-fund --loglevel=error >/dev/null
[ -x tools/.venv/bin/python ] || python3 -m venv tools/.venv
tools/.venv/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt

# The clients talk to 127.0.0.1 only: keep any configured proxy out of the way.
NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" \
  node tools/record/record.js "$out"
node tools/record/verify.js "$out" >/dev/null
echo "recorded $(wc -l <"$out") signed requests to $out"
