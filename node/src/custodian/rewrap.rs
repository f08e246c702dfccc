//! Re-wrapping a patient's archive keys when her keys change.
//!
//! A patient who rotates her keys, or is recovered with new ones, reads her archives with her new
//! X25519 key only once each custodian has wrapped the archive key again for it
//! (`RewrapForPatient`). This task follows the committed blocks and does it for the archives
//! this node holds: for every committed `RotatePatientKey` and `RecoverPatient` (except a
//! recovery this member signed itself, whose command re-wraps at once), it wraps the key of each
//! of her archives in its custody for her current X25519 key and submits the re-wraps.
//!
//! The height it has gone through is kept in `DATA/rewrap-cursor`, so key changes committed
//! while the node was down are handled when it starts again.

use std::path::PathBuf;
use std::sync::Arc;

use cradle_ledger::state::StateExt;
use cradle_ledger::tx::{RewrapForPatient, Transaction, TxBody};
use cradle_ledger::{ArchiveId, PublicKey};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::Custodian;
use crate::driver::Status;
use crate::submit::WaitError;

/// Most blocks read per pass before the task yields.
const BLOCKS_PER_PASS: u64 = 256;
/// Most archives of one patient re-wrapped (a patient holds far fewer).
const ARCHIVES_MAX: usize = 4096;

/// Where the task keeps the height it went through.
pub fn cursor_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("rewrap-cursor")
}

fn read_cursor(path: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn write_cursor(path: &std::path::Path, height: u64) {
    if let Err(e) =
        cradle_genesis::fsutil::write_replace(path, height.to_string().as_bytes(), 0o600)
    {
        warn!(error = %e, "could not save the re-wrap cursor");
    }
}

/// Follows committed blocks until `stop` and re-wraps for patients whose keys changed.
pub async fn follow(
    custodian: Arc<Custodian>,
    cursor: PathBuf,
    mut status: watch::Receiver<Status>,
    mut stop: watch::Receiver<bool>,
) {
    // A node without a cursor starts at its tip: it takes up the key changes from now on.
    let mut done = match read_cursor(&cursor) {
        Some(h) => h,
        None => {
            let tip = custodian
                .ledger
                .tip()
                .ok()
                .flatten()
                .map_or(0, |t| t.height);
            write_cursor(&cursor, tip);
            tip
        }
    };
    loop {
        let tip = status.borrow().tip.as_ref().map_or(0, |t| t.height);
        while done < tip {
            let to = tip.min(done.saturating_add(BLOCKS_PER_PASS));
            for height in done.saturating_add(1)..=to {
                if let Err(e) = custodian.rewrap_block(height).await {
                    warn!(height, error = %e, "re-wrapping after a key change failed; `cradle patient rewrap` does it by hand");
                }
            }
            done = to;
            write_cursor(&cursor, done);
            tokio::task::yield_now().await;
        }
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

impl Custodian {
    /// Re-wraps for every patient whose keys block `height` changed.
    async fn rewrap_block(&self, height: u64) -> Result<(), String> {
        let Some(block) = self.ledger.block(height).map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let me = self.public_key();
        let mut patients = Vec::new();
        for stx in &block.block.txs {
            let tx = &stx.tx;
            let patient = match &tx.body {
                TxBody::RecoverPatient(r) if tx.signer != me => r.patient,
                TxBody::RotatePatientKey(_) => {
                    match self
                        .ledger
                        .patient_by_key(&tx.signer)
                        .map_err(|e| e.to_string())?
                    {
                        Some((identity, _, _)) => identity,
                        None => continue,
                    }
                }
                _ => continue,
            };
            if !patients.contains(&patient) {
                patients.push(patient);
            }
        }
        for patient in patients {
            let n = self.rewrap_for(&patient).await?;
            if n > 0 {
                info!(
                    height,
                    archives = n,
                    "re-wrapped archive keys for a patient's new key"
                );
            }
        }
        Ok(())
    }

    /// Wraps again, for `patient`'s current X25519 key, the key of every archive of hers this
    /// member holds; returns how many.
    pub async fn rewrap_for(&self, patient: &PublicKey) -> Result<usize, String> {
        let ledger = &self.ledger;
        let Some(record) = ledger.patient(patient).map_err(|e| e.to_string())? else {
            return Ok(0);
        };
        let identity = self.identity();
        let archives: Vec<ArchiveId> = ledger
            .patient_archives(patient, ARCHIVES_MAX)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|(_, a)| a.custodian == identity)
            .map(|(id, _)| id)
            .collect();
        let mut n = 0;
        for id in archives {
            let Some(archive) = ledger.archive(&id).map_err(|e| e.to_string())? else {
                continue;
            };
            let key = self
                .unwrap_own(&archive.key_for_custodian, &id)
                .map_err(|e| format!("archive {id}: {e}"))?;
            let wrapped = cradle_ledger::keywrap::wrap_key(&key, &id, &record.x25519)
                .map_err(|e| e.to_string())?;
            let me = self.public_key();
            let committed = ledger.last_nonce(&me).map_err(|e| e.to_string())?;
            let tx = Transaction {
                chain_id: self.consortium().chain_id,
                signer: me,
                nonce: self.next_nonce(committed),
                body: TxBody::RewrapForPatient(RewrapForPatient {
                    archive: id,
                    key_for_patient: wrapped,
                }),
            }
            .sign(&self.key);
            match self.submitter.submit_own_and_wait(tx).await {
                Ok(_) => n += 1,
                Err(WaitError::Rejected { reason, .. }) => {
                    debug!(archive = %id, %reason, "re-wrap refused");
                }
                Err(e) => return Err(format!("archive {id}: {e}")),
            }
        }
        Ok(n)
    }
}
