// chain.js on the vectors in vectors/chain-*.json (both header layouts): header bytes and hash,
// precommit signing bytes, and certificates that verify or are refused with the right kind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { BorshReader, fromHex, sha256, toHex, utf8 } from '../js/bytes.js';
import {
  DEFAULT_HEADER_LAYOUT, HEADER_LAYOUT, TAG_BLOCK_HEADER, decodeBlockHeader, encodeBlockHeader,
  headerHash, isQuorum, precommitSignBytes, readCommitCertificate, validatorSetFromMembers,
  verifyHeaderCertificate,
} from '../js/chain.js';

const load = (name) => JSON.parse(readFileSync(new URL(`./vectors/${name}`, import.meta.url), 'utf8'));
const VECTORS = [load('chain-v1.json'), load('chain-next-members.json')];

const decodeCert = (hex) => {
  const r = new BorshReader(fromHex(hex), 'certificate');
  const c = readCommitCertificate(r);
  r.finish();
  return c;
};

test('the default layout is the header the committed Rust code writes, with next_members_hash', () => {
  assert.equal(DEFAULT_HEADER_LAYOUT, HEADER_LAYOUT.WITH_NEXT_MEMBERS_HASH);
  assert.equal(toHex(TAG_BLOCK_HEADER), toHex(utf8('cradle.ledger.block-header.v1\0')));
});

for (const v of VECTORS) {
  const options = { headerLayout: v.header_layout };
  const set = () => validatorSetFromMembers(v.members);

  test(`${v.header_layout}: header bytes decode field by field, re-encode and hash as the vector says`, async () => {
    for (const h of v.headers) {
      const bytes = fromHex(h.borsh);
      const header = decodeBlockHeader(bytes, options);
      const f = h.fields;
      assert.equal(toHex(header.chainId), f.chain_id);
      assert.equal(header.height, BigInt(f.height));
      assert.equal(header.timeMs, BigInt(f.time_ms));
      assert.equal(toHex(header.prevHash), f.prev_hash);
      assert.equal(toHex(header.proposer), f.proposer);
      assert.equal(header.txCount, f.tx_count);
      assert.equal(toHex(header.txRoot), f.tx_root);
      assert.equal(toHex(header.stateRoot), f.state_root);
      assert.equal(header.accessLogSize, BigInt(f.access_log_size));
      assert.equal(toHex(header.accessLogRoot), f.access_log_root);
      assert.equal(header.nextMembersHash && toHex(header.nextMembersHash), f.next_members_hash);
      assert.equal(bytes.length, v.header_layout === HEADER_LAYOUT.V1 ? 220 : 252);
      assert.deepEqual(encodeBlockHeader(header, options), bytes);
      assert.equal(toHex(await headerHash(header, options)), h.hash);
      assert.equal(h.hash, toHex(await sha256(Uint8Array.of(...TAG_BLOCK_HEADER, ...bytes))));
      // The other layout does not decode these bytes.
      const other = v.header_layout === HEADER_LAYOUT.V1 ? HEADER_LAYOUT.WITH_NEXT_MEMBERS_HASH : HEADER_LAYOUT.V1;
      assert.throws(() => decodeBlockHeader(bytes, { headerLayout: other }), /truncated|trailing/);
      for (let n = 0; n < bytes.length; n += 17) assert.throws(() => decodeBlockHeader(bytes.subarray(0, n), options), /truncated/);
    }
  });

  test(`${v.header_layout}: precommit signing bytes are tag, chain id and the borsh vote`, () => {
    for (const p of v.precommits) {
      const bytes = precommitSignBytes(fromHex(v.chain_id), BigInt(p.height), p.round, fromHex(p.value), p.validator);
      assert.equal(toHex(bytes), p.sign_bytes);
      // tag (30) || chain id (32) || kind 2 || height u64 || round u32 || Some(value) || index u16
      assert.equal(bytes.length, 30 + 32 + 1 + 8 + 4 + 33 + 2);
      assert.equal(p.sign_bytes.slice(124, 126), '02');
    }
  });

  test(`${v.header_layout}: certificates verify or are refused with the Rust error kind`, async () => {
    const header = decodeBlockHeader(fromHex(v.headers[0].borsh), options);
    const validators = await set();
    assert.equal(validators.validators.length, 3, 'the regulator has no power and is no validator');
    const seen = [];
    for (const c of v.certificates) {
      const cert = decodeCert(c.borsh);
      const result = verifyHeaderCertificate(header, cert, fromHex(v.chain_id), validators, options);
      if (c.error === null) assert.deepEqual(toHex(await result), v.headers[0].hash, c.name);
      else await assert.rejects(result, { code: c.error }, c.name);
      seen.push(c.error);
    }
    assert.ok(seen.includes(null) && seen.includes('insufficient-power') && seen.includes('bad-signature'));
    const wrong = decodeBlockHeader(fromHex(v.wrong_chain.header), options);
    await assert.rejects(verifyHeaderCertificate(wrong, decodeCert(v.wrong_chain.certificate), fromHex(v.chain_id), validators, options), { code: 'wrong-chain' });
    // Bound on the signature count is checked before the signatures are read.
    assert.throws(() => decodeCert('07000000000000000000000000' + '00'.repeat(32) + 'ffffffff'), /exceeds the bound 1024/);
  });
}

test('quorum is more than two thirds of the power, weighted', async () => {
  const [m] = VECTORS[0].members;
  assert.equal(isQuorum(3n, 4n), true);
  assert.equal(isQuorum(2n, 3n), false);
  assert.equal(isQuorum(5n, 7n), true);
  assert.equal(isQuorum(2n ** 64n - 1n, 2n ** 64n - 1n), true);
  await assert.rejects(validatorSetFromMembers([]), { code: 'invalid-validator-set' });
  await assert.rejects(validatorSetFromMembers([m, m]), /repeats a key/);
  await assert.rejects(validatorSetFromMembers([{ ...m, voting_power: 0 }]), /empty/);
});
