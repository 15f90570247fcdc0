// Two searchers using @flashbots/ethers-provider-bundle 1.0.0 unchanged, each at another member
// node, send competing bundles: both spend the same account's nonce 0, A tipping 200 gwei a gas
// and B 100 gwei, for each of the blocks `from..=until`. First A delegates its refunds to
// `delegate` with flashbots_setFeeRefundRecipient, signed as the Flashbots clients sign.
// Prints the bundle hashes, transaction hashes and the searchers' addresses.
"use strict";
const { JsonRpcProvider, Wallet, parseUnits, id } = require("ethers");
const { FlashbotsBundleProvider } = require("@flashbots/ethers-provider-bundle");

// Dev account 5 of the standard mnemonic: the account both bundles spend (8 owns the registry).
const SPENDER = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";

async function signedCall(url, signer, method, params) {
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method, params });
  const signature = `${signer.address}:${await signer.signMessage(id(body))}`;
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "X-Flashbots-Signature": signature },
    body,
  });
  const reply = await response.json();
  if (reply.error) throw new Error(`${method}: ${JSON.stringify(reply.error)}`);
  return reply.result;
}

async function send(url, auth, tip, to, from, until) {
  const provider = new JsonRpcProvider(url, 31337, { pollingInterval: 100 });
  const flashbots = await FlashbotsBundleProvider.create(provider, auth, url, 31337);
  const spender = new Wallet(SPENDER, provider);
  const transaction = {
    to,
    value: 1n,
    gasLimit: 21000,
    nonce: 0,
    maxFeePerGas: parseUnits("400", "gwei"),
    maxPriorityFeePerGas: parseUnits(tip, "gwei"),
    chainId: 31337,
    type: 2,
  };
  const signed = await flashbots.signBundle([{ signer: spender, transaction }]);
  let bundleHash;
  for (let block = Number(from); block <= Number(until); block++) {
    const sent = await flashbots.sendRawBundle(signed, block);
    if ("error" in sent) throw new Error(`send: ${JSON.stringify(sent.error)}`);
    bundleHash = sent.bundleHash;
  }
  return { bundleHash, signed: signed[0], auth: auth.address };
}

async function main() {
  const [urlA, urlB, delegate, from, until] = process.argv.slice(2);
  const authA = new Wallet("0x" + "0a".repeat(32));
  const authB = new Wallet("0x" + "0b".repeat(32));
  const delegation = await signedCall(urlA, authA, "flashbots_setFeeRefundRecipient", [
    authA.address,
    delegate,
  ]);
  const a = await send(urlA, authA, "200", "0x0000000000000000000000000000000000000a0a", from, until);
  const b = await send(urlB, authB, "100", "0x0000000000000000000000000000000000000b0b", from, until);
  console.log(JSON.stringify({ delegation, a, b }));
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
