//! Handing transactions to the driver, and hearing back what became of them.
//!
//! The one way into the mempool for clients and for this node's own custodian: a transaction
//! is decoded and its signatures checked off the async runtime, then the driver admits it, and a
//! caller that waits is told its [`Receipt`] (committed, or rejected with the ledger's reason)
//! the moment the driver knows.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cradle_ledger::Hash;
use cradle_ledger::tx::SignedTransaction;
use tokio::sync::{mpsc, oneshot};

use crate::driver::{Ingress, Receipt, SubmitError, VerifiedTx};

/// Longest a caller waits for its transaction's receipt: a backstop for a stalled chain; a
/// transaction the ledger drops is reported as soon as it is dropped.
pub const WAIT_MAX: Duration = Duration::from_secs(30);

/// Why a waited transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("{0}")]
    Submit(#[from] SubmitError),
    #[error("the ledger refused the transaction: {reason}")]
    Rejected {
        hash: Hash,
        reason: String,
        /// Refused only for its nonce: signed again, it may commit.
        stale_nonce: bool,
    },
    #[error("transaction accepted but not committed within {} s", WAIT_MAX.as_secs())]
    Timeout { hash: Hash },
}

/// Where a transaction committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    pub hash: Hash,
    pub height: u64,
    pub index: u32,
}

/// The free space the ledger's disk keeps for the blocks this node must write whatever
/// happens: below it, the node takes no new transactions (its custodian's access records
/// included, so nothing is released unrecorded), while it goes on following the chain.
#[derive(Clone, Debug)]
pub struct DiskReserve {
    pub dir: PathBuf,
    pub bytes: u64,
}

impl DiskReserve {
    /// Free bytes for an unprivileged writer on `dir`'s file system; `None` if it cannot be
    /// read (then nothing is refused for it).
    pub fn free_bytes(&self) -> Option<u64> {
        match rustix::fs::statvfs(&self.dir) {
            Ok(st) => Some(st.f_bavail.saturating_mul(st.f_frsize)),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the data disk's free space");
                None
            }
        }
    }

    fn check(&self) -> Result<(), SubmitError> {
        match self.free_bytes() {
            Some(free) if free < self.bytes => Err(SubmitError::DiskLow {
                free,
                reserve: self.bytes,
            }),
            _ => Ok(()),
        }
    }
}

/// The driver's submission side.
#[derive(Clone)]
pub struct Submitter {
    ingress: mpsc::Sender<Ingress>,
    chain_id: Hash,
    tx_bytes_max: usize,
    disk: Option<Arc<DiskReserve>>,
}

impl Submitter {
    pub fn new(ingress: mpsc::Sender<Ingress>, chain_id: Hash, tx_bytes_max: usize) -> Self {
        Self {
            ingress,
            chain_id,
            tx_bytes_max,
            disk: None,
        }
    }

    /// Refuses new transactions while the ledger's disk has less than `reserve` free.
    pub fn with_disk_reserve(mut self, reserve: DiskReserve) -> Self {
        self.disk = Some(Arc::new(reserve));
        self
    }

    /// Checks an encoded transaction from outside and hands it to the driver: its hash once the
    /// mempool took it.
    pub async fn submit(&self, bytes: Vec<u8>) -> Result<Hash, SubmitError> {
        let tx = self.verify(bytes).await?;
        self.hand_over(tx, None).await
    }

    /// Submits many: all are checked on one blocking task, then handed over in order. One
    /// answer per transaction; `Err(Unavailable)` as a whole when the node is shutting down.
    pub async fn submit_batch(
        &self,
        batch: Vec<Vec<u8>>,
    ) -> Result<Vec<Result<Hash, SubmitError>>, SubmitError> {
        let chain_id = self.chain_id;
        let max = self.tx_bytes_max;
        let checked =
            tokio::task::spawn_blocking(move || crate::verify::verify_many(batch, &chain_id, max))
                .await
                .map_err(|_| SubmitError::Unavailable)?;
        let mut answers = Vec::with_capacity(checked.len());
        for item in checked {
            answers.push(match item {
                Err(e) => Err(SubmitError::Invalid(format!("invalid transaction: {e}"))),
                Ok(tx) => match self.hand_over(tx, None).await {
                    Err(SubmitError::Unavailable) => return Err(SubmitError::Unavailable),
                    other => other,
                },
            });
        }
        Ok(answers)
    }

    /// As [`Self::submit`], then waits for the receipt.
    pub async fn submit_and_wait(&self, bytes: Vec<u8>) -> Result<Committed, WaitError> {
        let tx = self.verify(bytes).await?;
        self.wait(tx).await
    }

    /// Submits a transaction this node signed itself (its custodian's access record) and waits
    /// for its receipt. Its signature is not checked again: this process made it.
    pub async fn submit_own_and_wait(&self, tx: SignedTransaction) -> Result<Committed, WaitError> {
        let encoded = tx.encode();
        let tx = VerifiedTx {
            hash: cradle_ledger::crypto::sha256(&encoded),
            tx,
            encoded,
        };
        self.wait(tx).await
    }

    async fn verify(&self, bytes: Vec<u8>) -> Result<VerifiedTx, SubmitError> {
        let chain_id = self.chain_id;
        let max = self.tx_bytes_max;
        tokio::task::spawn_blocking(move || crate::verify::verify_one(bytes, &chain_id, max))
            .await
            .map_err(|_| SubmitError::Unavailable)?
            .map_err(|e| SubmitError::Invalid(format!("invalid transaction: {e}")))
    }

    async fn hand_over(
        &self,
        tx: VerifiedTx,
        receipt: Option<oneshot::Sender<Receipt>>,
    ) -> Result<Hash, SubmitError> {
        if let Some(disk) = &self.disk {
            disk.check()?;
        }
        let (reply, answer) = oneshot::channel();
        self.ingress
            .send(Ingress::Submit {
                tx: Box::new(tx),
                reply,
                receipt,
            })
            .await
            .map_err(|_| SubmitError::Unavailable)?;
        answer.await.map_err(|_| SubmitError::Unavailable)?
    }

    async fn wait(&self, tx: VerifiedTx) -> Result<Committed, WaitError> {
        let (waiter, receipt) = oneshot::channel();
        let hash = self.hand_over(tx, Some(waiter)).await?;
        match tokio::time::timeout(WAIT_MAX, receipt).await {
            Ok(Ok(Receipt::Committed { height, index })) => Ok(Committed {
                hash,
                height,
                index,
            }),
            Ok(Ok(Receipt::Rejected {
                reason,
                stale_nonce,
            })) => Err(WaitError::Rejected {
                hash,
                reason,
                stale_nonce,
            }),
            Ok(Err(_)) => Err(SubmitError::Unavailable.into()),
            Err(_) => Err(WaitError::Timeout { hash }),
        }
    }
}
