// A searcher's watcher on ethers 6.7.1's WebSocketProvider, unchanged: new heads, the logs of a
// contract it deploys, and pending transactions, all over eth_subscribe on the RPC port. A
// public transaction is announced while pending; a private one (sent with
// @flashbots/ethers-provider-bundle) is never announced, before or after it lands.
"use strict";
const { JsonRpcProvider, WebSocketProvider, Wallet, id, parseUnits } = require("ethers");
const { FlashbotsBundleProvider } = require("@flashbots/ethers-provider-bundle");

// Runtime LOG2(topic0 = calldata word 0, topic1 = calldata word 1), behind its init code.
const EMITTER_INIT = "0x6b60203560003560006000a200600052600c6014f300";

async function until(what, check) {
  for (let i = 0; i < 300; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function main() {
  const [url, wsUrl, to] = process.argv.slice(2);
  const http = new JsonRpcProvider(url, 31337);
  http.pollingInterval = 100;
  const ws = new WebSocketProvider(wsUrl, 31337);
  const searcher = new Wallet("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d", http);
  const deployed = await (await searcher.sendTransaction({ data: EMITTER_INIT })).wait();
  const emitter = deployed.contractAddress;
  const topic = id("Swap(cobuild-subscribe-test)");

  const heads = [];
  const pending = new Set();
  const logs = [];
  await ws.on("block", (number) => heads.push(number));
  await ws.on("pending", (hash) => pending.add(hash));
  await ws.on({ address: emitter, topics: [topic] }, (log) => logs.push(log));
  // A head seen means the subscriptions are in place.
  await until("a new head", () => heads.length > 0);

  const data = topic + "00".repeat(31) + "2a";
  const call = await searcher.sendTransaction({ to: emitter, data });
  await until("the public transaction announced", () => pending.has(call.hash));
  const receipt = await call.wait();
  await until("the log", () => logs.length > 0);

  const authSigner = new Wallet("0x" + "07".repeat(32));
  const flashbots = await FlashbotsBundleProvider.create(http, authSigner, url, 31337);
  const user = new Wallet("0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e", http);
  const sent = await flashbots.sendPrivateTransaction(
    {
      signer: user,
      transaction: {
        to, value: 5n, gasLimit: 21000, chainId: 31337, type: 2,
        maxFeePerGas: parseUnits("10", "gwei"), maxPriorityFeePerGas: parseUnits("2", "gwei"),
        nonce: await http.getTransactionCount(user.address),
      },
    },
    { maxBlockNumber: (await http.getBlockNumber()) + 100 },
  );
  if ("error" in sent) throw new Error(`send: ${JSON.stringify(sent.error)}`);
  await sent.wait();
  const privateHash = sent.transaction.hash;
  const landed = await http.getTransactionReceipt(privateHash);
  // Heads keep coming after it landed: the subscription saw the blocks since.
  const seenHeads = heads.length;
  await until("another head", () => heads.length > seenHeads);

  console.log(JSON.stringify({
    heads: heads.length,
    headsInOrder: heads.every((n, i) => i === 0 || n === heads[i - 1] + 1),
    log: { tx: logs[0].transactionHash, block: logs[0].blockNumber, topic1: logs[0].topics[1] },
    call: { hash: call.hash, block: receipt.blockNumber },
    publicAnnounced: pending.has(call.hash),
    privateLanded: landed !== null && landed.status === 1,
    privateAnnounced: pending.has(privateHash),
  }));
  // ethers 6.7.1's destroy() rejects its own pending eth_unsubscribe calls: exit instead.
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
