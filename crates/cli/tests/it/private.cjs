// A user of @flashbots/ethers-provider-bundle 1.0.0 (ethers 6.7.1), unchanged: sends a private
// transaction (eth_sendPrivateTransaction) and waits for it to land; sends another one, cancels
// it (eth_cancelPrivateTransaction) and checks it never lands.
"use strict";
const { JsonRpcProvider, Wallet, parseUnits } = require("ethers");
const { FlashbotsBundleProvider, FlashbotsTransactionResolution } = require("@flashbots/ethers-provider-bundle");

async function blocksPass(provider, n) {
  const until = (await provider.getBlockNumber()) + n;
  while ((await provider.getBlockNumber()) < until) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main() {
  const [url, to] = process.argv.slice(2);
  const provider = new JsonRpcProvider(url, 31337);
  // ethers 6.7.1 ignores the constructor's pollingInterval for block events (it polls every
  // 4 s, then emits the missed blocks in one burst); the setter works.
  provider.pollingInterval = 100;
  const authSigner = new Wallet("0x" + "07".repeat(32));
  const flashbots = await FlashbotsBundleProvider.create(provider, authSigner, url, 31337);
  const fees = {
    gasLimit: 21000,
    maxFeePerGas: parseUnits("10", "gwei"),
    maxPriorityFeePerGas: parseUnits("2", "gwei"),
    chainId: 31337,
    type: 2,
  };

  // Dev account 6: a private transaction that lands.
  const user = new Wallet("0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e", provider);
  const head = await provider.getBlockNumber();
  const nonce = await provider.getTransactionCount(user.address);
  const sent = await flashbots.sendPrivateTransaction(
    { signer: user, transaction: { ...fees, to, value: 777n, nonce } },
    { maxBlockNumber: head + 100 },
  );
  if ("error" in sent) throw new Error(`send: ${JSON.stringify(sent.error)}`);
  const resolution = await sent.wait();
  const receipt = await provider.getTransactionReceipt(sent.transaction.hash);

  // Dev account 7: one nonce ahead, so it cannot land before it is cancelled.
  const other = new Wallet("0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356", provider);
  const next = await provider.getTransactionCount(other.address);
  const doomed = await flashbots.sendPrivateTransaction(
    { signer: other, transaction: { ...fees, to, value: 888n, nonce: next + 1 } },
    { maxBlockNumber: (await provider.getBlockNumber()) + 20 },
  );
  if ("error" in doomed) throw new Error(`send: ${JSON.stringify(doomed.error)}`);
  const hiddenWhilePending = (await provider.getTransaction(doomed.transaction.hash)) === null;
  const cancelled = await flashbots.cancelPrivateTransaction(doomed.transaction.hash);
  if (cancelled !== true) throw new Error(`cancel: ${JSON.stringify(cancelled)}`);
  // Fill the gap in public: the cancelled transaction would now be valid, but must not land.
  const filler = await other.sendTransaction({ ...fees, to, value: 1n, nonce: next });
  await filler.wait();
  await blocksPass(provider, 3);
  const cancelledReceipt = await provider.getTransactionReceipt(doomed.transaction.hash);

  console.log(
    JSON.stringify({
      included: resolution === FlashbotsTransactionResolution.TransactionIncluded,
      status: receipt ? receipt.status : null,
      block: receipt ? receipt.blockNumber : null,
      maxBlock: head + 100,
      hiddenWhilePending,
      cancelledLanded: cancelledReceipt !== null,
    }),
  );
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
