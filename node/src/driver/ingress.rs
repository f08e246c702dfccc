//! The driver's mailbox: what the API and helper tasks send it.

use cradle_ledger::{Hash, PublicKey};
use tokio::sync::oneshot;

use super::receipts::Receipt;
use crate::mempool::MempoolError;
pub use crate::verify::VerifiedTx;
use crate::wire::SyncResponse;

/// Why a submitted transaction was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Mempool(#[from] MempoolError),
    #[error("the transaction is signed by a key that is neither a member nor an enrolled patient")]
    UnknownSigner,
    #[error("node is shutting down")]
    Unavailable,
    #[error("too many transactions are awaiting their commit; retry shortly")]
    Busy,
    #[error(
        "this node's data disk is nearly full ({} MiB free, {} MiB kept for the chain): it takes \
         no new transactions until its operator frees space; other members' nodes can",
        free / (1 << 20),
        reserve / (1 << 20)
    )]
    DiskLow { free: u64, reserve: u64 },
}

pub enum Ingress {
    /// A client's transaction, verified by the API handler.
    Submit {
        tx: Box<VerifiedTx>,
        reply: oneshot::Sender<Result<Hash, SubmitError>>,
        /// Told once, when the transaction commits or is dropped; registered only if it is
        /// admitted.
        receipt: Option<oneshot::Sender<Receipt>>,
    },
    /// Transactions gossiped by a peer, verified off the driver's task.
    Gossiped {
        from: PublicKey,
        txs: Vec<VerifiedTx>,
    },
    /// The answer to a sync request (or why there is none).
    Synced {
        from: cradle_ledger::PublicKey,
        result: Result<SyncResponse, String>,
    },
}
