// A searcher using @flashbots/ethers-provider-bundle 1.0.0 unchanged against one member node:
// signs a transfer bundle and sends it for each of the blocks `from..=to` (the first that lands
// wins; the others then fail on the nonce), without waiting. Prints the bundle hashes.
"use strict";
const { JsonRpcProvider, Wallet, parseUnits } = require("ethers");
const { FlashbotsBundleProvider } = require("@flashbots/ethers-provider-bundle");

async function main() {
  const [url, to, from, until] = process.argv.slice(2);
  const provider = new JsonRpcProvider(url, 31337, { pollingInterval: 100 });
  const authSigner = new Wallet("0x" + "09".repeat(32));
  const flashbots = await FlashbotsBundleProvider.create(provider, authSigner, url, 31337);
  // Dev account 7 of the standard mnemonic.
  const searcher = new Wallet("0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356", provider);
  const transaction = {
    to,
    value: 777n,
    gasLimit: 21000,
    nonce: 0,
    maxFeePerGas: parseUnits("10", "gwei"),
    maxPriorityFeePerGas: parseUnits("2", "gwei"),
    chainId: 31337,
    type: 2,
  };
  const signed = await flashbots.signBundle([{ signer: searcher, transaction }]);
  const hashes = [];
  for (let block = Number(from); block <= Number(until); block++) {
    const sent = await flashbots.sendRawBundle(signed, block);
    if ("error" in sent) throw new Error(`send: ${JSON.stringify(sent.error)}`);
    hashes.push({ block, bundleHash: sent.bundleHash });
  }
  console.log(JSON.stringify({ hashes, signed }));
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
