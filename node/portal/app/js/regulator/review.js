// Break-glass accesses awaiting the commission's review, and the review itself.
//
// The break-glass log holds every break-glass access and every review of one (the ledger logs
// a review there, `ledger/src/rules/review.rs`), so one verified answer about it tells which
// accesses still await review: those no review in the same log names. A review is a
// `ReviewAccess` transaction built and signed in this page with the regulator's key (tx.js, byte
// for byte as the ledger), sent with `POST /v1/txs?wait=commit`; the ledger refuses a second
// review of one access, or a signer that is no regulator, and the page shows its reason.
//
// Each access awaiting review shows the clinician's justification, sealed for the patient and
// the regulators: the page asks the node for the access record (`GET /v1/txs/{hash}`, signed;
// the node answers regulators every transaction), takes it only when it hashes to the
// transaction and request the verified event names, and opens it with the commission's X25519
// key, which never leaves WebCrypto (js/justification.js).

import { toHex } from '../../../js/bytes.js';
import { decodeAuditAnswer } from '../../../js/audit.js';
import { needsConsistencyProof, verifyHistory } from '../../../js/history.js';
import { JustificationError, readJustification } from '../../../js/justification.js';
import { nextNonce, signTransaction } from '../../../js/tx.js';
import * as store from '../store.js';
import { checkpointFromJson, checkpointToJson } from '../../../js/audit.js';

/** A node whose newest proven block is older than this is refused (`stale-node`). */
export const MAX_AGE_MS = 10 * 60 * 1000;

/**
 * The verified history of `subject` (`{kind, id}`) as `node` answers it, over `range`
 * (`[fromMs, toMs]`) or the whole log; `verifyHistory`'s result. The checkpoint this browser
 * keeps per chain moves forward with every verified answer, as on the patient's page.
 */
export async function verifiedHistory(node, genesis, sets, subject, range = null) {
  const base = subject.kind === 'break_glass' ? '/v1/audit/break-glass' : `/v1/audit/${subject.kind}/${toHex(subject.id)}`;
  const path = range ? `${base}?from_ms=${range[0]}&to_ms=${range[1]}` : base;
  const bytes = await node.signedGet(path);
  const key = store.KEYS.checkpoint(genesis.chainIdHex);
  let checkpoint = null;
  try {
    const saved = await store.get(key);
    checkpoint = saved ? checkpointFromJson(saved) : null;
  } catch {
    checkpoint = null;
  }
  let consistency = null;
  try {
    const decoded = decodeAuditAnswer(bytes);
    if (needsConsistencyProof(decoded, checkpoint)) {
      consistency = await node.signedGet(`/v1/audit/consistency?from=${checkpoint.accessLogSize}`);
    }
  } catch {
    // verifyHistory refuses a malformed answer with its code.
  }
  const result = await verifyHistory({
    answer: bytes,
    trust: { chainId: genesis.chainId, sets },
    expect: { subject, range: range ? [BigInt(range[0]), BigInt(range[1])] : null },
    checkpoint,
    consistency,
    nowMs: Date.now(),
    maxAgeMs: MAX_AGE_MS,
  });
  if (result.verified) await store.put(key, checkpointToJson(result.checkpoint));
  return result;
}

/**
 * The break-glass accesses of a verified break-glass log that no review names, oldest first,
 * each `{event, index}`; and the reviews by the access they name (hex of its transaction).
 */
export function pendingOf(events) {
  const reviews = new Map();
  for (const ie of events) {
    if (ie.event.outcome.kind === 'reviewed') reviews.set(toHex(ie.event.outcome.entry), ie.event);
  }
  const pending = events.filter((ie) => ie.event.outcome.kind === 'break_glass' && !reviews.has(toHex(ie.event.txHash)));
  return { pending, reviews };
}

/**
 * Signs and sends the review of the access recorded by transaction `entry` (bytes) with
 * `decision` ('justified' | 'not_justified'); resolves when the ledger committed it, or throws
 * the node's NodeError with the ledger's reason.
 */
export async function sendReview(node, genesis, keypair, entry, decision) {
  const me = toHex(keypair.signing.publicKey);
  let last = null;
  try {
    const j = JSON.parse(new TextDecoder().decode(await node.signedGet(`/v1/nonce/${me}`)));
    last = j.last_nonce ?? null;
  } catch {
    last = null;
  }
  const signed = await signTransaction({
    chainId: genesis.chainId,
    nonce: nextNonce(last === null ? null : BigInt(last)),
    body: { kind: 'review_access', entry, decision },
  }, keypair.signing);
  await node.post('/v1/txs?wait=commit', signed.encoded);
  return signed;
}

/** Longest refusal of the node the page repeats (it is the node's text, shown as text). */
const REASON_CHARS_MAX = 200;

/**
 * The justification of the access a verified break-glass `event` names, as the commission's
 * page shows it: `{state: 'read', text}`; `{state: 'unreadable', why}` (a JustificationError
 * code: the node's record is not the logged one, or it does not open); `{state: 'sealed'}`
 * (sealed for others, not this key); `{state: 'unavailable', reason}` (the node would not
 * answer, with its reason).
 */
export async function justificationOf(node, genesis, keypair, event) {
  let answer;
  try {
    answer = await node.signedGet(`/v1/txs/${toHex(event.txHash)}`);
  } catch (e) {
    return { state: 'unavailable', reason: String(e.message).slice(0, REASON_CHARS_MAX) };
  }
  try {
    const text = await readJustification({ answer, event, chainId: genesis.chainId, me: keypair.x25519 });
    return { state: 'read', text };
  } catch (e) {
    if (!(e instanceof JustificationError)) return { state: 'unreadable', why: 'malformed' };
    return e.code === 'not-a-reader' ? { state: 'sealed' } : { state: 'unreadable', why: e.code };
  }
}

/**
 * A justification's text as the page shows it: the clinician's words (at most 512 bytes, the
 * ledger's bound), with control and bidirectional-override characters, which could disguise
 * it, shown as U+FFFD. Shown with textContent only.
 */
export function displayText(text) {
  return text.replace(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g, '\uFFFD');
}
