// Records the Flashbots / MEV-Share requests real clients send: starts the capture server, drives
// @flashbots/ethers-provider-bundle and @flashbots/mev-share-client (ethers) in this process and
// PyPI flashbots (web3-flashbots, tools/.venv) in a child process against it, and writes every
// signed request, in the order sent, as one JSON line {method, header, body, client}.
//
// Usage: node tools/record/record.js OUT.jsonl   (tools/record-fixtures.sh runs it)
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { HDNodeWallet, JsonRpcProvider, Mnemonic, Wallet } = require('ethers');
const { FlashbotsBundleProvider } = require('@flashbots/ethers-provider-bundle');
const MevShareClient = require('@flashbots/mev-share-client').default;
const { startCaptureServer } = require('./capture-server');

const TOOLS = path.resolve(__dirname, '..');

// The inputs every client gets. The Flashbots key signs the X-Flashbots-Signature headers; the
// transactions are EIP-1559 transfers of 1 wei to dev account 1 on chain 31337, from dev
// accounts 0 and 1 of the standard `test test … junk` mnemonic.
const AUTH_KEY = `0x${'07'.repeat(32)}`;
const AUTH_ADDRESS = '0x4a62316623ad457F02cDC5D997deD67a383EC569';
const MNEMONIC = 'test test test test test test test test test test test junk';
const CHAIN_ID = 31337;
const GWEI = 1_000_000_000;
const UUID = 'abc';
const PENDING_HASH = `0x${'aa'.repeat(32)}`;
// The chain each client sees: ethers and mev-share at head 15, web3-flashbots at head 3 (whose
// timestamp web3-flashbots copies into eth_callBundle).
const HEAD_TIMESTAMP = 1795314921;
const CHAINS = {
  '/ethers-provider-bundle': { chainId: CHAIN_ID, head: 15, timestamp: HEAD_TIMESTAMP },
  '/mev-share-client': { chainId: CHAIN_ID, head: 15, timestamp: HEAD_TIMESTAMP },
  '/web3-flashbots': { chainId: CHAIN_ID, head: 3, timestamp: HEAD_TIMESTAMP },
};

function devAccount(index) {
  return HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase(MNEMONIC), `m/44'/60'/0'/0/${index}`);
}

function transfer(to) {
  return {
    type: 2,
    chainId: CHAIN_ID,
    nonce: 0,
    to,
    value: 1,
    gasLimit: 21_000,
    maxFeePerGas: 5 * GWEI,
    maxPriorityFeePerGas: GWEI,
    data: '0x',
    accessList: [],
  };
}

function installedVersion(name) {
  return JSON.parse(fs.readFileSync(path.join(TOOLS, 'node_modules', name, 'package.json'), 'utf8')).version;
}

/** The clients must sign with the one pinned ethers, not a copy of their own. */
function checkOneEthers() {
  const own = require.resolve('ethers');
  for (const client of ['@flashbots/ethers-provider-bundle', '@flashbots/mev-share-client']) {
    const theirs = require.resolve('ethers', { paths: [path.dirname(require.resolve(client))] });
    if (theirs !== own) throw new Error(`${client} uses another ethers: ${theirs}`);
  }
}

/** Flashbots calls answer {error} instead of throwing: turn that into an exception. */
function ok(result, what) {
  if (result && typeof result === 'object' && 'error' in result && result.error) {
    throw new Error(`${what}: ${JSON.stringify(result.error)}`);
  }
  return result;
}

async function driveEthersProviderBundle(url, auth, dev0, dev1) {
  const provider = new JsonRpcProvider(url, undefined, { batchMaxCount: 1 });
  try {
    const fb = await FlashbotsBundleProvider.create(provider, auth, url);
    const bundle = () => [
      { signer: dev0, transaction: transfer(dev1.address) },
      { signer: dev1, transaction: transfer(dev1.address) },
    ];
    const signed = await fb.signBundle(bundle());
    ok(await fb.simulate(signed, 12), 'simulate 12'); // id 1: eth_callBundle 0xc, state "latest"
    ok(await fb.simulate(signed, 11), 'simulate 11'); // id 2: eth_callBundle 0xb
    ok(await fb.sendBundle(bundle(), 13, { replacementUuid: UUID }), 'sendBundle'); // id 3
    ok(await fb.getUserStatsV2(), 'getUserStatsV2'); // id 4: the head block, 0xf
    ok(await fb.cancelBundles(UUID), 'cancelBundles'); // id 5
    ok(
      await fb.sendPrivateTransaction({ signer: dev1, transaction: transfer(dev1.address) }, { maxBlockNumber: 17 }),
      'sendPrivateTransaction',
    ); // id 6: maxBlockNumber as a JSON number
  } finally {
    provider.destroy();
  }
}

async function driveMevShareClient(url, auth, dev1) {
  const client = new MevShareClient(auth, {
    name: 'devnet',
    chainId: CHAIN_ID,
    streamUrl: url,
    apiUrl: `${url}/mev-share-client`,
  });
  const tx = await dev1.signTransaction(transfer(dev1.address));
  // Every call has id 69: the client's own constant.
  await client.sendTransaction(tx, { hints: { calldata: true, logs: true }, maxBlockNumber: 20 });
  await client.sendBundle({
    inclusion: { block: 16, maxBlock: 18 },
    body: [{ hash: PENDING_HASH }, { tx, canRevert: false }],
  });
  await client.simulateBundle({ inclusion: { block: 16 }, body: [{ tx, canRevert: false }] }, { parentBlock: 15 });
}

function driveWeb3Flashbots(url, spec) {
  const python = path.join(TOOLS, '.venv', 'bin', 'python');
  return new Promise((resolve, reject) => {
    const child = spawn(python, [path.join(__dirname, 'web3_flashbots.py'), url], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`web3-flashbots driver failed (${code}):\n${err}`));
      resolve(JSON.parse(out));
    });
    child.stdin.end(JSON.stringify(spec));
  });
}

/** One line as Python's json.dumps writes it (", " and ": " separators, non-ASCII escaped). */
function jsonLine(fields) {
  const str = (v) => JSON.stringify(v).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `{${Object.entries(fields).map(([k, v]) => `${str(k)}: ${str(v)}`).join(', ')}}`;
}

async function main() {
  const out = process.argv[2];
  if (!out) throw new Error('usage: record.js OUT.jsonl');
  checkOneEthers();
  const auth = new Wallet(AUTH_KEY);
  if (auth.address !== AUTH_ADDRESS) throw new Error(`auth key gives ${auth.address}`);
  const dev0 = devAccount(0);
  const dev1 = devAccount(1);

  const ethersLabel =
    `ethers-provider-bundle ${installedVersion('@flashbots/ethers-provider-bundle')} / ` +
    `mev-share-client ${installedVersion('@flashbots/mev-share-client')} (ethers ${installedVersion('ethers')})`;
  const server = await startCaptureServer(CHAINS);
  let web3;
  try {
    await driveEthersProviderBundle(`${server.url}/ethers-provider-bundle`, auth, dev0, dev1);
    await driveMevShareClient(server.url, auth, dev1);
    web3 = await driveWeb3Flashbots(`${server.url}/web3-flashbots`, {
      authKey: AUTH_KEY,
      keys: [dev0.privateKey, dev1.privateKey],
      chainId: CHAIN_ID,
      to: dev1.address,
      uuid: UUID,
    });
  } finally {
    await server.close();
  }
  const labels = {
    '/ethers-provider-bundle': ethersLabel,
    '/mev-share-client': ethersLabel,
    '/web3-flashbots': web3.client,
  };
  const lines = server.requests
    .filter((r) => r.header !== null)
    .map((r) => jsonLine({ method: r.method, header: r.header, body: r.body, client: labels[r.path] }));
  const tmp = `${out}.tmp-${process.pid}`;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(tmp, `${lines.join('\n')}\n`);
  fs.renameSync(tmp, out);
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
