// The node that served this page, asked as a client: its member key (which signed requests
// must name), the genesis it runs (compared with the patient's own copy: a node of another
// consortium is not used), and signed `GET`s. Nothing here is trusted for what it says about
// the ledger: answers are checked by the verification library against the patient's genesis.

import { fromHex, toHex } from '../../js/bytes.js';
import { signedRequestHeader, AUTH_HEADER } from '../../js/request.js';
import { chainIdOf, readGenesis } from '../../js/genesis.js';

/** Largest answer read from the node (an audit answer may hold many leaves). */
const ANSWER_BYTES_MAX = 64 * 1024 * 1024;

/** Why the node cannot be used: `code` picks the page's words, `reason` is the detail. */
export class NodeError extends Error {
  constructor(code, reason) {
    super(reason);
    this.code = code;
  }
}

async function body(response) {
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length > ANSWER_BYTES_MAX) throw new NodeError('failed', 'the answer is too large');
  return bytes;
}

async function refusal(response) {
  let reason = `HTTP ${response.status}`;
  try {
    const j = JSON.parse(new TextDecoder().decode(await body(response)));
    if (typeof j.error === 'string') reason = `${reason}: ${j.error}`;
  } catch {
    // Not the API's JSON error: the status says enough.
  }
  // 403: a well-signed request from a key the node does not know. 401: a signature it did not
  // take (for another chain, or dated by a clock too far from the node's).
  // 409: a transaction the ledger refused, with its reason.
  const code = { 401: 'signatureRefused', 403: 'notEnrolled', 409: 'txRefused' }[response.status] ?? 'failed';
  return new NodeError(code, reason);
}

/** The node at this page's origin, for `genesis` (from `loadGenesis`) and `keypair`. */
export class Node {
  constructor(genesis, keypair) {
    this.genesis = genesis;
    this.keypair = keypair;
    this.nodeKey = null;
    this.member = null;
  }

  async fetch(path, headers = {}, init = {}) {
    try {
      return await fetch(path, { headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', ...init });
    } catch (e) {
      throw new NodeError('failed', e.message);
    }
  }

  /**
   * Learns the node's key. Whose key it is, is checked with `checkMember` once the member sets
   * are followed: after a rotation a member's node signs with a key genesis does not list.
   */
  async connect() {
    const response = await this.fetch('/v1/status');
    if (!response.ok) throw await refusal(response);
    let status;
    try {
      status = JSON.parse(new TextDecoder().decode(await body(response)));
    } catch {
      throw new NodeError('failed', 'the status is not JSON');
    }
    let key;
    try {
      key = fromHex(String(status.node_key), 32, 'node key');
    } catch {
      throw new NodeError('failed', 'the status names no node key');
    }
    this.nodeKey = key;
    return key;
  }

  /**
   * Refuses a node whose key signs for no member of the newest set `sets` verified (a key a
   * vote removed or rotated out is refused, as the CLI refuses it).
   */
  checkMember(sets) {
    const member = sets.signer(this.nodeKey);
    if (!member) throw new NodeError('notMember', toHex(this.nodeKey));
    this.member = member;
    return member;
  }

  /** `GET path` signed with the patient's key for this node; the answer's bytes. */
  async signedGet(path) {
    if (!this.nodeKey) await this.connect();
    const header = await signedRequestHeader({
      chainId: this.genesis.chainId,
      signer: this.keypair.signing,
      node: this.nodeKey,
      method: 'GET',
      path,
    });
    const response = await this.fetch(path, { [AUTH_HEADER]: header });
    if (!response.ok) throw await refusal(response);
    return body(response);
  }

  /**
   * `POST path` with `bytes` (a signed transaction carries its own signature: the request is
   * not signed); the answer's bytes, or a NodeError with the node's reason.
   */
  async post(path, bytes) {
    const response = await this.fetch(path, { 'content-type': 'application/octet-stream' }, { method: 'POST', body: bytes });
    if (!response.ok) {
      const e = await refusal(response);
      // Any other refusal of a transaction is the ledger's or the node's reason about it.
      if (e.code === 'failed' && response.status >= 400 && response.status < 500) e.code = 'txRefused';
      throw e;
    }
    return body(response);
  }

  /** Refuses a node that runs another genesis than the patient's own copy. */
  async checkGenesis() {
    const bytes = await this.signedGet('/v1/genesis');
    let theirs;
    try {
      theirs = await chainIdOf(readGenesis(JSON.parse(new TextDecoder().decode(bytes))));
    } catch (e) {
      throw new NodeError('genesisMismatch', e.message);
    }
    if (toHex(theirs) !== this.genesis.chainIdHex) throw new NodeError('genesisMismatch', toHex(theirs));
  }
}
