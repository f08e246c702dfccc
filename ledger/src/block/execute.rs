//! Executing a checked block: the state transition of a whole block.
//!
//! Pure and deterministic: the outcome depends only on the committed state, the consortium and
//! the block (its time included). Changes accumulate in an [`Overlay`]; a failed block returns
//! an error and its overlay is dropped, so committed state never sees a partial block. The
//! caller (the node) writes [`Executed::writes`] in one atomic batch.

use borsh::BorshSerialize;

use crate::access::LoggedEvent;
use crate::crypto::{self, Hash};
use crate::error::Error;
use crate::identity::Consortium;
use crate::merkle::smt;
use crate::rules::{self, BlockContext};
use crate::state::{
    LogState, Overlay, StateExt, StateReader, TREE_PREFIX, TreeNodes, Writes, keys,
};

use super::signatures::SignaturesChecked;

/// What applying a block produced: the writes to commit and the new commitments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// Every key the block sets (`Some`) or deletes (`None`), tree nodes included.
    pub writes: Writes,
    pub state_root: Hash,
    pub access_log: LogState,
    /// The access events the block appended, in log order.
    pub events: Vec<LoggedEvent>,
}

/// Applies the transactions of a checked block in order, all or nothing, on top of `store`
/// (the state at the tip the block's envelope was checked against), and checks the header's
/// commitments against the result. The block's certificate is the caller's concern.
pub fn execute<S: StateReader + ?Sized>(
    store: &S,
    consortium: &Consortium,
    checked: SignaturesChecked<'_>,
) -> Result<Executed, Error> {
    let (block, encoded) = checked.into_parts();
    let h = &block.header;
    let ctx = BlockContext {
        height: h.height,
        time_ms: h.time_ms,
    };
    debug_assert_eq!(block.txs.len(), encoded.len());
    let mut state = Overlay::new(store);
    rules::check_in_force(&state, consortium, h.height)?;
    rules::activate(&mut state, h.height)?;
    let mut events = Vec::new();
    for (index, (stx, enc)) in block.txs.iter().zip(&encoded).enumerate() {
        rules::apply_tx(
            &mut state,
            consortium,
            ctx,
            stx,
            enc.len,
            &enc.hash,
            &mut events,
        )
        .map_err(|e| Error::InvalidTx {
            index,
            source: Box::new(e),
        })?;
    }
    let next_members = crate::governance::next_members_hash(&state, consortium, h.height)?;
    if next_members != h.next_members_hash.0 {
        return Err(Error::HeaderMismatch("next_members_hash"));
    }
    let executed = finish(state, events)?;
    if executed.state_root != h.state_root.0 {
        return Err(Error::HeaderMismatch("state_root"));
    }
    if executed.access_log.size() != h.access_log_size {
        return Err(Error::HeaderMismatch("access_log_size"));
    }
    if executed.access_log.root() != h.access_log_root.0 {
        return Err(Error::HeaderMismatch("access_log_root"));
    }
    Ok(executed)
}

/// Commits the block's data writes to the sparse Merkle tree and returns the result.
pub(super) fn finish<S: StateReader + ?Sized>(
    state: Overlay<'_, S>,
    events: Vec<LoggedEvent>,
) -> Result<Executed, Error> {
    let base = state.base();
    let access_log = state.access_log()?;
    let writes = state.into_writes();
    let updates: Vec<(Hash, Option<Hash>)> = writes
        .iter()
        .filter(|(k, _)| k.first() != Some(&TREE_PREFIX))
        .map(|(k, v)| (crypto::sha256(k), v.as_deref().map(crypto::sha256)))
        .collect();
    let update = smt::update(&TreeNodes(base), &updates)?;
    // The data writes, then the deletes, then the puts, each run in key order: one stable sort
    // merges the runs in linear time and the map is built in one pass. Of equal keys the last
    // wins, as inserting them in that order would: a tree write over a data write, a put over
    // a delete (the tree's two lists are disjoint anyway).
    let mut all = Vec::with_capacity(writes.len() + update.delete.len() + update.put.len());
    all.extend(writes);
    let tree = &mut all;
    for key in &update.delete {
        tree.push((keys::tree_node(key), None));
    }
    for (key, node) in &update.put {
        // A node's encoding is small and fixed; borsh::to_vec would reserve a kilobyte for it.
        let mut bytes = Vec::with_capacity(smt::NODE_BYTES);
        BorshSerialize::serialize(node, &mut bytes).map_err(|e| Error::Storage(e.to_string()))?;
        tree.push((keys::tree_node(key), Some(bytes)));
    }
    let writes: Writes = all.into_iter().collect();
    Ok(Executed {
        writes,
        state_root: update.root,
        access_log,
        events,
    })
}
