"""A searcher using PyPI `flashbots` 2.0.0 (web3-flashbots) unchanged: simulate, send, wait.

The node's one URL is both the web3 provider and the Flashbots relay.
"""

import json
import sys

from eth_account import Account
from flashbots import flashbot
from web3 import HTTPProvider, Web3

url, to = sys.argv[1], sys.argv[2]
w3 = Web3(HTTPProvider(url))
flashbot(w3, Account.from_key("0x" + "07" * 32), url)
# Dev account 6 of the standard mnemonic.
searcher = Account.from_key("0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e")
tx = {
    "to": Web3.to_checksum_address(to),
    "value": 54321,
    "gas": 21000,
    "maxFeePerGas": 10 * 10**9,
    "maxPriorityFeePerGas": 2 * 10**9,
    "nonce": w3.eth.get_transaction_count(searcher.address),
    "chainId": 31337,
    "type": 2,
}
bundle = [{"signer": searcher, "transaction": tx}]
block = w3.eth.block_number
simulation = w3.flashbots.simulate(bundle, block + 1)
target = block + 2
response = w3.flashbots.send_bundle(bundle, target_block_number=target)
response.wait()
receipt = response.receipts()[0]
print(json.dumps({
    "target": target,
    "block": receipt["blockNumber"],
    "status": receipt["status"],
    "simulatedGas": simulation["totalGasUsed"],
}))
