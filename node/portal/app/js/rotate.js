// Her key rotated in the page, as `cradle patient rotate-key` does it
// (`client/src/session/patient_keys.rs`): a new key pair is made here (never extractable) and
// sealed at once in a new recovery file under her passphrase; its proof of possession and the
// `rotate_patient_key` transaction are signed in the page with her current key (`tx.js`,
// `keys.js`), posted, and answered once committed. The new key signs for her from the next
// block; the old one is refused for good. Each custodian of her archives then wraps their keys
// again for her new X25519 key by itself (`node/src/custodian/rewrap.rs`): the page waits for
// those re-wraps, checking that every archive key now opens with the new key.

import { fromHex, toHex } from '../../js/bytes.js';
import { proveKeys } from '../../js/keys.js';
import { KeyUnwrapError, unwrapKey, wrappedKeyFromHex } from '../../js/keywrap.js';
import { createKeypairWithRecovery } from '../../js/recovery.js';
import { nextNonce, signTransaction } from '../../js/tx.js';

/** How long the page waits for the custodians' re-wraps, and how often it looks. */
export const REWRAP_WAIT_MS = 90 * 1000;
const REWRAP_POLL_MS = 1500;

export class RotateError extends Error {
  constructor(code, detail = '') {
    super(detail || code);
    this.code = code;
  }
}

function json(bytes) {
  return JSON.parse(new TextDecoder().decode(bytes));
}

/**
 * Makes a new key pair with its recovery file under `passphrase`, hands both to `keep` (so they
 * are kept before anything is sent), and commits the rotation signed with `keypair`. Returns
 * `{keypair, recovery, height}` of the new key.
 */
export async function rotateKey({ node, genesis, keypair, passphrase, keep }) {
  // A node that would not show the membership changes may hold a key a vote replaced.
  if (node.setsConfirmed !== true) throw new RotateError('grant.unconfirmedNode');
  const { keypair: fresh, recovery } = await createKeypairWithRecovery(passphrase);
  const body = { kind: 'rotate_patient_key', ...(await proveKeys(fresh, genesis.chainId)) };
  await keep(fresh, recovery);
  const me = keypair.signing.publicKey;
  const last = json(await node.signedGet(`/v1/nonce/${toHex(me)}`)).last_nonce;
  const nonce = nextNonce(last === null || last === undefined ? null : BigInt(last));
  const signed = await signTransaction({ chainId: genesis.chainId, nonce, body }, keypair.signing);
  const answer = json(await node.post('/v1/txs?wait=commit', signed.encoded));
  return { keypair: fresh, recovery, height: answer.height, hash: toHex(signed.hash) };
}

/** How many of her archives' keys open with `keypair`'s X25519 key: `{open, total}`. */
export async function rewrapProgress(node, identity, keypair) {
  const list = json(await node.signedGet(`/v1/patients/${toHex(identity)}/archives`));
  const archives = Array.isArray(list.archives) ? list.archives : [];
  let open = 0;
  for (const a of archives) {
    try {
      const id = fromHex(String(a.archive), 32, 'archive id');
      const key = await unwrapKey(wrappedKeyFromHex(String(a.record?.key_for_patient)), id, keypair.x25519);
      key.fill(0);
      open += 1;
    } catch (e) {
      if (!(e instanceof KeyUnwrapError)) throw e;
    }
  }
  return { open, total: archives.length };
}

/**
 * Waits until every archive key of hers opens with the new key, telling `progress({open,
 * total})` as it goes; `{open, total}` at the end (short of `total` after the wait).
 */
export async function awaitRewraps(node, identity, keypair, progress, waitMs = REWRAP_WAIT_MS) {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const now = await rewrapProgress(node, identity, keypair);
    progress(now);
    if (now.open === now.total || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, REWRAP_POLL_MS));
  }
}
