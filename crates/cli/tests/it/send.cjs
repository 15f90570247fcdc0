// An ethers v6 JsonRpcProvider user: sends 0.5 ETH from dev account 1 and waits for the receipt.
// CommonJS so NODE_PATH (the pinned tools/node_modules) resolves `ethers`.
"use strict";
const { JsonRpcProvider, Wallet, parseEther } = require("ethers");

async function main() {
  const [url, to] = process.argv.slice(2);
  const provider = new JsonRpcProvider(url, 31337, { pollingInterval: 100 });
  const wallet = new Wallet("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d", provider);
  const tx = await wallet.sendTransaction({ to, value: parseEther("0.5") });
  const receipt = await tx.wait();
  const balance = await provider.getBalance(to);
  console.log(JSON.stringify({ status: receipt.status, block: receipt.blockNumber, balance: balance.toString() }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
