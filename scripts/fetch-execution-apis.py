#!/usr/bin/env python3
"""Fetches the Ethereum execution-apis OpenRPC specification of the eth namespace at a pinned
commit and writes it as one JSON document the conformance test reads (checked in, so tests
never reach the network).

The specification lives as YAML in ethereum/execution-apis: methods in src/eth/*.yaml, schemas
in src/schemas/*.yaml, referring to each other as '#/components/schemas/<name>'. This script
puts them together the way the repository's own build does: {"methods": [...],
"components": {"schemas": {...}}}, plus the commit it came from.

Usage (PyYAML needed, `pip install pyyaml`):
    scripts/fetch-execution-apis.py                 # downloads from GitHub at COMMIT
    scripts/fetch-execution-apis.py --repo DIR      # reads a local clone at COMMIT instead
"""

import argparse
import json
import pathlib
import subprocess
import urllib.request

import yaml

COMMIT = "033ca6e69da000445840d2060ff47e5e56172a86"
METHODS = [
    "block", "capabilities", "client", "execute", "fee_market", "fill", "filter", "sign", "state",
    "submit", "transaction",
]
SCHEMAS = [
    "base-types", "block", "block-access-list", "capabilities", "client", "execute", "filter",
    "opcode-tracer", "receipt", "state", "transaction", "txpool", "withdrawal",
]
OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/rpc/tests/openrpc/execution-apis.json"


def read(path, repo):
    if repo:
        return subprocess.run(
            ["git", "-C", repo, "show", f"{COMMIT}:{path}"], check=True, capture_output=True, text=True
        ).stdout
    url = f"https://raw.githubusercontent.com/ethereum/execution-apis/{COMMIT}/{path}"
    with urllib.request.urlopen(url) as response:
        return response.read().decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", help="a local clone of ethereum/execution-apis")
    args = parser.parse_args()
    methods = []
    for name in METHODS:
        methods.extend(yaml.safe_load(read(f"src/eth/{name}.yaml", args.repo)))
    schemas = {}
    for name in SCHEMAS:
        schemas.update(yaml.safe_load(read(f"src/schemas/{name}.yaml", args.repo)))
    document = {
        "source": f"https://github.com/ethereum/execution-apis/tree/{COMMIT}/src",
        "commit": COMMIT,
        "methods": methods,
        "components": {"schemas": schemas},
    }
    OUT.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(f"{len(methods)} methods, {len(schemas)} schemas -> {OUT}")


if __name__ == "__main__":
    main()
