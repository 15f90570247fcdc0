// A searcher's bot on ethers 6.7.1 and @flashbots/ethers-provider-bundle 1.0.0, unchanged: it
// watches the demo pool's Swap events and the public pending transactions over WebSocket,
// sees a victim's swap arrive in the public pool, and backruns it with a bundle (the victim's
// signed transaction, then its own swap back) through eth_sendBundle. Prints where both landed.
"use strict";
const {
  Interface, JsonRpcProvider, Transaction, WebSocketProvider, Wallet, getCreateAddress, id, parseEther,
  parseUnits,
} = require("ethers");
const { FlashbotsBundleProvider } = require("@flashbots/ethers-provider-bundle");

const DEPLOYER = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"; // dev 9
const VICTIM = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"; // dev 3
const BOT = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"; // dev 4
const ABI = new Interface([
  "function transfer(address to, uint256 value) returns (bool)",
  "function approve(address spender, uint256 value) returns (bool)",
  "function swap(address tokenIn, uint256 amountIn, uint256 minAmountOut) returns (uint256)",
  "event Swap(address indexed trader, address indexed tokenIn, uint256 amountIn, uint256 amountOut)",
]);
const FEES = { maxFeePerGas: parseUnits("20", "gwei"), maxPriorityFeePerGas: parseUnits("2", "gwei"), chainId: 31337, type: 2 };

async function until(what, check) {
  for (let i = 0; i < 600; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function main() {
  const [url, wsUrl] = process.argv.slice(2);
  // No request cache: ethers 6 answers a repeated call within 250 ms from memory, so
  // back-to-back sends from one account would reuse a pending nonce.
  const http = new JsonRpcProvider(url, 31337, { cacheTimeout: -1 });
  http.pollingInterval = 100;
  const ws = new WebSocketProvider(wsUrl, 31337);
  const deployer = new Wallet(DEPLOYER, http);
  const victim = new Wallet(VICTIM, http);
  const bot = new Wallet(BOT, http);
  const [tokenA, tokenB, pool] = [0, 1, 2].map((nonce) => getCreateAddress({ from: deployer.address, nonce }));

  // The demo contracts land in block 1; estimates against an earlier state would be wrong.
  for (let i = 0; (await http.getCode(pool)) === "0x"; i++) {
    if (i > 200) throw new Error("the demo pool never appeared");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // Set-up: the victim holds token A, the bot token B; both let the pool take them.
  const setup = [
    await deployer.sendTransaction({ to: tokenA, data: ABI.encodeFunctionData("transfer", [victim.address, parseEther("1000")]) }),
    await deployer.sendTransaction({ to: tokenB, data: ABI.encodeFunctionData("transfer", [bot.address, parseEther("1000")]) }),
    await victim.sendTransaction({ to: tokenA, data: ABI.encodeFunctionData("approve", [pool, parseEther("1000000")]) }),
    await bot.sendTransaction({ to: tokenB, data: ABI.encodeFunctionData("approve", [pool, parseEther("1000000")]) }),
  ];
  for (const tx of setup) {
    const receipt = await tx.wait();
    if (receipt.status !== 1) throw new Error(`set-up transaction ${tx.hash} failed`);
  }

  // The bot.
  const flashbots = await FlashbotsBundleProvider.create(http, new Wallet("0x" + "0b".repeat(32)), url, 31337);
  const swaps = [];
  await ws.on({ address: pool, topics: [ABI.getEvent("Swap").topicHash] }, (log) => swaps.push(log));
  const heads = [];
  await ws.on("block", (number) => heads.push(number));
  let backrun = null;
  let bundleError = null;
  await ws.on("pending", async (hash) => {
    if (backrun !== null) return;
    const raw = await http.send("eth_getRawTransactionByHash", [hash]);
    if (raw === null) return;
    const seen = Transaction.from(raw);
    if (seen.to === null || seen.to.toLowerCase() !== pool.toLowerCase()) return;
    const [tokenIn, amountIn] = ABI.decodeFunctionData("swap", seen.data);
    if (tokenIn.toLowerCase() !== tokenA.toLowerCase()) return;
    // The victim bought B with A: the bot sells B back, right after it.
    const nonce = await http.getTransactionCount(bot.address, "latest");
    const sell = { ...FEES, to: pool, gasLimit: 200000, nonce, data: ABI.encodeFunctionData("swap", [tokenB, amountIn / 10n, 0n]) };
    backrun = { victim: hash };
    const signed = await flashbots.signBundle([{ signedTransaction: raw }, { signer: bot, transaction: sell }]);
    backrun.hash = Transaction.from(signed[1]).hash;
    const head = await http.getBlockNumber();
    for (const target of [head + 1, head + 2, head + 3]) {
      const sent = await flashbots.sendRawBundle(signed, target);
      if ("error" in sent) bundleError = sent.error;
    }
  });

  // The victim swaps right after a new head, so the bot has the slot to answer.
  const seenHeads = heads.length;
  await until("a new head", () => heads.length > seenHeads);
  const swap = await victim.sendTransaction({
    ...FEES, to: pool, gasLimit: 200000, data: ABI.encodeFunctionData("swap", [tokenA, parseEther("100"), 0n]),
  });
  await until("the bot's bundle", () => (backrun !== null && backrun.hash) || bundleError !== null);
  if (bundleError !== null) throw new Error(`bundle: ${JSON.stringify(bundleError)}`);
  const victimReceipt = await swap.wait();
  const botReceipt = await http.waitForTransaction(backrun.hash, 1, 20000);
  await until("both swap events", () => swaps.length >= 2);

  console.log(JSON.stringify({
    victim: { hash: swap.hash, block: victimReceipt.blockNumber, index: victimReceipt.index, status: victimReceipt.status },
    backrun: botReceipt === null ? null : { hash: backrun.hash, block: botReceipt.blockNumber, index: botReceipt.index, status: botReceipt.status },
    botSawVictim: backrun.victim === swap.hash,
    swapEvents: swaps.map((log) => ({ tx: log.transactionHash, block: log.blockNumber, index: log.index })),
  }));
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
