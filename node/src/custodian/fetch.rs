//! Log before release. [`Custodian::fetch`] reads top to bottom: authenticate the access
//! request, find the archive and the ciphertext, decide on committed state, build and sign the
//! access record, submit it and await its commit receipt, then hand back a verified reader (or
//! the refusal). Not a byte of ciphertext is handed out before the record is committed.

use std::sync::atomic::Ordering;

use cradle_ledger::access::{self, AccessOutcome, Decision, DenialReason, SignedAccessRequest};
use cradle_ledger::rules::decide_access;
use cradle_ledger::staff::StaffRecord;
use cradle_ledger::state::{ArchiveRecord, StateExt};
use cradle_ledger::tx::{RecordAccess, Transaction, TxBody, WrappedKey};
use cradle_ledger::{ArchiveId, Hash, PublicKey};
use tracing::{info, warn};

use super::Custodian;
use super::store::{ObjectReader, VerifiedReader};
use crate::submit::WaitError;

/// Times an access record is signed and submitted before the fetch gives up: again only when
/// the ledger refused it for its nonce alone.
const RECORD_ATTEMPTS_MAX: u32 = 3;
use cradle_genesis::clock::now_ms;

/// A fetch whose access record is committed.
pub enum FetchOutcome {
    /// The record says permitted or break-glass: here is the ciphertext.
    Released(Box<Released>),
    /// The record says denied, with the rule's reason.
    Denied {
        reason: DenialReason,
        access_tx: Hash,
        height: u64,
    },
}

/// What a released fetch hands back.
pub struct Released {
    /// The ciphertext, checked against the ledger's hash as it is read.
    pub reader: VerifiedReader,
    pub len: u64,
    pub ciphertext_sha256: Hash,
    /// The committed access record and where.
    pub access_tx: Hash,
    pub height: u64,
    /// `permitted` or `break_glass`.
    pub outcome: &'static str,
    /// The archive key, wrapped for the accessor.
    pub wrapped_key: WrappedKey,
}

/// Why nothing was recorded and nothing released.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("invalid access request: {0}")]
    Malformed(String),
    #[error("the access request is not the signer's own")]
    NotOwnRequest,
    #[error("the access request names another archive")]
    OtherArchive,
    #[error("bad access request signature")]
    BadSignature,
    #[error(
        "only clinicians, member institutions and the archive's patient may ask for an archive"
    )]
    NotEntitled,
    #[error("the clinician is suspended, retired or rotated out")]
    StaffNotActive,
    #[error("no such archive on the ledger")]
    NoSuchArchive,
    #[error("this node does not hold the archive: ask {holder}'s node")]
    NotHeld { holder: String },
    #[error("the custodian does not hold this archive's ciphertext; nothing was recorded")]
    CiphertextMissing,
    #[error("the custodian's copy of this archive is damaged; nothing was recorded")]
    Damaged,
    #[error(
        "the access request was made at {requested_at_ms} ms, more than {ttl_ms} ms from now: sign a new one"
    )]
    Stale { requested_at_ms: u64, ttl_ms: u64 },
    #[error("this access request was already recorded: sign a new one")]
    AlreadyRecorded,
    #[error(
        "too many denied requests from this key for this patient's records; nothing was recorded: retry in {retry_after_ms} ms"
    )]
    TooManyDenials { retry_after_ms: u64 },
    #[error("the ledger refused the access record, nothing was released: {reason}")]
    Refused { reason: String },
    #[error("could not record the access right now; nothing was released: retry")]
    NotRecorded,
    #[error("the access record was not committed within the wait; nothing was released")]
    Timeout,
    #[error("{0}")]
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> FetchError {
    FetchError::Internal(e.to_string())
}

impl Custodian {
    /// Records `signer`'s access to `archive_id` (the body is its encoded signed access request),
    /// waits for the record's commit, and hands back what the record allows. A denial is
    /// recorded only when `may_deny` (asked with the archive's patient) has room for it; else
    /// it names the milliseconds until it has, and nothing is recorded.
    pub async fn fetch(
        &self,
        archive_id: ArchiveId,
        signer: PublicKey,
        body: &[u8],
        may_deny: impl FnOnce(&PublicKey) -> Option<u64>,
    ) -> Result<FetchOutcome, FetchError> {
        let request = self.authenticate(archive_id, signer, body)?;
        let staff = self.entitled(&archive_id, &signer)?;
        let (archive, file, len) = self.held_archive(&archive_id)?;
        let decision = self.decide(&archive, &request)?;
        let (outcome, wrapped_key) =
            self.outcome_of(&decision, &archive, &archive_id, staff.as_ref())?;
        let label = outcome_label(&outcome);
        let denial = match &outcome {
            AccessOutcome::Denied { reason } => Some(*reason),
            _ => None,
        };
        if denial.is_some()
            && let Some(retry_after_ms) = may_deny(&archive.patient)
        {
            return Err(FetchError::TooManyDenials { retry_after_ms });
        }
        let record = RecordAccess {
            grant: decision.grant(),
            request,
            outcome,
        };
        let accessor = record.request.request.accessor;
        let purpose = record.request.request.purpose;
        let committed = self.record(record).await?;
        info!(
            archive = %archive_id,
            %accessor,
            %purpose,
            outcome = label,
            height = committed.height,
            "access recorded"
        );
        if let Some(reason) = denial {
            return Ok(FetchOutcome::Denied {
                reason,
                access_tx: committed.hash,
                height: committed.height,
            });
        }
        let wrapped_key = wrapped_key
            .ok_or_else(|| internal("permitted access without a wrapped key for the accessor"))?;
        Ok(FetchOutcome::Released(Box::new(Released {
            reader: VerifiedReader::new(file, len, archive.ciphertext_sha256),
            len,
            ciphertext_sha256: archive.ciphertext_sha256,
            access_tx: committed.hash,
            height: committed.height,
            outcome: label,
            wrapped_key,
        })))
    }

    /// The access request is well formed, the signer's own, for this archive, and signed.
    fn authenticate(
        &self,
        archive_id: ArchiveId,
        signer: PublicKey,
        body: &[u8],
    ) -> Result<SignedAccessRequest, FetchError> {
        let request =
            SignedAccessRequest::decode(body).map_err(|e| FetchError::Malformed(e.to_string()))?;
        if request.request.accessor != signer {
            return Err(FetchError::NotOwnRequest);
        }
        if request.request.archive != archive_id {
            return Err(FetchError::OtherArchive);
        }
        request
            .verify(&self.consortium().chain_id)
            .map_err(|_| FetchError::BadSignature)?;
        Ok(request)
    }

    /// Only a party that could be entitled — an active clinician, a member institution, or the
    /// archive's own patient — has its access recorded. A stranger's request, or one from a
    /// clinician no longer active (whom no institution answers for any more), is refused and
    /// counted here, off the ledger, so no one can fill a mother's history with noise; the
    /// refusal is the same whether or not the archive exists.
    /// Returns the clinician's record when a clinician asks, for the key re-wrapped for her.
    fn entitled(
        &self,
        archive_id: &ArchiveId,
        signer: &PublicKey,
    ) -> Result<Option<StaffRecord>, FetchError> {
        if self.consortium().signer(signer).is_some() {
            return Ok(None);
        }
        if let Some(staff) = self.ledger.staff(signer).map_err(internal)? {
            if staff.is_active() {
                return Ok(Some(staff));
            }
            self.metrics
                .fetches_refused_strangers
                .fetch_add(1, Ordering::Relaxed);
            return Err(FetchError::StaffNotActive);
        }
        let patient = self
            .ledger
            .archive(archive_id)
            .map_err(internal)?
            .map(|a| a.patient);
        // The patient signs with her current key, which may be one she got after her
        // enrolment; a key she rotated away from is no one's now.
        let signs_for = self
            .ledger
            .patient_by_key(signer)
            .map_err(internal)?
            .and_then(|(identity, _, current)| current.then_some(identity));
        if patient.is_some() && patient == signs_for {
            return Ok(None);
        }
        self.metrics
            .fetches_refused_strangers
            .fetch_add(1, Ordering::Relaxed);
        Err(FetchError::NotEntitled)
    }

    /// The archive's ledger record, and its ciphertext in this node's store with the right
    /// length: an access is recorded only for what can then be served.
    fn held_archive(
        &self,
        id: &ArchiveId,
    ) -> Result<(ArchiveRecord, ObjectReader, u64), FetchError> {
        let archive = self
            .ledger
            .archive(id)
            .map_err(internal)?
            .ok_or(FetchError::NoSuchArchive)?;
        if archive.custodian != self.identity() {
            return Err(FetchError::NotHeld {
                holder: self.member_name(&archive.custodian),
            });
        }
        // Opening an object in a bucket is a request: this worker thread may block on it.
        let (file, len) =
            tokio::task::block_in_place(|| self.archives.open_object(&archive.ciphertext_sha256))
                .map_err(internal)?
                .ok_or(FetchError::CiphertextMissing)?;
        if len != archive.size_bytes {
            warn!(archive = %id, stored = len, registered = archive.size_bytes, "stored archive has the wrong length");
            return Err(FetchError::Damaged);
        }
        Ok((archive, file, len))
    }

    /// The ledger's own decision, with its checks, on committed state at the time the next
    /// block will carry: what it would refuse to record is refused here, at once.
    fn decide(
        &self,
        archive: &ArchiveRecord,
        request: &SignedAccessRequest,
    ) -> Result<Decision, FetchError> {
        let tip_time = self
            .ledger
            .tip()
            .map_err(internal)?
            .map_or(0, |t| t.time_ms);
        // The block that records this access carries a time after the tip's, and validators
        // refuse one far ahead of their clocks: the ledger decides at that time, so this node
        // decides at its own clock held within that window. A node whose clock is wrong then
        // decides as the chain will, at the chain's time, not at its own.
        let first = tip_time.saturating_add(1);
        let at = now_ms().clamp(first, first.saturating_add(self.block_time_lead_ms));
        match decide_access(
            &*self.ledger,
            &self.consortium(),
            archive,
            &request.request,
            at,
        ) {
            Ok(d) => Ok(d),
            Err(cradle_ledger::Error::StaleRequest {
                requested_at_ms, ..
            }) => Err(FetchError::Stale {
                requested_at_ms,
                ttl_ms: self.consortium().policy.access_request_ttl_ms,
            }),
            Err(cradle_ledger::Error::RequestReplayed) => Err(FetchError::AlreadyRecorded),
            Err(e) => Err(internal(e)),
        }
    }

    /// The record's outcome, and the archive key wrapped for the accessor when it may read.
    ///
    /// A clinician holds no key of her institution's: the custodian opens its own wrapped copy
    /// of the archive key and wraps it for her X25519 key, inside the access record, whether she
    /// reads under a grant, as the custodian's own clinician, or by breaking the glass. The
    /// institution's secret key never leaves its node, and the ledger shows which person got
    /// the key with which access. The patient reads with the key wrapped for her at
    /// registration.
    fn outcome_of(
        &self,
        decision: &Decision,
        archive: &ArchiveRecord,
        archive_id: &ArchiveId,
        staff: Option<&StaffRecord>,
    ) -> Result<(AccessOutcome, Option<WrappedKey>), FetchError> {
        match decision {
            Decision::Permitted(access::Basis::Patient) => Ok((
                AccessOutcome::Permitted {
                    key_for_accessor: None,
                },
                Some(archive.key_for_patient),
            )),
            Decision::Permitted(_) => {
                let key = self.rewrap_for_clinician(archive, archive_id, staff)?;
                Ok((
                    AccessOutcome::Permitted {
                        key_for_accessor: Some(key),
                    },
                    Some(key),
                ))
            }
            Decision::Denied(reason) => Ok((AccessOutcome::Denied { reason: *reason }, None)),
            Decision::BreakGlass => {
                let key = self.rewrap_for_clinician(archive, archive_id, staff)?;
                Ok((
                    AccessOutcome::BreakGlass {
                        key_for_accessor: key,
                    },
                    Some(key),
                ))
            }
        }
    }

    /// The archive key, opened from the custodian's copy and wrapped for the clinician who asked.
    fn rewrap_for_clinician(
        &self,
        archive: &ArchiveRecord,
        archive_id: &ArchiveId,
        staff: Option<&StaffRecord>,
    ) -> Result<WrappedKey, FetchError> {
        let staff =
            staff.ok_or_else(|| internal("a read permitted to a key that is no clinician's"))?;
        let key = self
            .unwrap_own(&archive.key_for_custodian, archive_id)
            .map_err(|e| internal(format!("custodian key unwrap: {e}")))?;
        cradle_ledger::keywrap::wrap_key(&key, archive_id, &staff.x25519).map_err(internal)
    }

    /// Signs the access record as custodian, submits it, and waits for its receipt.
    async fn record(&self, record: RecordAccess) -> Result<crate::submit::Committed, FetchError> {
        let me = self.public_key();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let committed_nonce = self.ledger.last_nonce(&me).map_err(internal)?;
            let tx = Transaction {
                chain_id: self.consortium().chain_id,
                signer: me,
                nonce: self.next_nonce(committed_nonce),
                body: TxBody::RecordAccess(record.clone()),
            }
            .sign(&self.key);
            match self.submitter.submit_own_and_wait(tx).await {
                // Concurrent fetches each take a nonce; gossip may bring a later one to a
                // proposer first, which makes the earlier stale. Nothing was released: the
                // same record is signed again with a fresh nonce.
                Err(WaitError::Rejected {
                    stale_nonce: true, ..
                }) if attempts < RECORD_ATTEMPTS_MAX => continue,
                other => return Self::recorded(other),
            }
        }
    }

    fn recorded(
        result: Result<crate::submit::Committed, WaitError>,
    ) -> Result<crate::submit::Committed, FetchError> {
        match result {
            Ok(committed) => Ok(committed),
            Err(WaitError::Rejected { reason, .. }) => Err(FetchError::Refused { reason }),
            Err(WaitError::Timeout { .. }) => Err(FetchError::Timeout),
            Err(WaitError::Submit(e)) => {
                warn!(reason = %e, "could not submit an access record");
                Err(FetchError::NotRecorded)
            }
        }
    }
}

fn outcome_label(o: &AccessOutcome) -> &'static str {
    match o {
        AccessOutcome::Permitted { .. } => "permitted",
        AccessOutcome::Denied { .. } => "denied",
        AccessOutcome::BreakGlass { .. } => "break_glass",
    }
}
