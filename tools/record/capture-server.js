// A small JSON-RPC endpoint on 127.0.0.1 that records every request exactly as a client sent it
// (raw body bytes and its X-Flashbots-Signature header) and answers plausible results so that
// each client goes on to its next call.
//
// Each URL path is one client's view of a chain (`chains[path]`: head block number and the head
// block's timestamp), so clients that expect different heads can share one server.
'use strict';

const http = require('node:http');
const { Transaction, keccak256, toBeHex, toUtf8Bytes, concat } = require('ethers');

const GWEI = 1_000_000_000n;
const hex = (n) => toBeHex(BigInt(n));
const ZERO32 = `0x${'00'.repeat(32)}`;

function bundleHash(items) {
  return keccak256(concat(items));
}

function txHash(raw) {
  return keccak256(raw);
}

/** The block `n` of a chain whose head is `chain.head` at `chain.timestamp`; null past the head. */
function block(chain, n) {
  if (n > chain.head || n < 0) return null;
  return {
    number: hex(n),
    hash: keccak256(toUtf8Bytes(`block ${n}`)),
    parentHash: n === 0 ? ZERO32 : keccak256(toUtf8Bytes(`block ${n - 1}`)),
    nonce: '0x0000000000000000',
    mixHash: ZERO32,
    sha3Uncles: '0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347',
    logsBloom: `0x${'00'.repeat(256)}`,
    transactionsRoot: '0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421',
    stateRoot: keccak256(toUtf8Bytes(`state ${n}`)),
    receiptsRoot: '0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421',
    miner: '0x0000000000000000000000000000000000000000',
    difficulty: '0x0',
    totalDifficulty: '0x0',
    extraData: '0x',
    size: '0x220',
    gasLimit: hex(60_000_000),
    gasUsed: '0x0',
    timestamp: hex(chain.timestamp - (chain.head - n) * 12),
    baseFeePerGas: hex(GWEI),
    transactions: [],
    uncles: [],
  };
}

function blockNumberOf(chain, tag) {
  if (tag === undefined || ['latest', 'pending', 'safe', 'finalized'].includes(tag)) return chain.head;
  if (tag === 'earliest') return 0;
  return Number(BigInt(tag));
}

/** A Flashbots-shaped eth_callBundle result: every transaction a 21,000 gas transfer at 1 gwei. */
function callBundleResult(chain, params) {
  const results = params.txs.map((raw) => {
    const tx = Transaction.from(raw);
    const fees = 21_000n * GWEI;
    return {
      txHash: tx.hash,
      fromAddress: tx.from,
      toAddress: tx.to,
      gasUsed: 21_000,
      gasPrice: GWEI.toString(),
      gasFees: fees.toString(),
      coinbaseDiff: fees.toString(),
      ethSentToCoinbase: '0',
      value: '0x',
    };
  });
  const total = (21_000n * GWEI * BigInt(results.length)).toString();
  return {
    bundleGasPrice: GWEI.toString(),
    bundleHash: bundleHash(params.txs.map(txHash)),
    coinbaseDiff: total,
    ethSentToCoinbase: '0',
    gasFees: total,
    results,
    stateBlockNumber: blockNumberOf(chain, params.stateBlockNumber),
    totalGasUsed: 21_000 * results.length,
  };
}

function answer(state, chain, method, params = []) {
  const p = params[0];
  switch (method) {
    case 'eth_chainId':
      return hex(chain.chainId);
    case 'net_version':
      return String(chain.chainId);
    case 'eth_blockNumber':
      return hex(chain.head);
    case 'eth_getBlockByNumber':
      return block(chain, blockNumberOf(chain, p));
    case 'eth_getTransactionCount':
      return '0x0';
    case 'eth_estimateGas':
      return hex(21_000);
    case 'eth_gasPrice':
    case 'eth_maxPriorityFeePerGas':
      return hex(GWEI);
    case 'eth_getTransactionByHash':
    case 'eth_getTransactionReceipt':
      return null;
    case 'eth_callBundle':
      return callBundleResult(chain, p);
    case 'eth_sendBundle': {
      const hash = bundleHash(p.txs.map(txHash));
      if (p.replacementUuid) state.uuids.set(p.replacementUuid, hash);
      return { bundleHash: hash };
    }
    case 'eth_cancelBundle': {
      const hash = state.uuids.get(p.replacementUuid);
      state.uuids.delete(p.replacementUuid);
      return hash ? [hash] : [];
    }
    case 'eth_sendPrivateTransaction':
      return txHash(p.tx);
    case 'eth_cancelPrivateTransaction':
      return true;
    case 'flashbots_getUserStatsV2':
      return {
        isHighPriority: false,
        allTimeValidatorPayments: '0',
        allTimeGasSimulated: '0',
        last7dValidatorPayments: '0',
        last7dGasSimulated: '0',
        last1dValidatorPayments: '0',
        last1dGasSimulated: '0',
      };
    case 'mev_sendBundle':
      return { bundleHash: bundleHash(p.body.map((item) => item.hash ?? (item.tx ? txHash(item.tx) : ZERO32))) };
    case 'mev_simBundle': {
      const txs = p.body.filter((item) => item.tx).length;
      const gas = 21_000n * BigInt(txs);
      const stateBlock = params[1]?.parentBlock ?? hex(chain.head);
      return {
        success: true,
        stateBlock,
        mevGasPrice: hex(GWEI),
        profit: hex(gas * GWEI),
        refundableValue: hex(gas * GWEI),
        gasUsed: hex(gas),
        logs: [],
      };
    }
    default:
      throw Object.assign(new Error(`method ${method} not found`), { code: -32601 });
  }
}

function reply(state, chain, call) {
  const base = { jsonrpc: '2.0', id: call?.id ?? null };
  try {
    return { ...base, result: answer(state, chain, call.method, call.params) };
  } catch (err) {
    return { ...base, error: { code: err.code ?? -32603, message: err.message } };
  }
}

/**
 * Starts the server on an ephemeral loopback port.
 * @param chains - `{ "/path": { chainId, head, timestamp } }`, one per client.
 * @returns `{ url, requests, close }`; `requests` fills in arrival order with
 *   `{ path, method, header, body }` (`body` the raw bytes as a string, `header` null if unsigned).
 */
function startCaptureServer(chains) {
  const state = { uuids: new Map() };
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = raw.toString('utf8');
      const path = new URL(req.url, 'http://capture').pathname;
      const chain = chains[path];
      const send = (status, value) => {
        const text = JSON.stringify(value);
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (req.method !== 'POST' || !chain) return send(404, { error: `no endpoint ${req.method} ${path}` });
      if (!Buffer.from(body, 'utf8').equals(raw)) {
        return send(400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'body is not UTF-8' } });
      }
      let parsed;
      try {
        parsed = JSON.parse(body);
      } catch {
        return send(200, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } });
      }
      const header = req.headers['x-flashbots-signature'] ?? null;
      const method = Array.isArray(parsed) ? parsed.map((c) => c.method).join(',') : parsed.method;
      requests.push({ path, method, header, body });
      send(200, Array.isArray(parsed) ? parsed.map((c) => reply(state, chain, c)) : reply(state, chain, parsed));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests,
        close: () =>
          new Promise((done) => {
            server.close(done);
            server.closeAllConnections();
          }),
      });
    });
  });
}

module.exports = { startCaptureServer };
