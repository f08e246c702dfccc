//! The consensus core's write-ahead record: what a validator signed at the current height, saved
//! and synced before any vote or proposal leaves.
//!
//! The core's [`PersistedState`] holds whole blocks (the locked one, the valid one, each it
//! proposed), and it is saved at every step: written as is, a block of a few thousand
//! transactions went to disk three or four times a height. Here the record holds block ids, and
//! each block goes once into [`CF_WAL_BLOCKS`], in the same synced batch as the first record
//! that names it. A commit drops the record and its blocks, in the commit's own batch: the node
//! never signs at a committed height again, and the next height starts from nothing.

use std::collections::HashSet;

use borsh::{BorshDeserialize, BorshSerialize};
use cradle_consensus::{
    Height, PersistedState, Round, SignedProposal, SignedProposalHeader, SignedVote, Step, Value,
    ValueId,
};
use cradle_ledger::block::Block;
use rocksdb::{WriteBatch, WriteOptions};

use super::schema::*;
use super::{StorageError, Store};

/// [`PersistedState`] with each block replaced by its id.
#[derive(BorshSerialize, BorshDeserialize)]
struct Record {
    height: Height,
    round: Round,
    step: Step,
    locked: Option<(Round, ValueId)>,
    valid: Option<(Round, ValueId)>,
    own_votes: Vec<SignedVote>,
    own_proposals: Vec<(SignedProposalHeader, ValueId)>,
}

/// Blocks this process already wrote to [`CF_WAL_BLOCKS`] since the last commit.
#[derive(Default)]
pub(super) struct Written(HashSet<ValueId>);

/// The key range that covers every block id: a commit deletes it whole.
const ID_FIRST: [u8; 32] = [0; 32];
const ID_PAST_LAST: [u8; 33] = [0xff; 33];

fn corrupt(what: &'static str, detail: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        cf: CF_CONSENSUS,
        what,
        detail: detail.into(),
    }
}

impl Store {
    /// Saves the consensus core's state, synced to disk before returning, with any block it
    /// names that is not on disk yet. The driver calls this before every vote it sends.
    pub fn save_consensus_state(&self, state: &PersistedState<Block>) -> Result<(), StorageError> {
        let record = Record {
            height: state.height,
            round: state.round,
            step: state.step,
            locked: state.locked.as_ref().map(|(r, b)| (*r, b.id())),
            valid: state.valid.as_ref().map(|(r, b)| (*r, b.id())),
            own_votes: state.own_votes.clone(),
            own_proposals: state
                .own_proposals
                .iter()
                .map(|p| (p.header(), p.value.id()))
                .collect(),
        };
        let named = state
            .locked
            .iter()
            .chain(&state.valid)
            .map(|(_, b)| b)
            .chain(state.own_proposals.iter().map(|p| &p.value));
        let view = self.view();
        let mut written = self.wal_written.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = WriteBatch::default();
        let mut new = Vec::new();
        for block in named {
            let id = block.id();
            if written.0.contains(&id) || new.contains(&id) {
                continue;
            }
            let bytes = borsh::to_vec(block).map_err(|e| corrupt("block", e.to_string()))?;
            batch.put_cf(view.cf(CF_WAL_BLOCKS)?, id.0, bytes);
            new.push(id);
        }
        let bytes = borsh::to_vec(&record).map_err(|e| corrupt("state", e.to_string()))?;
        batch.put_cf(view.cf(CF_CONSENSUS)?, CONSENSUS_STATE, bytes);
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        written.0.extend(new);
        Ok(())
    }

    /// The last saved consensus state, its blocks read back and checked against their ids.
    pub fn load_consensus_state(&self) -> Result<Option<PersistedState<Block>>, StorageError> {
        let view = self.view();
        let Some(bytes) = view.consensus_state()? else {
            return Ok(None);
        };
        let record: Record =
            borsh::from_slice(&bytes).map_err(|e| corrupt("state", e.to_string()))?;
        let block = |id: ValueId| -> Result<Block, StorageError> {
            let bytes = view.get(CF_WAL_BLOCKS, &id.0)?.ok_or_else(|| {
                corrupt("state", format!("names block {id:?} that is not stored"))
            })?;
            let block: Block =
                borsh::from_slice(&bytes).map_err(|e| corrupt("block", e.to_string()))?;
            let whole = block.header.tx_root.0 == cradle_ledger::block::tx_root(&block.txs);
            if block.id() != id || !whole {
                return Err(corrupt(
                    "block",
                    format!("stored block {id:?} does not hash to it"),
                ));
            }
            Ok(block)
        };
        let own_proposals = record
            .own_proposals
            .into_iter()
            .map(|(header, id)| {
                Ok(SignedProposal {
                    proposal: header.proposal,
                    signature: header.signature,
                    value: block(id)?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(Some(PersistedState {
            height: record.height,
            round: record.round,
            step: record.step,
            locked: record
                .locked
                .map(|(r, id)| block(id).map(|b| (r, b)))
                .transpose()?,
            valid: record
                .valid
                .map(|(r, id)| block(id).map(|b| (r, b)))
                .transpose()?,
            own_votes: record.own_votes,
            own_proposals,
        }))
    }

    /// Adds to a commit's batch the deletion of the record and of every saved block.
    pub(super) fn drop_wal(&self, batch: &mut WriteBatch) -> Result<(), StorageError> {
        let view = self.view();
        batch.delete_cf(view.cf(CF_CONSENSUS)?, CONSENSUS_STATE);
        batch.delete_range_cf(view.cf(CF_WAL_BLOCKS)?, &ID_FIRST[..], &ID_PAST_LAST[..]);
        Ok(())
    }

    /// After the commit's batch is written.
    pub(super) fn forget_wal_blocks(&self) {
        self.wal_written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clear();
    }
}
