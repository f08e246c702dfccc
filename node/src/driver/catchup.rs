//! Applying a run of certified blocks, as a node catching up does with a peer's sync response.
//!
//! Every block gets the checks of a block this node saw decided: it decodes within bounds,
//! follows the tip (height and parent), carries a commit certificate of more than two thirds of
//! the voting power of the set in force at its own height, passes the envelope and signature
//! checks of every transaction (the accessor's request and the patient's proofs inside them
//! included), and re-executes to the state, log and member-set commitments its header names.
//! Only the order of the work differs, for speed:
//!
//! - the signatures of the whole run are checked before any block executes, as two ed25519
//!   batches on two threads (a batch of hundreds costs about half as much per signature as one
//!   of a block's dozen, and the second core is otherwise idle during catch-up); a batch that
//!   fails leaves its blocks to be checked one by one, which names the bad transaction;
//! - each block executes on the state the blocks before it left, held in memory, so no block
//!   waits for the disk;
//! - the run is written in one synced batch ([`Store::commit_blocks`]), each key once.
//!
//! A block that fails a check ends the run there: the blocks before it are written, and the
//! failure is reported as the peer's ([`Refused`]). Only storage faults are errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cradle_ledger::Consortium;
use cradle_ledger::block::{self, ChainTip, Executed, FinalizedBlock, check_envelope};
use cradle_ledger::state::Overlay;

use super::DriverError;
use crate::members::Members;
use crate::storage::Store;

/// Blocks a node catching up asks a peer for at once: the longest run it applies.
pub const SYNC_BATCH: u16 = 32;

/// A block of the run, written, with what it did.
pub struct Applied {
    pub block: FinalizedBlock,
    pub executed: Executed,
    /// The member set the block adopted, with its first height.
    pub adopted: Option<(u64, Arc<Consortium>)>,
}

/// Why a run ended before its last block: what the peer sent was wrong.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("a block does not decode: {0}")]
    Malformed(cradle_ledger::Error),
    #[error("block {height} does not follow the tip at {tip}")]
    OutOfOrder { height: u64, tip: u64 },
    #[error("block {height} has no valid certificate: {source}")]
    Certificate {
        height: u64,
        source: cradle_ledger::Error,
    },
    #[error("certified block {height} does not apply: {source}")]
    Invalid {
        height: u64,
        source: cradle_ledger::Error,
    },
}

/// Where the time of a run went.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    pub decode: Duration,
    /// The two threads' batches, wall time.
    pub signatures: Duration,
    pub certificates: Duration,
    /// Envelopes, execution and following the member sets.
    pub execution: Duration,
    /// The synced write.
    pub storage: Duration,
}

impl std::ops::AddAssign for Timings {
    fn add_assign(&mut self, o: Self) {
        self.decode += o.decode;
        self.signatures += o.signatures;
        self.certificates += o.certificates;
        self.execution += o.execution;
        self.storage += o.storage;
    }
}

/// What a run did: the blocks written, in order, and why it stopped early, if it did.
pub struct Run {
    pub applied: Vec<Applied>,
    /// Blocks at or below the tip, skipped (a peer's answer may overlap what this node has).
    pub skipped: usize,
    pub refused: Option<Refused>,
    pub timings: Timings,
}

/// Applies `blocks` (encoded, in height order) on top of `tip`, the stored tip, taking up each
/// member set the blocks adopt as the driver would (`members` moves on with them), and writes
/// the blocks that pass in one synced batch.
pub fn apply_certified(
    store: &Store,
    members: &Members,
    tip: ChainTip,
    blocks: &[Vec<u8>],
) -> Result<Run, DriverError> {
    let mut timings = Timings::default();
    let mut refused = None;
    let mut skipped = 0;

    // Decoded within the message's bound: the envelope check holds each block to the limits
    // of the set in force at its height, which a block of the run may change.
    let started = Instant::now();
    let mut run = Vec::with_capacity(blocks.len());
    let mut next = tip.height.saturating_add(1);
    for bytes in blocks {
        let fb = match FinalizedBlock::decode(bytes, crate::wire::MESSAGE_BYTES_MAX) {
            Ok(fb) => fb,
            Err(e) => {
                refused = Some(Refused::Malformed(e));
                break;
            }
        };
        let height = fb.block.header.height;
        if height <= tip.height && run.is_empty() {
            skipped += 1;
            continue;
        }
        if height != next {
            refused = Some(Refused::OutOfOrder {
                height,
                tip: next.saturating_sub(1),
            });
            break;
        }
        next = next.saturating_add(1);
        run.push(fb);
    }
    timings.decode = started.elapsed();

    let started = Instant::now();
    let presigned = presign(&run, &members.current().chain_id);
    timings.signatures = started.elapsed();

    let mut state = Overlay::new(store);
    let mut applied: Vec<Applied> = Vec::with_capacity(run.len());
    let mut tip = tip;
    for (fb, signed) in run.into_iter().zip(presigned) {
        let height = fb.block.header.height;
        let consortium = members.current();
        let started = Instant::now();
        let certified = fb.verify_certificate(&consortium);
        timings.certificates += started.elapsed();
        if let Err(source) = certified {
            refused = Some(Refused::Certificate { height, source });
            break;
        }
        let started = Instant::now();
        let executed = check_envelope(&consortium, &tip, &fb.block)
            .and_then(|envelope| {
                envelope.verify_signatures_except(&consortium.chain_id, |_| signed)
            })
            .and_then(|checked| block::execute(&state, &consortium, checked));
        let executed = match executed {
            Ok(e) => e,
            Err(source) => {
                timings.execution += started.elapsed();
                refused = Some(Refused::Invalid { height, source });
                break;
            }
        };
        state.apply(&executed.writes);
        let adopted = members.committed(height, &state)?;
        timings.execution += started.elapsed();
        tip = ChainTip::of(&fb.block.header);
        applied.push(Applied {
            block: fb,
            executed,
            adopted,
        });
    }
    drop(state);

    let started = Instant::now();
    let written: Vec<_> = applied.iter().map(|a| (&a.block, &a.executed)).collect();
    store.commit_blocks(&written)?;
    timings.storage = started.elapsed();
    Ok(Run {
        applied,
        skipped,
        refused,
        timings,
    })
}

/// Whether each block's transaction signatures passed, checked as two batches on two threads
/// (the run split where the transactions are halved). A batch that fails marks its blocks
/// unchecked rather than bad: each is then checked alone, in its turn.
fn presign(run: &[FinalizedBlock], chain_id: &cradle_ledger::Hash) -> Vec<bool> {
    let total: usize = run.iter().map(|fb| fb.block.txs.len()).sum();
    let mut seen = 0;
    let split = run
        .iter()
        .position(|fb| {
            seen += fb.block.txs.len();
            seen * 2 >= total
        })
        .map_or(run.len(), |i| i + 1);
    let (first, second) = run.split_at(split);
    let check = |blocks: &[FinalizedBlock]| {
        let txs = blocks.iter().flat_map(|fb| fb.block.txs.iter());
        block::verify_signatures_of(txs, chain_id).is_ok()
    };
    let (a, b) = std::thread::scope(|s| {
        let other = s.spawn(|| check(second));
        let a = check(first);
        // A panic in the other thread is a bug in the check; its blocks are checked again alone.
        (a, other.join().unwrap_or(false))
    });
    first
        .iter()
        .map(|_| a)
        .chain(second.iter().map(|_| b))
        .collect()
}
