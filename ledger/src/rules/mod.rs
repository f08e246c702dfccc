//! The transaction rules: what each transaction may do to state, and what it writes.
//!
//! `apply_tx` checks what every transaction must pass (chain, size, nonce), then hands the body
//! to the rule of its kind, one module each: `enrol`, `archive`, `consent` (grants and
//! revocations), `access` (access records, and [`decide_access`], which a custodian also asks
//! before it records an access) `staff` (clinicians) and `review` (regulators' reviews of break-glass accesses). Pure and deterministic: the outcome depends only on state, the
//! consortium and the block's height and time. Signatures are not checked here; the block
//! pipeline ([`crate::block`]) checks them before it applies anything.

mod access;
mod archive;
mod consent;
mod enrol;
mod governance;
mod patient_keys;
mod review;
mod staff;

use std::collections::BTreeSet;

use crate::access::LoggedEvent;
use crate::crypto::{Hash, PublicKey};
use crate::error::Error;
use crate::identity::Consortium;
use crate::state::{Overlay, StateExt, StateReader, keys};
use crate::tx::{self, SignedTransaction, TxBody};

pub use access::{accessor_of, decide_access, justification_readers};
pub(crate) use governance::{activate, check_in_force};

/// Most unrevoked grants one patient may hold open at once.
pub const OPEN_GRANTS_MAX: u32 = tx::GRANT_KEYS_MAX as u32;

/// The block a transaction is applied in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockContext {
    pub height: u64,
    pub time_ms: u64,
}

/// Applies one transaction's rules on top of `state`; `len` is the length of its canonical
/// encoding and `tx_hash` its hash, which the caller has already computed. Its signature must
/// already have been checked. On error the overlay and `events` are as they were before.
pub(crate) fn apply_tx<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    consortium: &Consortium,
    ctx: BlockContext,
    stx: &SignedTransaction,
    len: usize,
    tx_hash: &Hash,
    events: &mut Vec<LoggedEvent>,
) -> Result<(), Error> {
    state.begin();
    let mark = events.len();
    let result = dispatch(state, consortium, ctx, stx, len, tx_hash, events);
    if result.is_err() {
        state.rollback();
        events.truncate(mark);
    }
    result
}

/// The checks every transaction must pass, then the rule of its kind, then its nonce.
fn dispatch<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    stx: &SignedTransaction,
    len: usize,
    tx_hash: &Hash,
    events: &mut Vec<LoggedEvent>,
) -> Result<(), Error> {
    let tx = &stx.tx;
    if tx.chain_id != c.chain_id {
        return Err(Error::WrongChain);
    }
    let max = c.limits.tx_bytes_max as usize;
    if len > max {
        return Err(Error::TooLarge { len, max });
    }
    if let Some(last) = state.last_nonce(&tx.signer)?
        && tx.nonce <= last
    {
        return Err(Error::StaleNonce {
            got: tx.nonce,
            last,
        });
    }
    // Nonces follow the clock in microseconds; one far beyond the block's time would let a
    // signer (or a thief of its key) exhaust the key's nonces for good.
    let horizon = ctx
        .time_ms
        .saturating_mul(1_000)
        .saturating_add(crate::tx::NONCE_AHEAD_MAX_US);
    if tx.nonce > horizon {
        return Err(Error::NonceTooFar {
            got: tx.nonce,
            max: horizon,
        });
    }
    // A patient signs with her current key, and acts as the patient she enrolled as; a
    // member signs with its current key, and acts as the member its records name.
    let signer = match &tx.body {
        TxBody::GrantConsent(_) | TxBody::RevokeConsent(_) | TxBody::RotatePatientKey(_) => {
            patient_keys::acting_patient(&*state, &tx.signer)?
        }
        _ => acting_member(c, &tx.signer)?,
    };
    match &tx.body {
        TxBody::EnrolPatient(b) => enrol::enrol_patient(state, c, ctx, &signer, b)?,
        TxBody::RegisterArchive(b) => archive::register_archive(state, c, ctx, &signer, b)?,
        TxBody::GrantConsent(b) => consent::grant_consent(state, c, ctx, &signer, tx.nonce, b)?,
        TxBody::RevokeConsent(b) => consent::revoke_consent(state, ctx, &signer, b)?,
        TxBody::RecordAccess(b) => {
            access::record_access(state, c, ctx, &signer, tx_hash, b, events)?
        }
        TxBody::RegisterStaff(b) => staff::register_staff(state, c, ctx, &signer, b)?,
        TxBody::SetStaffStatus(b) => staff::set_staff_status(state, ctx, &signer, b)?,
        TxBody::RotateStaffKey(b) => staff::rotate_staff_key(state, c, ctx, &signer, b)?,
        TxBody::ProposeChange(b) => {
            governance::propose_change(state, c, ctx, &signer, tx.nonce, b)?
        }
        TxBody::ApproveChange(b) => governance::approve_change(state, c, ctx, &signer, b)?,
        TxBody::RotatePatientKey(b) => {
            let by = patient_keys::Signed {
                tx_hash,
                key: &tx.signer,
            };
            patient_keys::rotate(state, c, ctx, &signer, by, b, events)?
        }
        TxBody::RecoverPatient(b) => {
            patient_keys::recover(state, c, ctx, &signer, tx_hash, b, events)?
        }
        TxBody::RewrapForPatient(b) => patient_keys::rewrap(state, &signer, b)?,
        TxBody::ReviewAccess(b) => {
            review::review_access(state, c, ctx, &signer, tx_hash, b, events)?
        }
    }
    state.put(keys::nonce(&tx.signer), &tx.nonce);
    Ok(())
}

/// The member a transaction signed by `key` acts as: its identity, when `key` is the key that
/// signs for it now; `key` itself when it is no member's (the rule of the transaction decides);
/// refused when it is a member's identity that a rotation retired as a signer.
fn acting_member(c: &Consortium, key: &PublicKey) -> Result<PublicKey, Error> {
    match c.signer(key) {
        Some(m) => Ok(m.public_key),
        None if c.member(key).is_some() => Err(Error::KeyRotatedOut(*key)),
        None => Ok(*key),
    }
}

/// The signer must be a member whose role provides care.
fn care_provider(c: &Consortium, signer: &PublicKey, action: &'static str) -> Result<(), Error> {
    match c.member(signer) {
        Some(m) if m.role.provides_care() => Ok(()),
        _ => Err(Error::NotAuthorized {
            action,
            signer: *signer,
        }),
    }
}

/// Wrapped keys must go to each of `required` exactly once and to nothing else: a grantee
/// without its key could not read, and a key for anyone else would leak the archive.
fn exactly_once<T: Ord + Copy + std::fmt::Display>(
    given: impl Iterator<Item = T>,
    required: &BTreeSet<T>,
    what: &str,
    unexpected: fn(T) -> Error,
    missing: fn(T) -> Error,
) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for item in given {
        if !seen.insert(item) {
            return Err(Error::Duplicate(format!("{what} {item}")));
        }
        if !required.contains(&item) {
            return Err(unexpected(item));
        }
    }
    match required.difference(&seen).next() {
        Some(m) => Err(missing(*m)),
        None => Ok(()),
    }
}
