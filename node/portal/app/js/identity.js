// Who she is on the ledger when this browser kept no record of it: a key made by `cradle keygen`
// and bound to her enrolment by a recovery at her clinic or a rotation at the command line.
// Her history and records stay under the key she enrolled with, so the page must learn that key,
// and must not take it on the node's word.
//
// The node names the patient the key signs for (`GET /v1/patients/{key}/identity/proof`); the
// page reads only the value of that answer, then asks for that patient's whole history and
// verifies it from genesis. It takes the identity only if the last change of her keys in the
// verified history names this key as the new one: then this key signs for her at the verified
// block, whatever the node said.

import { decodeCanonical, equalBytes, toHex } from '../../js/bytes.js';
import { readBlockHeader, readCommitCertificate } from '../../js/chain.js';
import { isKeyChange } from '../../js/audit.js';
import { verifyHistory } from '../../js/history.js';
import { readSmtProof } from '../../js/smt.js';
import { MAX_AGE_MS } from './history_view.js';

/** Bounds of a `RecordAnswer` (ledger/src/audit/record.rs, ledger/src/state.rs). */
const RECORD_KEY_BYTES_MAX = 128;
const VALUE_BYTES_MAX = 256 * 1024;
const RECORD_ANSWER_BYTES_MAX = VALUE_BYTES_MAX + 256 * 1024;

/** The stored value of a `RecordAnswer` (bytes, or null when the key is absent). Unverified. */
function recordValue(bytes) {
  return decodeCanonical(bytes, RECORD_ANSWER_BYTES_MAX, (r) => {
    readBlockHeader(r);
    readCommitCertificate(r);
    r.byteVec(RECORD_KEY_BYTES_MAX, 'record key');
    readSmtProof(r);
    return r.option((rr) => rr.byteVec(VALUE_BYTES_MAX, 'record value'), 'record value');
  }, 'record answer');
}

/**
 * The key she enrolled with, for `keypair`'s key, proven by her verified history; null when the
 * key is an enrolment key or no patient's, or when the node's claim is not borne out.
 */
export async function discoverIdentity(node, genesis, sets, keypair) {
  const key = keypair.signing.publicKey;
  const value = recordValue(await node.signedGet(`/v1/patients/${toHex(key)}/identity/proof`));
  if (value === null) return null;
  // `codec::encode(PublicKey)`: the version byte, then the 32 bytes.
  const identity = decodeCanonical(value, 64, (r) => r.fixed(32, 'identity'), 'identity');
  if (equalBytes(identity, key)) return null;
  const answer = await node.signedGet(`/v1/audit/patient/${toHex(identity)}`);
  const result = await verifyHistory({
    answer,
    trust: { chainId: genesis.chainId, sets },
    expect: { subject: { kind: 'patient', id: identity } },
    nowMs: Date.now(),
    maxAgeMs: MAX_AGE_MS,
  });
  if (!result.verified) return null;
  const last = result.events.filter((ie) => isKeyChange(ie.event)).at(-1);
  return last && equalBytes(last.event.outcome.newKey, key) ? identity : null;
}
