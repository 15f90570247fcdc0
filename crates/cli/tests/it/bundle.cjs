// A searcher using @flashbots/ethers-provider-bundle 1.0.0 (ethers 6.7.1) unchanged: the node's
// one URL is both the ethers provider and the Flashbots relay. Signs a bundle, simulates it
// (eth_callBundle), sends it (eth_sendBundle) for two blocks ahead and waits for inclusion.
"use strict";
const { JsonRpcProvider, Wallet, parseUnits } = require("ethers");
const { FlashbotsBundleProvider, FlashbotsBundleResolution } = require("@flashbots/ethers-provider-bundle");

async function main() {
  const [url, to] = process.argv.slice(2);
  const provider = new JsonRpcProvider(url, 31337, { pollingInterval: 100 });
  const authSigner = new Wallet("0x" + "07".repeat(32));
  const flashbots = await FlashbotsBundleProvider.create(provider, authSigner, url, 31337);
  // Dev account 5 of the standard mnemonic.
  const searcher = new Wallet("0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba", provider);
  const transaction = {
    to,
    value: 12345n,
    gasLimit: 21000,
    maxFeePerGas: parseUnits("10", "gwei"),
    maxPriorityFeePerGas: parseUnits("2", "gwei"),
    chainId: 31337,
    type: 2,
  };
  const signed = await flashbots.signBundle([{ signer: searcher, transaction }]);
  const target = (await provider.getBlockNumber()) + 2;
  const simulation = await flashbots.simulate(signed, target);
  if ("error" in simulation) throw new Error(`simulate: ${JSON.stringify(simulation.error)}`);
  const sent = await flashbots.sendRawBundle(signed, target);
  if ("error" in sent) throw new Error(`send: ${JSON.stringify(sent.error)}`);
  const resolution = await sent.wait();
  console.log(
    JSON.stringify({
      included: resolution === FlashbotsBundleResolution.BundleIncluded,
      target,
      simulatedGas: Number(simulation.totalGasUsed),
      bundleHash: sent.bundleHash,
    }),
  );
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
