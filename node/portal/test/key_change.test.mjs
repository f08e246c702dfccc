// Her key changes in her history, on vectors/key_change.json (written by
// ledger/tests/portal_key_change_vectors.rs from blocks the ledger executed): a rotation she
// signed and a recovery by the member that enrolled her read, re-encode and hash as the ledger
// logged them; they are in her log, no archive's, and only the recovery is in the commission's
// (break-glass) log.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { BorshWriter, decodeCanonical, fromHex, toHex } from '../js/bytes.js';
import { eventLeafHash, inBreakGlassLog, isKeyChange, readAccessEvent, writeAccessEvent } from '../js/audit.js';
import { subjectMatches } from '../js/history.js';

const V = JSON.parse(readFileSync(new URL('./vectors/key_change.json', import.meta.url), 'utf8'));

test('a key change in her history reads and hashes as the ledger logged it', async () => {
  assert.deepEqual(V.events.map((c) => c.kind), ['rotated', 'recovered']);
  for (const c of V.events) {
    const bytes = fromHex(c.bytes);
    const e = decodeCanonical(bytes, 4096, readAccessEvent, 'event');
    assert.equal(e.outcome.kind, c.kind, c.name);
    assert.equal(toHex(e.outcome.newKey), c.new_key, c.name);
    assert.equal(toHex(e.accessor), c.accessor, c.name);
    assert.equal(e.purpose, 'PATRQT', c.name);
    assert.ok(isKeyChange(e), c.name);
    assert.equal(toHex(writeAccessEvent(new BorshWriter(), e).toCanonical()), c.bytes, c.name);
    assert.equal(toHex(await eventLeafHash(e)), c.leaf_hash, c.name);
    assert.ok(subjectMatches({ kind: 'patient', id: fromHex(c.patient, 32) }, e), c.name);
    // It names no archive, so no archive's log (not even the all-zeros id) holds it.
    assert.equal(c.about_archive, false, c.name);
    assert.equal(subjectMatches({ kind: 'archive', id: e.archive }, e), false, c.name);
    assert.equal(inBreakGlassLog(e), c.in_break_glass_log, c.name);
    assert.equal(subjectMatches({ kind: 'break_glass' }, e), c.in_break_glass_log, c.name);
  }
  // The rotation was signed by her own key; the recovery by the member, and only it is for
  // the commission.
  const [rotated, recovered] = V.events;
  assert.equal(rotated.accessor, rotated.patient);
  assert.notEqual(recovered.accessor, recovered.patient);
  assert.deepEqual([rotated.in_break_glass_log, recovered.in_break_glass_log], [false, true]);
});

test('an event with an outcome tag the ledger does not know is refused', () => {
  const bytes = fromHex(V.events[1].bytes);
  // The outcome's tag is the byte before the 32-byte new key, at the end of the event.
  bytes[bytes.length - 33] = 6;
  assert.throws(() => decodeCanonical(bytes, 4096, readAccessEvent, 'event'), /event outcome/);
});

test("the commission's FHIR export tells a key change as an update of her security attributes, not a read", async () => {
  const { fhirBundle } = await import('../app/js/regulator/fhir.js');
  const events = V.events.map((c, index) => ({ index, event: decodeCanonical(fromHex(c.bytes), 4096, readAccessEvent, 'event') }));
  const sets = { memberByAnyKey: () => null };
  const bundle = JSON.parse(fhirBundle(sets, V.chain_id, events));
  for (const [i, entry] of bundle.entry.entries()) {
    const r = entry.resource;
    const c = V.events[i];
    assert.equal(r.action, 'U', c.name);
    assert.equal(r.type.code, '110137', c.name);
    assert.ok(r.outcomeDesc.includes(c.new_key), c.name);
    // No record was read: only the patient is an entity; the signer reports it.
    assert.equal(r.entity.length, 1, c.name);
    assert.equal(r.entity[0].what.identifier.value, c.patient, c.name);
    assert.equal(r.source.observer.identifier.value, c.accessor, c.name);
  }
});
