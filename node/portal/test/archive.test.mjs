// The patient's own fetch in the page (js/archive.js): access requests as the ledger encodes
// and signs them, and archives sealed as client/src/seal.rs seals them, opened and refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ArchiveError, CHUNK_BYTES, TAG_BYTES, accessRequestSigningBytes, encodeAccessRequest, openArchive, plaintextLength, sealArchive, signedAccessRequest } from '../js/archive.js';
import { readFileSync } from 'node:fs';

import { concatBytes, fromHex, sha256, toHex } from '../js/bytes.js';
import { keypairFromSeed, verifyEd25519 } from '../js/keys.js';

const vectors = JSON.parse(readFileSync(new URL('./vectors/access.json', import.meta.url), 'utf8'));
const archive = new Uint8Array(32).fill(7);

test("Rust's access requests: the page builds the same bytes, signing bytes, signature and fetch body", async () => {
  const chainId = fromHex(vectors.chain_id, 32);
  assert.ok(vectors.requests.length >= 2);
  for (const v of vectors.requests) {
    const kp = await keypairFromSeed(fromHex(v.seed, 32));
    assert.equal(toHex(kp.signing.publicKey), v.accessor, v.name);
    const req = { accessor: kp.signing.publicKey, archive: fromHex(v.archive, 32), purpose: v.purpose, requestedAtMs: BigInt(v.requested_at_ms), requestId: fromHex(v.request_id, 16) };
    assert.equal(toHex(encodeAccessRequest(req)), v.borsh, v.name);
    assert.equal(toHex(accessRequestSigningBytes(chainId, req)), v.signing_bytes, v.name);
    const { body } = await signedAccessRequest({ chainId, signer: kp.signing, archive: req.archive, purpose: v.purpose, nowMs: Number(v.requested_at_ms), requestId: req.requestId });
    assert.equal(toHex(body), v.body, v.name);
    assert.equal(toHex(body.subarray(body.length - 64)), v.signature, v.name);
  }
});
const key = new Uint8Array(32).fill(9);

test('an access request is the ledger layout: accessor, archive, purpose, no justification, time, id', () => {
  const req = { accessor: new Uint8Array(32).fill(1), archive, purpose: 'PATRQT', requestedAtMs: 0x0102n, requestId: new Uint8Array(16).fill(3) };
  const bytes = encodeAccessRequest(req);
  assert.equal(bytes.length, 32 + 32 + 1 + 1 + 8 + 16);
  assert.equal(bytes[64], 7, 'PATRQT is purpose 7');
  assert.equal(bytes[65], 0, 'no justification');
  assert.deepEqual([...bytes.subarray(66, 74)], [2, 1, 0, 0, 0, 0, 0, 0], 'u64 little-endian');
  assert.throws(() => encodeAccessRequest({ ...req, purpose: 'NOPE' }));
});

test('a signed access request verifies under the accessor key and is VERSION || request || signature', async () => {
  const kp = await keypairFromSeed(new Uint8Array(32).fill(5));
  const chainId = new Uint8Array(32).fill(2);
  const { body, request } = await signedAccessRequest({ chainId, signer: kp.signing, archive, nowMs: 1000 });
  assert.equal(body[0], 1);
  assert.equal(body.length, 1 + 90 + 64);
  const signature = body.subarray(91);
  assert.ok(await verifyEd25519(kp.signing.publicKey, accessRequestSigningBytes(chainId, request), signature));
  assert.ok(!(await verifyEd25519(kp.signing.publicKey, accessRequestSigningBytes(new Uint8Array(32), request), signature)), 'bound to the chain');
});

test('archives of zero, one, exactly one chunk and two chunks open to their plaintext', async () => {
  for (const n of [0, 1, CHUNK_BYTES, CHUNK_BYTES + 5]) {
    const plaintext = new Uint8Array(n).map((_, i) => i % 251);
    const { ciphertext, sha256: hash } = await sealArchive({ plaintext, archive, key });
    assert.equal(plaintextLength(ciphertext.length), n);
    assert.equal(ciphertext.length, n + TAG_BYTES * Math.max(1, Math.ceil(n / CHUNK_BYTES)));
    const opened = await openArchive({ ciphertext, archive, key, expectedSha256: hash });
    assert.deepEqual(opened, plaintext);
  }
});

test('a ciphertext that is not the registered one is refused before it is decrypted; altered, cut and foreign ones too', async () => {
  const plaintext = new Uint8Array(CHUNK_BYTES + 100).fill(42);
  const { ciphertext, sha256: hash } = await sealArchive({ plaintext, archive, key });
  const code = async (p) => {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof ArchiveError, String(e));
      return e.code;
    }
    return 'opened';
  };
  const altered = ciphertext.slice();
  altered[10] ^= 1;
  assert.equal(await code(openArchive({ ciphertext: altered, archive, key, expectedSha256: hash })), 'hash-mismatch');
  assert.equal(await code(openArchive({ ciphertext: altered, archive, key, expectedSha256: await sha256(altered) })), 'chunk');
  // The first chunk alone ends without its final flag: refused, even with its own hash.
  const cut = ciphertext.slice(0, CHUNK_BYTES + TAG_BYTES);
  assert.equal(await code(openArchive({ ciphertext: cut, archive, key, expectedSha256: await sha256(cut) })), 'chunk');
  const other = new Uint8Array(32).fill(8);
  assert.equal(await code(openArchive({ ciphertext, archive: other, key, expectedSha256: hash })), 'chunk');
  const short = concatBytes(new Uint8Array(3));
  assert.equal(await code(openArchive({ ciphertext: short, archive, key, expectedSha256: await sha256(short) })), 'length');
});
