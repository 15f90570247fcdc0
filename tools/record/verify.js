// Checks a recorded fixture file: every line is {method, header, body, client}, the body is the
// JSON-RPC call of `method`, the X-Flashbots-Signature header verifies against the body's bytes
// (personal_sign over the hex keccak of the body, as the clients sign) and no longer verifies
// once one byte of the body changes.
//
// Usage: node tools/record/verify.js FILE.jsonl [--compare OTHER.jsonl]
//   --compare: also report which lines are byte-identical to OTHER and how the others differ.
'use strict';

const fs = require('node:fs');
const { getAddress, keccak256, verifyMessage } = require('ethers');

function readLines(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

/** The address recovered from `sig` over the signed digest of `bytes`. */
function signer(bytes, sig) {
  return getAddress(verifyMessage(keccak256(bytes), sig));
}

function verify(file) {
  const problems = [];
  const lines = readLines(file);
  lines.forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    let rec;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      return problems.push(`${where}: not JSON (${e.message})`);
    }
    for (const k of ['method', 'header', 'body', 'client']) {
      if (typeof rec[k] !== 'string') return problems.push(`${where}: field ${k} is not a string`);
    }
    const call = JSON.parse(rec.body);
    if (call.method !== rec.method) problems.push(`${where}: body calls ${call.method}, line says ${rec.method}`);
    const colon = rec.header.indexOf(':');
    const claimed = getAddress(rec.header.slice(0, colon));
    const sig = rec.header.slice(colon + 1);
    const body = Buffer.from(rec.body, 'utf8');
    if (signer(body, sig) !== claimed) return problems.push(`${where}: ${rec.method} signature does not verify`);
    for (const at of [0, Math.floor(body.length / 2), body.length - 2]) {
      const tampered = Buffer.from(body);
      tampered[at] ^= 1;
      if (signer(tampered, sig) === claimed) problems.push(`${where}: verifies with byte ${at} changed`);
    }
  });
  return { count: lines.length, problems };
}

function firstDifference(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function compare(file, other) {
  const ours = readLines(file);
  const theirs = readLines(other);
  let identical = 0;
  const report = [];
  for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
    const a = ours[i];
    const b = theirs[i];
    if (a === b) {
      identical++;
      continue;
    }
    if (a === undefined || b === undefined) {
      report.push(`line ${i + 1}: only in ${a === undefined ? other : file}`);
      continue;
    }
    const x = JSON.parse(a);
    const y = JSON.parse(b);
    const fields = ['method', 'header', 'body', 'client'].filter((k) => x[k] !== y[k]);
    const detail = fields.map((k) => {
      const at = firstDifference(x[k], y[k]);
      return `${k} from char ${at}: ${JSON.stringify(x[k].slice(Math.max(0, at - 20), at + 40))} vs ${JSON.stringify(y[k].slice(Math.max(0, at - 20), at + 40))}`;
    });
    report.push(`line ${i + 1} (${x.method}): ${detail.join('; ')}`);
  }
  return { identical, total: Math.max(ours.length, theirs.length), report };
}

function main() {
  const [file, flag, other] = process.argv.slice(2);
  if (!file || (flag && (flag !== '--compare' || !other))) {
    console.error('usage: verify.js FILE.jsonl [--compare OTHER.jsonl]');
    process.exit(2);
  }
  const { count, problems } = verify(file);
  if (problems.length > 0 || count === 0) {
    console.error(problems.length ? problems.join('\n') : `${file}: no requests`);
    process.exit(1);
  }
  console.log(`${count} signed requests: every header verifies against its body and fails on a one-byte change`);
  if (other) {
    const { identical, total, report } = compare(file, other);
    console.log(`${identical} of ${total} lines byte-identical to ${other}`);
    for (const line of report) console.log(line);
    if (identical !== total) process.exit(1);
  }
}

main();
