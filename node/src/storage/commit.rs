//! Committing a block: every record it changes, in one synced `WriteBatch`.
//!
//! The logs' perfect-subtree hashes are derived here, not trusted from the caller: starting from
//! the frontiers committed in state before the block, each event's leaf is appended, the
//! subtrees it completes are stored, and the resulting frontiers must equal what the execution
//! wrote into state (and the header commits to). A mismatch refuses the block, writing nothing.

use std::collections::BTreeMap;

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
        // A poisoned lock only means another commit panicked; the database itself is intact
        // (its batch was either written whole or not at all).
        let _guard = self
            .commit_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let view = self.view();
        let result = check_extends(&view, fb).and_then(|()| check_executed(fb, executed));
        if let Err(e) = &result {
            tracing::warn!(height = fb.block.header.height, error = %e, "block refused by storage");
        }
        result?;
        let mut batch = Batch::new(view);
        batch.block(fb, executed)?;
        batch.logs(fb.block.header.height, executed)?;
        let mut batch = batch.batch;
        self.drop_wal(&mut batch)?;
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        // Readers of the cached tree wait across the write, then see the block's nodes.
        let mut cached = self.tree_cache.lock();
        self.db.write_opt(batch, &opts)?;
        super::tree_cache::apply(&mut cached, &executed.writes);
        drop(cached);
        self.forget_wal_blocks();
        tracing::debug!(
            height = fb.block.header.height,
            txs = fb.block.txs.len(),
            writes = executed.writes.len(),
            events = executed.events.len(),
            "block committed"
        );
        Ok(())
    }
}

/// The block must be the next one on the stored chain: height tip + 1, parent the tip, same
/// chain. The first block's parent is the chain id, as the ledger defines it.
fn check_extends(view: &View<'_>, fb: &FinalizedBlock) -> Result<(), StorageError> {
    let h = &fb.block.header;
    let (tip_height, want_parent) = match view.tip()? {
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

    /// The block, its hash and transactions, the state writes and the tip.
    fn block(&mut self, fb: &FinalizedBlock, executed: &Executed) -> Result<(), StorageError> {
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
        let state = self.view.cf(CF_STATE)?;
        for (key, value) in &executed.writes {
            match value {
                Some(v) => self.batch.put_cf(state, key, v),
                None => self.batch.delete_cf(state, key),
            }
        }
        if h.height == 1 {
            self.put(CF_META, META_CHAIN_ID, &h.chain_id.0)?;
        }
        self.put(CF_META, META_TIP, &codec::encode(&ChainTip::of(h)))
    }

    /// The events, their indexes, and the subtrees they complete in the global and patient logs.
    fn logs(&mut self, height: u64, executed: &Executed) -> Result<(), StorageError> {
        let mut global = self.view.access_log()?.frontier;
        let mut patients: BTreeMap<PublicKey, Frontier> = BTreeMap::new();
        for ev in &executed.events {
            self.event(ev, &mut global, &mut patients)?;
        }
        let inconsistent = |what| StorageError::Mismatch { height, what };
        if global != executed.access_log.frontier {
            return Err(inconsistent("global log frontier"));
        }
        for (patient, frontier) in patients {
            let written = executed
                .writes
                .get(&keys::patient_log(&patient))
                .and_then(|v| v.as_deref())
                .ok_or(inconsistent("patient log not written"))?;
            let written: LogState = codec::decode(written, VALUE_BYTES_MAX)
                .map_err(|_| inconsistent("patient log encoding"))?;
            if written.frontier != frontier {
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
        self.put(
            CF_IDX_ARCHIVE,
            &index_key(&e.archive.0, ev.global_index),
            &[],
        )?;
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
