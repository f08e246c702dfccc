// Captures real answers from a running localnet (written by `cradle-genesis localnet` and
// started with the built `cradle-node`) into a vector file, so the tests check this library
// against bytes the Rust node produced: raw finalised blocks (header and commit certificate)
// and audit and consistency answers, each fetched with a request signed by the regulator's key.
//
//   node node/portal/tools/capture_localnet.mjs LOCALNET_DIR API_URL CHAIN_ID_HEX OUT.json [PATIENT_KEY_HEX]
//
// The chain id is the one the node logs at start (`chain_id=...`). TLS is not checked here
// (loopback, test data only): the vectors are checked by their certificates, not by transport.

import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';

import { concatBytes, fromHex, toHex } from '../js/bytes.js';
import { signedRequestHeader, AUTH_HEADER } from '../js/request.js';

const [dir, api, chainHex, out, patientHex] = process.argv.slice(2);
if (!out) throw new Error('usage: capture_localnet.mjs LOCALNET_DIR API_URL CHAIN_ID_HEX OUT.json [PATIENT_KEY_HEX]');
const chainId = fromHex(chainHex, 32, 'chain id');
const genesis = JSON.parse(readFileSync(`${dir}/genesis.json`, 'utf8'));
const regulatorFile = JSON.parse(readFileSync(`${dir}/regulator/regulator.key`, 'utf8'));
const nodeKey = fromHex(JSON.parse(readFileSync(`${dir}/node0/node.key.pub`, 'utf8')).public_key, 32);

const PKCS8 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const privateKey = await crypto.subtle.importKey('pkcs8', concatBytes(PKCS8, fromHex(regulatorFile.ed25519_secret, 32)), { name: 'Ed25519' }, false, ['sign']);
const signer = { publicKey: fromHex(regulatorFile.public_key, 32), privateKey };

function get(path, auth) {
  return new Promise((resolve, reject) => {
    const headers = auth ? { [AUTH_HEADER]: auth } : {};
    const req = request(new URL(path, api), { method: 'GET', headers, rejectUnauthorized: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = new Uint8Array(Buffer.concat(chunks));
        if (res.statusCode !== 200) reject(new Error(`${path}: HTTP ${res.statusCode} ${Buffer.from(body).toString()}`));
        else resolve(body);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const signedGet = async (path) => get(path, await signedRequestHeader({ chainId, signer, node: nodeKey, method: 'GET', path }));

const status = JSON.parse(Buffer.from(await get('/v1/status')).toString());
const blocks = [];
for (let h = 1; h <= Math.min(status.height, 4); h++) {
  blocks.push({ height: h, finalized_block: toHex(await signedGet(`/v1/blocks/${h}/raw`)) });
}
const patient = patientHex ?? '11'.repeat(32);
const audits = [
  { subject: { kind: 'patient', id: patient }, answer: toHex(await signedGet(`/v1/audit/patient/${patient}`)) },
  { subject: { kind: 'break_glass' }, answer: toHex(await signedGet('/v1/audit/break-glass')) },
];
const consistency = toHex(await signedGet('/v1/audit/consistency?from=0'));
writeFileSync(out, `${JSON.stringify({
  format: 'cradle-portal-vectors/1',
  source: `captured from a running localnet (cradle-node ${status.version ?? ''}) by node/portal/tools/capture_localnet.mjs`,
  chain_id: chainHex,
  members: genesis.members.map((m) => ({ name: m.name, public_key: m.public_key, voting_power: m.voting_power })),
  blocks, audits, consistency_from_0: consistency,
}, null, 1)}\n`);
