// request.js: the x-cradle-auth header is hex of version 1, the Borsh ApiRequest and a
// signature over tag || chain id || request that verifies with the signer's key. (That a node
// accepts it is shown by vectors/localnet-v1.json: every answer there was fetched with one.)

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { BorshReader, fromHex, sha256, toHex, utf8 } from '../js/bytes.js';
import { apiRequestSigningBytes, signedRequestHeader } from '../js/request.js';
import { seededKey } from '../tools/fixtures.mjs';

test('a signed GET carries the request and a signature over its signing bytes', async () => {
  const PKCS8 = fromHex('302e020100300506032b657004220420' + '04'.repeat(32));
  const privateKey = await crypto.subtle.importKey('pkcs8', PKCS8, { name: 'Ed25519' }, false, ['sign']);
  const regulator = await seededKey(4);
  const chainId = await sha256(utf8('test chain'));
  const node = (await seededKey(1)).publicKey;
  const path = '/v1/audit/break-glass?from_ms=1&to_ms=2';
  const header = await signedRequestHeader({
    chainId, signer: { publicKey: regulator.publicKey, privateKey }, node, method: 'GET', path,
    nowMs: 1_780_000_000_000, nonce: new Uint8Array(16).fill(7),
  });
  const r = new BorshReader(fromHex(header), 'auth header');
  assert.equal(r.u8(), 1);
  const req = {
    signer: r.fixed(32), node: r.fixed(32), method: r.string(8), path: r.string(1024),
    bodySha256: r.fixed(32), timeMs: r.u64(), nonce: r.fixed(16),
  };
  const signature = r.fixed(64);
  r.finish();
  assert.deepEqual([req.method, req.path, req.timeMs], ['GET', path, 1_780_000_000_000n]);
  assert.equal(toHex(req.bodySha256), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  const key = await crypto.subtle.importKey('raw', regulator.publicKey, { name: 'Ed25519' }, false, ['verify']);
  assert.ok(await crypto.subtle.verify('Ed25519', key, signature, apiRequestSigningBytes(chainId, req)));
  assert.ok(toHex(apiRequestSigningBytes(chainId, req)).startsWith(toHex(utf8('cradle.api.request.v1\0')) + toHex(chainId)));
  await assert.rejects(signedRequestHeader({ chainId, signer: { publicKey: regulator.publicKey, privateKey }, node, method: 'OPTIONSXX', path }), /method: 9 bytes exceed 8/);
});
