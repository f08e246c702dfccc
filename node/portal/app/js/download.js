// Her own record, downloaded and opened in the page, as `cradle archive get` does it
// (`client/src/session/archives.rs`): an access request signed with her key (purpose PATRQT,
// "requested by the patient") is posted to the archive's custodian, which commits the access
// record before it sends a byte (log before release); the ciphertext's SHA-256 is checked
// against the hash the ledger registered, the archive key (wrapped for her X25519 key) is opened
// and the chunks decrypted, all in the page; and the plaintext is offered only once her verified
// history holds this very access. Nothing but the signed request leaves the page.

import { equalBytes, fromHex, sha256, toBase64, toHex } from '../../js/bytes.js';
import { ArchiveError, openArchive, signedAccessRequest } from '../../js/archive.js';
import { unwrapKey, wrappedKeyFromHex } from '../../js/keywrap.js';
import { AUTH_HEADER, signedRequestHeader } from '../../js/request.js';
import { fetchVerifiedHistory } from './history_view.js';
import { NodeError } from './node.js';

/** How far around the request's time the committed access is looked for (as the CLI). */
const LOGGED_WINDOW_MS = 5 * 60 * 1000;
/** Largest archive the page opens in memory. */
const ARCHIVE_BYTES_MAX = 64 * 1024 * 1024;

/** Why the record was not opened: `code` picks the page's words. */
export class DownloadError extends Error {
  constructor(code, detail = '') {
    super(detail || code);
    this.code = code;
  }
}

function json(bytes) {
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** A 32-byte hash as the node's JSON carries it: an array of bytes (serde's form) or hex. */
function hashOf(v) {
  if (Array.isArray(v) && v.length === 32 && v.every((b) => Number.isInteger(b) && b >= 0 && b < 256)) return Uint8Array.from(v);
  return fromHex(String(v), 32, 'ciphertext hash');
}

/** The ledger's record of her archive `id` (hex) as the node lists it. */
async function registered(node, identity, id) {
  const list = json(await node.signedGet(`/v1/patients/${toHex(identity)}/archives`));
  const found = (list.archives ?? []).find((a) => a.archive === id);
  if (!found) throw new DownloadError('download.unknown');
  return {
    sha256: hashOf(found.record.ciphertext_sha256),
    size: Number(found.record.size_bytes),
    custodian: fromHex(String(found.record.custodian), 32, 'custodian'),
    category: String(found.record.category),
  };
}

async function refusalOf(response) {
  let text = `HTTP ${response.status}`;
  try {
    const j = await response.json();
    if (typeof j.error === 'string') text = j.error;
  } catch {
    // The status says enough.
  }
  if (response.status === 421) return new DownloadError('download.elsewhere', text);
  if (response.status === 403) return new DownloadError('download.denied', text);
  return new NodeError({ 401: 'signatureRefused' }[response.status] ?? 'failed', text);
}

/**
 * A short summary of a FHIR bundle: `{kind, entries, types: [[resourceType, count], ...]}`, or
 * null when the bytes are not a FHIR resource.
 */
export function summarize(bytes) {
  let doc;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  if (typeof doc?.resourceType !== 'string') return null;
  const counts = new Map();
  const entries = Array.isArray(doc.entry) ? doc.entry : [];
  for (const e of entries) {
    const type = typeof e?.resource?.resourceType === 'string' ? e.resource.resourceType : '?';
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  const types = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  return { kind: doc.resourceType, entries: entries.length, types };
}

/** A `data:` link to `bytes` (nothing goes over the network when she saves it). */
export function dataHref(bytes, type = 'application/json') {
  return `data:${type};base64,${toBase64(bytes)}`;
}

/**
 * Fetches, checks and opens her archive `id` (hex). `identity` is the key she enrolled with (her
 * records and history are kept under it); `keypair` her current one, which signs. Returns
 * `{plaintext, accessTx, height, index, summary}`; throws a DownloadError, an ArchiveError, a
 * KeyUnwrapError or a NodeError.
 */
export async function openOwnRecord({ node, genesis, sets, keypair, identity, id }) {
  const record = await registered(node, identity, id);
  const archive = fromHex(id, 32, 'archive id');
  const { body, request } = await signedAccessRequest({ chainId: genesis.chainId, signer: keypair.signing, archive });
  const path = `/v1/archives/${id}/fetch`;
  const header = await signedRequestHeader({ chainId: genesis.chainId, signer: keypair.signing, node: node.nodeKey, method: 'POST', path, body });
  const response = await node.fetch(path, { [AUTH_HEADER]: header, 'content-type': 'application/octet-stream' }, { method: 'POST', body });
  if (!response.ok) throw await refusalOf(response);
  const accessTx = response.headers.get('x-cradle-access-tx') ?? '';
  const wrappedHex = response.headers.get('x-cradle-wrapped-key') ?? '';
  const ciphertext = new Uint8Array(await response.arrayBuffer());
  if (ciphertext.length > ARCHIVE_BYTES_MAX) throw new ArchiveError('length', 'the archive is too large to open in the page');
  // The hash first: bytes that are not the registered ciphertext are not decrypted at all.
  let key;
  try {
    const wrapped = wrappedKeyFromHex(wrappedHex);
    if (!equalBytes(await sha256(ciphertext), record.sha256)) {
      throw new ArchiveError('hash-mismatch', 'the ciphertext is not the one the ledger registered');
    }
    key = await unwrapKey(wrapped, archive, keypair.x25519);
    const plaintext = await openArchive({ ciphertext, archive, key, expectedSha256: record.sha256 });
    const logged = await checkLogged({ node, genesis, sets, identity, body, accessTx, requestedAtMs: Number(request.requestedAtMs) });
    return { plaintext, accessTx, height: String(logged.event.height), index: logged.index, summary: summarize(plaintext), category: record.category };
  } finally {
    key?.fill(0);
  }
}

/**
 * Her verified history around the request's time holds exactly this access (the request's
 * hash, in transaction `accessTx`): the custodian logged it before release. Returns the event.
 */
async function checkLogged({ node, genesis, sets, identity, body, accessTx, requestedAtMs }) {
  const range = [Math.max(0, requestedAtMs - LOGGED_WINDOW_MS), Date.now() + LOGGED_WINDOW_MS];
  const result = await fetchVerifiedHistory(node, genesis, sets, { signing: { publicKey: identity } }, range);
  if (!result.verified) throw new DownloadError('download.unproven', `${result.code}: ${result.reason}`);
  const hash = await sha256(body);
  const found = result.events.find((ie) => equalBytes(ie.event.requestHash, hash) && toHex(ie.event.txHash) === accessTx);
  if (!found) throw new DownloadError('download.unproven', `access record ${accessTx} is not in her verified history`);
  return found;
}
