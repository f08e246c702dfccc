//! Storing an archive: only this node's own institution, or one of its active clinicians on its
//! behalf, uploads, and the ciphertext streams to disk, checked against the hash its signed
//! request named, without being held in memory.

use bytes::Bytes;
use cradle_ledger::state::StateExt;
use cradle_ledger::{Hash, PublicKey};
use futures::{Stream, StreamExt};
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::Custodian;
use super::store::ArchiveStoreError;

/// Why an upload was not stored. Nothing is stored when it fails.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{name} is not this node's member: upload to your own institution's node")]
    OtherMember { name: String },
    #[error("uploads are accepted only from consortium members and their active clinicians")]
    NotMember,
    #[error("a clinician of {name} uploads to {name}'s node")]
    OtherInstitution { name: String },
    #[error("the clinician is suspended, retired or rotated out")]
    StaffNotActive,
    #[error("the ledger cannot be read right now: {0}")]
    Ledger(String),
    #[error(transparent)]
    Store(#[from] ArchiveStoreError),
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error("the archive writer stopped: {0}")]
    Writer(String),
}

impl Custodian {
    /// Why `signer` may not upload to this node, if it may not: it must be this node's member
    /// or one of its active clinicians.
    fn upload_refusal(&self, signer: &PublicKey) -> Result<Option<UploadError>, UploadError> {
        if *signer == self.public_key() {
            return Ok(None);
        }
        if let Some(m) = self.consortium().signer(signer) {
            return Ok(Some(UploadError::OtherMember {
                name: m.name.clone(),
            }));
        }
        let staff = self
            .ledger
            .staff(signer)
            .map_err(|e| UploadError::Ledger(e.to_string()))?;
        Ok(match staff {
            None => Some(UploadError::NotMember),
            Some(s) if s.institution != self.identity() => Some(UploadError::OtherInstitution {
                name: self.member_name(&s.institution),
            }),
            Some(s) if !s.is_active() => Some(UploadError::StaffNotActive),
            Some(_) => None,
        })
    }

    /// Stores the ciphertext `body` of `len` bytes that must hash to `expected`, uploaded by
    /// `signer` (already authenticated). Returns whether it was new to the store.
    pub async fn upload<S, E>(
        &self,
        signer: PublicKey,
        expected: Hash,
        len: u64,
        mut body: S,
    ) -> Result<bool, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if let Some(refusal) = self.upload_refusal(&signer)? {
            warn!(signer = %signer, "archive upload refused: {refusal}");
            return Err(refusal);
        }
        let admitted = self.archives.admit(len);
        self.metrics
            .archive_disk_free_bytes
            .store(self.archives.disk_free_bytes(), Ordering::Relaxed);
        if let Err(e) = admitted {
            if matches!(e, ArchiveStoreError::DiskReserve { .. }) {
                self.metrics
                    .uploads_refused_disk
                    .fetch_add(1, Ordering::Relaxed);
            }
            warn!(signer = %signer, "archive upload refused: {e}");
            return Err(e.into());
        }
        // Object storage that cannot be reached refuses the upload now, before its body is
        // asked for, rather than cutting it midway.
        if let Err(e) = tokio::task::block_in_place(|| self.archives.reachable(&expected)) {
            warn!(signer = %signer, "archive upload refused: {e}");
            return Err(e.into());
        }

        // The disk work runs on a blocking thread; a short channel keeps at most a few pieces
        // in memory.
        let (pieces, mut rx) = mpsc::channel::<Bytes>(8);
        let store = self.archives.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let mut upload = store.begin(expected, len)?;
            while let Some(piece) = rx.blocking_recv() {
                upload.write(&piece)?;
            }
            upload.finish()
        });
        let mut interrupted = None;
        while let Some(piece) = body.next().await {
            match piece {
                Ok(piece) => {
                    if pieces.send(piece).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    interrupted = Some(e.to_string());
                    break;
                }
            }
        }
        drop(pieces);
        let stored = writer
            .await
            .map_err(|e| UploadError::Writer(e.to_string()))?;
        if let Some(reason) = interrupted {
            return Err(UploadError::Interrupted(reason));
        }
        let new = stored?;
        info!(sha256 = %hex::encode(expected), bytes = len, new, "archive stored");
        Ok(new)
    }
}
