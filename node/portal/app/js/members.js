// The member sets this page follows after genesis, kept in IndexedDB per chain.
//
// What is kept is the node's answer to `GET /v1/governance/sets` (hex), as last verified; it
// is followed again from genesis whenever it is loaded, so the browser's own storage is checked
// like a node's answer. A node's newer answer must extend what was kept (the same sets, in the
// same order) before it replaces it; a shorter one leaves the kept sets as they are.

import { fromHex, toHex } from '../../js/bytes.js';
import { SetError, Sets, decodeSetChanges, genesisSet } from '../../js/sets.js';
import { NodeError } from './node.js';
import * as store from './store.js';

/** The sets of `genesis` with what this browser kept, followed again from genesis. */
export async function loadSets(genesis) {
  const fresh = () => Sets.fromSet(genesis.chainId, genesisSet(genesis.doc));
  const kept = await store.get(store.KEYS.sets(genesis.chainIdHex));
  if (!kept) return fresh();
  const sets = await fresh();
  try {
    await sets.followAll(decodeSetChanges(fromHex(kept)));
    return sets;
  } catch {
    // A kept list that no longer verifies is not used: the node's answer is asked again.
    await store.remove(store.KEYS.sets(genesis.chainIdHex));
    return fresh();
  }
}

/**
 * Asks `node` for every set change and follows the ones after those `sets` holds. A caller the
 * node does not know yet (a patient before her enrolment) is not told: `sets` stays as it is,
 * and `node.setsConfirmed` is false. So would an impostor holding a key a vote rotated out
 * answer, to be judged by older sets; the page, which can ask no other member's node (its
 * connections stay on its own origin), then sends it no transaction (see consent_view.js),
 * and its histories can only be ones certified before the vote, refused as stale.
 * Throws a NodeError (`setsRefused`) for a list that does not verify.
 */
export async function updateSets(node, genesis, sets) {
  let bytes;
  try {
    bytes = await node.signedGet('/v1/governance/sets');
  } catch (e) {
    if (e instanceof NodeError && (e.code === 'notEnrolled' || e.code === 'signatureRefused')) {
      node.setsConfirmed = false;
      return sets;
    }
    throw e;
  }
  node.setsConfirmed = true;
  let changes;
  try {
    changes = decodeSetChanges(bytes);
    await sets.followAll(changes);
  } catch (e) {
    if (e instanceof SetError) throw new NodeError('setsRefused', `${e.code}: ${e.message}`);
    throw e;
  }
  if (changes.length === sets.changes.length) await store.put(store.KEYS.sets(genesis.chainIdHex), toHex(bytes));
  return sets;
}

/** The member `key` names or signs for, in the newest set that holds it, else null. */
export const memberOf = (sets, key) => sets.memberByAnyKey(typeof key === 'string' ? fromHex(key, 32) : key);
