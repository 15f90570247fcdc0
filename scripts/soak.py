#!/usr/bin/env python3
"""Steady orderflow against a running `cobuild devnet --nodes N`, with each process's memory and
its data directory's size sampled as it runs: does a node's footprint stay flat over time?

Sends signed EIP-1559 transfers from the ten development accounts (sequential nonces, read from
the chain at the start) to the first node's RPC, in JSON-RPC batches, at a steady rate (or as fast
as the node answers, if slower); replication carries them to every other member. Every `--every` seconds it prints one line per process:
resident memory (from /proc), the size of its data directory (logs, order log, chain) and of
its logs alone. At the end it waits (`--land-secs`) until every accepted transaction is in a
block and prints how many landed, read from the accounts' nonces; it exits with 2 if some did
not.

    tools/.venv/bin/python scripts/soak.py --data-dir /tmp/cobuild-soak --rate 500 --secs 600

Needs the venv of tools/requirements.txt (eth-account comes with web3), plus `pip install
coincurve`: without it eth-account signs in pure Python, at about 100 transactions a second.
"""

import argparse
import json
import multiprocessing
import os
import re
import sys
import threading
import time
import urllib.request

from eth_account import Account

MNEMONIC = "test test test test test test test test test test test junk"
CHAIN_ID = 31337
SINK = "0x000000000000000000000000000000000000dEaD"


def rpc(url, calls):
    body = json.dumps(calls).encode()
    request = urllib.request.Request(url, body, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def dev_accounts():
    Account.enable_unaudited_hdwallet_features()
    return [Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(10)]


def transfer(nonce, fee):
    return {
        "type": 2, "chainId": CHAIN_ID, "nonce": nonce, "to": SINK, "value": 1,
        "gas": 21000, "maxFeePerGas": 2 * fee + 10**9, "maxPriorityFeePerGas": 10**9,
    }


def sign_run(job):
    """`count` transfers from one account with consecutive nonces from `nonce` (a presign worker)."""
    key, nonce, count, fee = job
    account = Account.from_key(key)
    return [account.sign_transaction(transfer(nonce + k, fee)).rawTransaction.hex() for k in range(count)]


def tree_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def log_size(path, own_only):
    """Bytes of the log files under `path`: `*.log`, the rotated `*.log.N` and a node's
    `node.out` (only those directly in it with `own_only`)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            if re.search(r"\.log(\.\d+)?$", name) or name == "node.out":
                try:
                    total += os.path.getsize(os.path.join(root, name))
                except OSError:
                    pass
        if own_only:
            break
    return total


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def processes(endpoints):
    """The hub and each member node: (name, pid, data dir), as endpoints.json lists them."""
    found = [("hub", endpoints["hub"]["pid"], endpoints["hub"]["data_dir"])]
    for i, node in enumerate(endpoints["nodes"]):
        found.append((f"node-{node.get('id', i)}", node.get("pid"), node["data_dir"]))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the devnet's --data-dir")
    parser.add_argument("--rate", type=float, default=500.0, help="transactions per second")
    parser.add_argument("--secs", type=float, default=600.0, help="how long to send")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--batch", type=int, default=50, help="transactions per JSON-RPC batch")
    parser.add_argument(
        "--presign", action="store_true",
        help="sign every transaction before sending starts (rate x secs of them), so that the "
             "sender's own signing does not take CPU from the nodes on a small machine")
    parser.add_argument(
        "--land-secs", type=float, default=60.0,
        help="after sending, how long to wait for every accepted transaction to be in a block")
    args = parser.parse_args()

    with open(os.path.join(args.data_dir, "endpoints.json")) as f:
        endpoints = json.load(f)
    url = endpoints["nodes"][0]["rpc"]
    accounts = dev_accounts()
    answers = rpc(url, [
        {"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionCount", "params": [a.address, "pending"]}
        for i, a in enumerate(accounts)
    ])
    nonces = [int(a["result"], 16) for a in sorted(answers, key=lambda a: a["id"])]
    first_nonces = list(nonces)
    accepted = [0] * len(accounts)
    fee = int(rpc(url, {"jsonrpc": "2.0", "id": 0, "method": "eth_gasPrice", "params": []})["result"], 16)

    def sign(i):
        nonces[i] += 1
        return accounts[i].sign_transaction(transfer(nonces[i] - 1, fee)).rawTransaction.hex()

    signed = None
    if args.presign:
        began = time.monotonic()
        # Whole rounds of the accounts, so that signing on past them continues their nonces.
        rounds = -(-(int(args.rate * args.secs) + args.batch) // len(accounts))
        count = rounds * len(accounts)
        # One run of nonces per account and worker, on every core: signing is the slow part.
        per_worker = -(-rounds // (os.cpu_count() or 1))
        owners = [i for i in range(len(accounts)) for _ in range(0, rounds, per_worker)]
        jobs = [(a.key, nonces[i] + start, min(per_worker, rounds - start), fee)
                for i, a in enumerate(accounts) for start in range(0, rounds, per_worker)]
        with multiprocessing.Pool() as pool:
            runs = pool.map(sign_run, jobs)
        by_account = [[] for _ in accounts]
        for i, run in zip(owners, runs):
            by_account[i].extend(run)
        # Sent round-robin over the accounts, as `sign` would have made them.
        signed = iter([by_account[n % len(accounts)][n // len(accounts)] for n in range(count)])
        for i in range(len(accounts)):
            nonces[i] += rounds
        print(f"signed {count} transactions in {time.monotonic() - began:.0f} s", flush=True)

    sent = refused = 0
    failures = {}
    stop = time.monotonic() + args.secs
    interval = args.batch / args.rate

    def sample(elapsed):
        for name, pid, directory in processes(endpoints):
            rss = rss_kib(pid) if pid else None
            # The hub's directory holds the nodes' too: count only its own files.
            size = tree_size(directory) if name != "hub" else sum(
                os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory)
                if os.path.isfile(os.path.join(directory, f)))
            logs = log_size(directory, own_only=name == "hub")
            print(f"t={elapsed:6.0f}s {name:8} rss {rss / 1024 if rss else float('nan'):8.1f} MiB"
                  f"  data {size / 2**20:8.1f} MiB (logs {logs / 2**20:6.1f})"
                  f"  sent {sent} refused {refused}", flush=True)

    start = time.monotonic()
    next_sample = start
    next_batch = start
    turn = 0
    while time.monotonic() < stop:
        now = time.monotonic()
        if now >= next_sample:
            sample(now - start)
            next_sample += args.every
        calls = []
        owners = []
        for _ in range(args.batch):
            i = turn % len(accounts)
            turn += 1
            owners.append(i)
            raw = next(signed, None) if signed is not None else None
            if raw is None:
                raw = sign(i)
            calls.append({"jsonrpc": "2.0", "id": len(calls), "method": "eth_sendRawTransaction", "params": [raw]})
        try:
            for answer in rpc(url, calls):
                if "error" in answer:
                    refused += 1
                    message = answer["error"].get("message", "")[:60]
                    failures[message] = failures.get(message, 0) + 1
                else:
                    sent += 1
                    accepted[owners[answer["id"]]] += 1
        except OSError as error:
            refused += len(calls)
            failures[str(error)[:60]] = failures.get(str(error)[:60], 0) + 1
        next_batch += interval
        delay = next_batch - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    sample(time.monotonic() - start)
    print(f"sent {sent} in {time.monotonic() - start:.0f} s ({sent / (time.monotonic() - start):.0f}/s), refused {refused}")
    for message, count in sorted(failures.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  {count} x {message}")

    # Landed: each account's nonce in the latest block, against the transactions it had
    # accepted (a refused one leaves a gap that the ones after it cannot pass).
    deadline = time.monotonic() + args.land_secs
    while True:
        answers = rpc(url, [
            {"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionCount", "params": [a.address, "latest"]}
            for i, a in enumerate(accounts)
        ])
        mined = [int(a["result"], 16) - first
                 for a, first in zip(sorted(answers, key=lambda a: a["id"]), first_nonces)]
        landed = sum(min(m, a) for m, a in zip(mined, accepted))
        if landed == sum(accepted) or time.monotonic() >= deadline:
            break
        time.sleep(1)
    print(f"landed {landed} of the {sum(accepted)} accepted")
    if not sent:
        return 1
    return 0 if landed == sum(accepted) else 2


if __name__ == "__main__":
    sys.exit(main())
