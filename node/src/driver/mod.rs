//! The consensus driver: the task that carries out the consensus core's effects.
//!
//! It owns the [`cradle_consensus::Core`], the mempool and the chain tip. It feeds the core
//! verified-size-bounded peer messages, timer expiries, the blocks it proposes and the
//! ledger's verdict on others' proposals; it persists and fsyncs the core's state before any
//! vote or proposal leaves, commits each decided block with its certificate in one synced
//! RocksDB batch before reporting it, and fetches missed blocks from peers (checking every
//! certificate) when it falls behind.

mod actor;
mod blocks;
pub mod catchup;
mod gossip;
mod ingress;
mod persist;
mod receipts;
mod sync;
mod sync_peers;
mod txs;

use std::sync::Arc;

use cradle_ledger::block::ChainTip;
use cradle_ledger::{Hash, Keypair};
use tokio::sync::{mpsc, watch};

pub use actor::run;
pub use ingress::{Ingress, SubmitError, VerifiedTx};
pub use receipts::{Receipt, WAITERS_MAX};

use crate::mempool::MempoolConfig;
use crate::metrics::Metrics;
use crate::network::{NetEvent, NetworkHandle};
use crate::storage::Store;

/// The driver's parameters, from genesis and the node's config.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    pub consensus: cradle_consensus::Config,
    /// When this node, as proposer, builds its block: a short batching window for pending
    /// transactions, a heartbeat while idle.
    pub pacing: cradle_consensus::Pacing,
    /// How far ahead of this node's clock a proposed block's time may be.
    pub clock_drift_ms_max: u64,
    /// How often to send our consensus messages again and announce our height.
    pub gossip_interval_ms: u64,
    /// How often gossiped transactions are flushed to peers in one batch.
    pub tx_flush_interval_ms: u64,
    pub mempool: MempoolConfig,
}

impl DriverConfig {
    pub fn from_genesis(params: &cradle_genesis::ConsensusParams, mempool: MempoolConfig) -> Self {
        Self {
            consensus: params.timeouts,
            pacing: params.pacing,
            clock_drift_ms_max: 2_000,
            gossip_interval_ms: 1_000,
            tx_flush_interval_ms: 10,
            mempool,
        }
    }
}

/// What the API shows of the node's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub tip: Option<ChainTip>,
    pub state_root: Hash,
    pub access_log_size: u64,
    pub access_log_root: Hash,
    pub round: u32,
    pub peers: usize,
    pub mempool_txs: usize,
}

/// Everything the driver task needs.
pub struct DriverParts {
    pub config: DriverConfig,
    /// The member sets by height, loaded from the store.
    pub members: Arc<crate::members::Members>,
    pub keypair: Keypair,
    pub store: Arc<Store>,
    pub network: NetworkHandle,
    pub net_events: mpsc::Receiver<NetEvent>,
    pub metrics: Arc<Metrics>,
    pub status: watch::Sender<Status>,
    pub ingress_tx: mpsc::Sender<Ingress>,
    pub ingress_rx: mpsc::Receiver<Ingress>,
    /// Becomes true when the node is asked to stop: the driver returns between two inputs, so
    /// never in the middle of a commit.
    pub shutdown: watch::Receiver<bool>,
}

/// Capacity of the driver's mailbox.
pub const INGRESS_CAPACITY: usize = 8192;

/// The driver failed and the node must stop: a storage write failed or the chain is corrupt.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("ledger: {0}")]
    Ledger(#[from] cradle_ledger::Error),
    #[error("consensus: {0}")]
    Consensus(#[from] cradle_consensus::Error),
    #[error("corrupt consensus state on disk: {0}")]
    CorruptState(String),
}
