// The chain id the page computes from a genesis file is the one Rust computes: the known
// document of `genesis/src/doc_tests.rs` (`chain_id_of_a_known_document_is_stable`), written as
// its JSON, hashes to the same id; a changed field changes it; unknown fields are refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { toHex } from '../js/bytes.js';
import { keypairFromSeed } from '../js/keys.js';
import { GenesisError, loadGenesis } from '../js/genesis.js';

/** `valid()` of doc_tests.rs as `to_json_pretty` writes it. */
async function knownDocument() {
  const members = [];
  for (const [i, role, power] of [[1, 'hospital', 1], [2, 'hospital', 1], [3, 'clinic', 1], [4, 'regulator', 0]]) {
    const kp = await keypairFromSeed(new Uint8Array(32).fill(i));
    const m = { name: `Member ${i}`, role, public_key: toHex(kp.signing.publicKey), x25519: toHex(kp.x25519.publicKey), voting_power: power };
    if (role !== 'regulator') {
      m.p2p_addr = `/ip4/127.0.0.1/tcp/${26600 + i * 2}`;
      m.api_addr = `127.0.0.1:${8600 + i}`;
    }
    members.push(m);
  }
  return {
    chain_name: 'cradle-test',
    genesis_time_ms: 1735689600000,
    members,
    consensus: { timeout_propose_ms: 3000, timeout_prevote_ms: 1000, timeout_precommit_ms: 1000, timeout_delta_ms: 500, batch_window_ms: 5, heartbeat_ms: 1000 },
    policy: {
      break_glass_allowed: true,
      break_glass_roles: ['emergency-physician', 'obstetrician'],
      access_request_ttl_ms: 600000,
      grant_duration_max_ms: 5 * 365 * 24 * 3600 * 1000,
      membership_needs_regulator: false,
      proposal_ttl_ms: 7 * 24 * 3600 * 1000,
    },
    limits: { tx_bytes_max: 65536, block_txs_max: 10000, block_bytes_max: 8 * 1024 * 1024 },
  };
}

const KNOWN_CHAIN_ID = '3554b566b1d6be0ba9a861f7f12197580293c258b78acb3607cfc9f102dbb722';

test('the known document hashes to the chain id Rust computes', async () => {
  const g = await loadGenesis(JSON.stringify(await knownDocument(), null, 2));
  assert.equal(g.chainIdHex, KNOWN_CHAIN_ID);
  assert.equal(g.trust.validatorSet.validators.length, 3, 'the regulator has no voting power');
  assert.equal(g.member(g.doc.members[2].publicKey).name, 'Member 3');
  assert.equal(g.member(toHex(g.doc.members[3].publicKey).toUpperCase()).role, 'regulator');
});

test('policy defaults are those of serde: leaving them out keeps the chain id', async () => {
  const doc = await knownDocument();
  delete doc.policy.break_glass_roles;
  delete doc.policy.membership_needs_regulator;
  delete doc.policy.proposal_ttl_ms;
  assert.equal((await loadGenesis(JSON.stringify(doc))).chainIdHex, KNOWN_CHAIN_ID);
});

test('any changed field changes the chain id', async () => {
  const changes = [
    (d) => { d.chain_name = 'cradle-tesu'; },
    (d) => { d.genesis_time_ms += 1; },
    (d) => { d.members[0].name = 'Member 9'; },
    (d) => { d.members[1].voting_power = 2; },
    (d) => { delete d.members[0].api_addr; },
    (d) => { d.consensus.heartbeat_ms = 999; },
    (d) => { d.policy.break_glass_roles = ['obstetrician']; },
    (d) => { d.limits.block_txs_max = 9999; },
  ];
  for (const change of changes) {
    const doc = await knownDocument();
    change(doc);
    assert.notEqual((await loadGenesis(JSON.stringify(doc))).chainIdHex, KNOWN_CHAIN_ID, change.toString());
  }
});

test('what is not a genesis document is refused', async () => {
  const refusals = [
    'not json',
    '[]',
    JSON.stringify({ ...(await knownDocument()), extra: 1 }),
    JSON.stringify({ ...(await knownDocument()), members: [] }),
    JSON.stringify({ ...(await knownDocument()), genesis_time_ms: 2 ** 60 }),
  ];
  const bad = await knownDocument();
  bad.members[0].role = 'pharmacy';
  refusals.push(JSON.stringify(bad));
  const short = await knownDocument();
  short.members[0].public_key = 'abcd';
  refusals.push(JSON.stringify(short));
  for (const text of refusals) {
    await assert.rejects(loadGenesis(text), GenesisError, text.slice(0, 60));
  }
});
