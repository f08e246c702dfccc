//! Building a proposal: the proposer's side of the state transition.

use crate::codec::BoundedVec;
use crate::crypto::{self, Digest32, Hash, PublicKey};
use crate::error::Error;
use crate::identity::Consortium;
use crate::rules::{self, BlockContext};
use crate::state::{Overlay, StateReader};
use crate::tx::SignedTransaction;

use super::execute::{Executed, finish};
use super::{Block, BlockHeader, ChainTip, tx_leaf, tx_root_of_leaves};

/// A proposer's block, what executing it produced, and the candidates the rules refused.
pub struct BuiltBlock {
    pub block: Block,
    pub executed: Executed,
    pub rejected: Vec<(Hash, Error)>,
}

/// A proposer's block: applies candidates in order, drops the ones the rules refuse (returned
/// with their error), stops at the block's limits, and fills in the header's commitments.
///
/// Candidates' signatures must already have been checked: the node takes them from its
/// mempool, which admits only verified transactions. They are not checked again here because
/// the proposer needs no proof for its own block; every other validator checks the block's
/// signatures before it executes it ([`super::SignaturesChecked`]).
pub fn build_block<S: StateReader + ?Sized>(
    store: &S,
    consortium: &Consortium,
    tip: &ChainTip,
    time_ms: u64,
    proposer: PublicKey,
    candidates: impl IntoIterator<Item = SignedTransaction>,
) -> Result<BuiltBlock, Error> {
    let ctx = BlockContext {
        height: tip.height + 1,
        time_ms,
    };
    let limits = &consortium.limits;
    let mut state = Overlay::new(store);
    rules::check_in_force(&state, consortium, ctx.height)?;
    rules::activate(&mut state, ctx.height)?;
    let mut events = Vec::new();
    let mut txs = Vec::new();
    let mut rejected = Vec::new();
    let mut leaves = Vec::new();
    let mut bytes = 0usize;
    for stx in candidates {
        if txs.len() >= limits.block_txs_max as usize {
            break;
        }
        let encoded = stx.encode();
        let len = encoded.len();
        if bytes + len > limits.block_bytes_max as usize {
            break;
        }
        let hash = crypto::sha256(&encoded);
        let leaf = tx_leaf(&encoded);
        drop(encoded);
        match rules::apply_tx(&mut state, consortium, ctx, &stx, len, &hash, &mut events) {
            Ok(()) => {
                bytes += len;
                txs.push(stx);
                leaves.push(leaf);
            }
            Err(e) => rejected.push((hash, e)),
        }
    }
    let next_members = crate::governance::next_members_hash(&state, consortium, ctx.height)?;
    let executed = finish(state, events)?;
    let header = BlockHeader {
        chain_id: Digest32(consortium.chain_id),
        height: ctx.height,
        time_ms,
        prev_hash: Digest32(tip.hash),
        proposer,
        tx_count: txs.len() as u32,
        tx_root: Digest32(tx_root_of_leaves(&leaves)),
        state_root: Digest32(executed.state_root),
        access_log_size: executed.access_log.size(),
        access_log_root: Digest32(executed.access_log.root()),
        next_members_hash: Digest32(next_members),
    };
    let txs = BoundedVec::new(txs)?;
    Ok(BuiltBlock {
        block: Block { header, txs },
        executed,
        rejected,
    })
}
