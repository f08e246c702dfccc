//! Committing a block: every record it changes, in one synced `WriteBatch`.
//!
//! The logs' perfect-subtree hashes are derived here, not trusted from the caller: starting from
//! the frontiers committed in state before the block, each event's leaf is appended, the
//! subtrees it completes are stored, and the resulting frontiers must equal what the execution
//! wrote into state (and the header commits to). A mismatch refuses the block, writing nothing.

use std::collections::{BTreeMap, BTreeSet};

use rocksdb::{WriteBatch, WriteOptions};

use cradle_ledger::access::LoggedEvent;
use cradle_ledger::block::{ChainTip, Executed, FinalizedBlock};
use cradle_ledger::codec;
use cradle_ledger::crypto::{Digest32, PublicKey};
use cradle_ledger::merkle::log::Frontier;
use cradle_ledger::state::{LogState, StateExt, VALUE_BYTES_MAX, keys};

use super::read::View;
use super::schema::*;
use super::{StorageError, Store};

impl Store {
    /// Commits a finalized block and its execution results atomically and durably (synced before
    /// returning). Refuses, writing nothing, a block that is not the tip's child, or whose
    /// header or certificate disagrees with `executed`. Any error is fatal to the caller.
    pub fn commit_block(
        &self,
        fb: &FinalizedBlock,
        executed: &Executed,
    ) -> Result<(), StorageError> {
        self.commit_blocks(&[(fb, executed)])
    }

    /// Commits consecutive blocks, each executed on the state the ones before it left, in one
    /// atomic synced batch: a node catching up writes a peer's whole response at once rather
    /// than a synced write per block. Each block is checked as [`Store::commit_block`] checks
    /// one (the first against the stored tip, each next against the one before it); the
    /// state keys several blocks write are written once, with the last block's value. Any
    /// refusal writes nothing.
    pub fn commit_blocks(
        &self,
        blocks: &[(&FinalizedBlock, &Executed)],
    ) -> Result<(), StorageError> {
        let Some((last, _)) = blocks.last() else {
            return Ok(());
        };
        // A poisoned lock only means another commit panicked; the database itself is intact
        // (its batch was either written whole or not at all).
        let _guard = self
            .commit_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let view = self.view();
        let mut batch = Batch::new(view);
        let mut logs = LogCursor::default();
        let mut state: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        let mut parent = None;
        for (fb, executed) in blocks {
            let result = check_extends(&view, parent.as_ref(), fb)
                .and_then(|()| check_executed(fb, executed))
                .and_then(|()| batch.block(fb))
                .and_then(|()| batch.logs(fb.block.header.height, executed, &mut logs));
            if let Err(e) = &result {
                tracing::warn!(height = fb.block.header.height, error = %e, "block refused by storage");
            }
            result?;
            for (key, value) in &executed.writes {
                state.insert(key, value.as_deref());
            }
            parent = Some(ChainTip::of(&fb.block.header));
        }
        batch.state(&state)?;
        let mut batch = batch.batch;
        self.drop_wal(&mut batch)?;
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        // Readers of the cached tree wait across the write, then see the blocks' nodes.
        let mut cached = self.tree_cache.lock();
        self.db.write_opt(batch, &opts)?;
        super::tree_cache::apply(&mut cached, state.iter().map(|(k, v)| (*k, *v)));
        drop(cached);
        self.forget_wal_blocks();
        tracing::debug!(
            height = last.block.header.height,
            blocks = blocks.len(),
            txs = blocks
                .iter()
                .map(|(fb, _)| fb.block.txs.len())
                .sum::<usize>(),
            writes = state.len(),
            "blocks committed"
        );
        Ok(())
    }
}

/// The logs' frontiers as the blocks of a batch leave them: read from the store for the first
/// block that touches each log, then carried from block to block.
#[derive(Default)]
struct LogCursor {
    global: Option<Frontier>,
    patients: BTreeMap<PublicKey, Frontier>,
}

/// The block must be the next one on the stored chain: height tip + 1, parent the tip, same
/// chain. The first block's parent is the chain id, as the ledger defines it.
fn check_extends(
    view: &View<'_>,
    parent: Option<&ChainTip>,
    fb: &FinalizedBlock,
) -> Result<(), StorageError> {
    let h = &fb.block.header;
    let tip = match parent {
        Some(p) => Some(*p),
        None => view.tip()?,
    };
    let (tip_height, want_parent) = match tip {
        Some(tip) => (tip.height, tip.hash),
        None => (0, h.chain_id.0),
    };
    if h.height != tip_height.saturating_add(1) {
        return Err(StorageError::WrongHeight {
            got: h.height,
            tip: tip_height,
        });
    }
    if let Some(chain) = view.chain_id()?
        && chain != h.chain_id.0
    {
        return Err(StorageError::WrongChain {
            got: h.chain_id,
            want: Digest32(chain),
        });
    }
    if h.prev_hash.0 != want_parent {
        return Err(StorageError::WrongParent {
            height: h.height,
            got: h.prev_hash,
            want: Digest32(want_parent),
        });
    }
    Ok(())
}

/// Cheap agreement checks between the header, its certificate and the execution results, so a
/// driver bug cannot store a block under state it does not commit to.
fn check_executed(fb: &FinalizedBlock, executed: &Executed) -> Result<(), StorageError> {
    let h = &fb.block.header;
    let mismatch = |what| StorageError::Mismatch {
        height: h.height,
        what,
    };
    if executed.state_root != h.state_root.0 {
        return Err(mismatch("state_root"));
    }
    if executed.access_log.size() != h.access_log_size {
        return Err(mismatch("access_log_size"));
    }
    if executed.access_log.root() != h.access_log_root.0 {
        return Err(mismatch("access_log_root"));
    }
    if fb.block.txs.len() != h.tx_count as usize {
        return Err(mismatch("tx_count"));
    }
    if fb.certificate.height != h.height || fb.certificate.value != h.value_id() {
        return Err(mismatch("certificate"));
    }
    Ok(())
}

/// A batch under construction, with the column family handles it writes to.
struct Batch<'a> {
    view: View<'a>,
    batch: WriteBatch,
}

impl<'a> Batch<'a> {
    fn new(view: View<'a>) -> Self {
        Self {
            view,
            batch: WriteBatch::default(),
        }
    }

    fn put(&mut self, cf: &'static str, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.batch.put_cf(self.view.cf(cf)?, key, value);
        Ok(())
    }

    /// The block, its hash and transactions, and the tip.
    fn block(&mut self, fb: &FinalizedBlock) -> Result<(), StorageError> {
        let h = &fb.block.header;
        let height = height_key(h.height);
        self.put(CF_BLOCKS, &height, &fb.encode())?;
        self.put(CF_BLOCK_HASHES, &h.hash(), &height)?;
        for (index, stx) in fb.block.txs.iter().enumerate() {
            let index = u32::try_from(index).map_err(|_| StorageError::Mismatch {
                height: h.height,
                what: "tx_count",
            })?;
            self.put(CF_TXS, &stx.hash(), &tx_location_value(h.height, index))?;
        }
        if h.height == 1 {
            self.put(CF_META, META_CHAIN_ID, &h.chain_id.0)?;
        }
        self.put(CF_META, META_TIP, &codec::encode(&ChainTip::of(h)))
    }

    /// The state writes of the batch's blocks, each key once.
    fn state(&mut self, writes: &BTreeMap<&[u8], Option<&[u8]>>) -> Result<(), StorageError> {
        let state = self.view.cf(CF_STATE)?;
        for (key, value) in writes {
            match value {
                Some(v) => self.batch.put_cf(state, key, v),
                None => self.batch.delete_cf(state, key),
            }
        }
        Ok(())
    }

    /// The events, their indexes, and the subtrees they complete in the global and patient logs.
    /// The frontiers start where `cursor` says (the stored ones for a log it has not seen) and
    /// are left there for the next block of the batch.
    fn logs(
        &mut self,
        height: u64,
        executed: &Executed,
        cursor: &mut LogCursor,
    ) -> Result<(), StorageError> {
        let mut global = match cursor.global.take() {
            Some(f) => f,
            None => self.view.access_log()?.frontier,
        };
        let mut touched = BTreeSet::new();
        for ev in &executed.events {
            touched.insert(ev.event.patient);
            self.event(ev, &mut global, &mut cursor.patients)?;
        }
        let inconsistent = |what| StorageError::Mismatch { height, what };
        if global != executed.access_log.frontier {
            return Err(inconsistent("global log frontier"));
        }
        cursor.global = Some(global);
        for patient in touched {
            let frontier = cursor
                .patients
                .get(&patient)
                .ok_or(inconsistent("patient log frontier"))?;
            let written = executed
                .writes
                .get(&keys::patient_log(&patient))
                .and_then(|v| v.as_deref())
                .ok_or(inconsistent("patient log not written"))?;
            let written: LogState = codec::decode(written, VALUE_BYTES_MAX)
                .map_err(|_| inconsistent("patient log encoding"))?;
            if &written.frontier != frontier {
                return Err(inconsistent("patient log frontier"));
            }
        }
        Ok(())
    }

    fn event(
        &mut self,
        ev: &LoggedEvent,
        global: &mut Frontier,
        patients: &mut BTreeMap<PublicKey, Frontier>,
    ) -> Result<(), StorageError> {
        let e = &ev.event;
        let mismatch = |what| StorageError::Mismatch {
            height: e.height,
            what,
        };
        if ev.global_index != global.size() {
            return Err(mismatch("event global index"));
        }
        let patient = match patients.entry(e.patient) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(self.view.patient_log(&e.patient)?.frontier)
            }
        };
        if ev.patient_index != patient.size() {
            return Err(mismatch("event patient index"));
        }
        let leaf = e.leaf_hash();
        for (level, index, hash) in global.append_nodes(leaf) {
            self.put(
                CF_LOG_NODES,
                &log_node_key(level_byte(level)?, index),
                &hash,
            )?;
        }
        for (level, index, hash) in patient.append_nodes(leaf) {
            let key = patient_log_node_key(&e.patient.0, level_byte(level)?, index);
            self.put(CF_PATIENT_LOG_NODES, &key, &hash)?;
        }
        self.put(CF_EVENTS, &height_key(ev.global_index), &codec::encode(ev))?;
        self.put(
            CF_IDX_PATIENT,
            &index_key(&e.patient.0, ev.global_index),
            &[],
        )?;
        // A key change names no archive, and is in no archive's log.
        if e.about_archive() {
            self.put(
                CF_IDX_ARCHIVE,
                &index_key(&e.archive.0, ev.global_index),
                &[],
            )?;
        }
        if e.outcome.in_break_glass_log() {
            self.put(
                CF_IDX_BREAK_GLASS,
                &index_key(&BREAK_GLASS_ID, ev.global_index),
                &[],
            )?;
        }
        // A clinician's access is her institution's too, as the ledger's accessor logs have it.
        if let Some(staff) = &e.staff {
            self.put(
                CF_IDX_ACCESSOR,
                &index_key(&staff.institution.0, ev.global_index),
                &[],
            )?;
        }
        self.put(
            CF_IDX_ACCESSOR,
            &index_key(&e.accessor.0, ev.global_index),
            &[],
        )
    }
}

/// Levels of a log of at most `u64::MAX` leaves are below 64.
fn level_byte(level: u32) -> Result<u8, StorageError> {
    u8::try_from(level).map_err(|_| StorageError::Mismatch {
        height: 0,
        what: "log level",
    })
}
