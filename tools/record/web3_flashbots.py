"""Drives PyPI `flashbots` (web3-flashbots) against the capture server at argv[1].

Reads its inputs as JSON on stdin (from record.js): the Flashbots auth key, the two dev account
keys, the chain id, the transfer recipient and the replacement uuid. The client signs the
transactions itself. Prints {"client": label} on stdout; the server records the requests.
"""

import json
import sys
from importlib.metadata import version

from eth_account import Account
from flashbots import flashbot
from web3 import HTTPProvider, Web3

GWEI = 10**9


def main() -> None:
    url = sys.argv[1]
    spec = json.load(sys.stdin)
    auth = Account.from_key(spec["authKey"])
    dev0, dev1 = (Account.from_key(k) for k in spec["keys"])

    def transfer() -> dict:
        # A fresh dict each time: sign_bundle adds "from" to the one it is given.
        return {
            "type": 2,
            "chainId": spec["chainId"],
            "nonce": 0,
            "to": spec["to"],
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 5 * GWEI,
            "maxPriorityFeePerGas": GWEI,
            "data": "0x",
        }

    def bundle() -> list:
        return [
            {"signer": dev0, "transaction": transfer()},
            {"signer": dev1, "transaction": transfer()},
        ]

    w3 = Web3(HTTPProvider(url))
    flashbot(w3, auth, url)
    # The chain's head is block 3: simulate on it (state block 2, the head block's timestamp).
    w3.flashbots.simulate(bundle(), 3)  # id 0
    # minTimestamp/maxTimestamp 0 and revertingTxHashes [] are the client's defaults.
    w3.flashbots.send_bundle(bundle(), 3, {"replacementUuid": spec["uuid"]})  # id 1
    w3.flashbots.send_private_transaction(  # id 2: maxBlockNumber as a JSON number
        {"signer": dev1, "transaction": transfer()}, 5
    )
    w3.flashbots.cancel_bundles(spec["uuid"])  # id 3
    w3.flashbots.get_user_stats_v2()  # id 4: the head, 0x3

    label = f"flashbots {version('flashbots')} (web3-flashbots, web3 {version('web3')})"
    print(json.dumps({"client": label}))


if __name__ == "__main__":
    main()
