//! Break-glass justifications on the client: sealed by the clinician's client for the patient
//! and every regulator before the request is signed, and opened by them in their audits.
//!
//! The ledger holds only the sealed form ([`cradle_ledger::justification`]). A reader's client
//! fetches the access record of an emergency access (`GET /v1/txs/{hash}`), checks that it is
//! the transaction and the request the audit event names (their hashes are in the event, which
//! `--verify` proves from genesis), and opens the justification with the reader's own key.
//! Everyone else learns only that one exists.

use std::collections::BTreeMap;

use cradle_ledger::access::AccessRequest;
use cradle_ledger::audit::IndexedEvent;
use cradle_ledger::codec;
use cradle_ledger::justification::{self, SealedJustification};
use cradle_ledger::tx::{Purpose, SignedTransaction, TxBody};
use cradle_ledger::{Digest32, Error as LedgerError, Keypair, PublicKey, X25519Public};
use serde::Serialize;

use super::{ClientError, Session, bad_answer};
use crate::api::{ApiClient, ApiError};

/// What a justification is to the one reading an audit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "text", rename_all = "snake_case")]
pub enum JustificationView {
    /// Opened with the reader's key: the text.
    Read(String),
    /// Sealed for the patient and the regulators, not for this reader.
    Sealed,
    /// Sealed for this reader but it does not open (the accessor's client sealed it wrongly,
    /// or moved it from another request), or the node's copy of the record is not the one the
    /// log names.
    Unreadable(String),
    /// The node would not show this reader the access record that carries it.
    Unavailable(String),
}

impl JustificationView {
    /// One line for a table or a FHIR text.
    pub fn display(&self) -> String {
        match self {
            JustificationView::Read(text) => text.clone(),
            JustificationView::Sealed => "(sealed for the patient and the regulators)".into(),
            JustificationView::Unreadable(why) => format!("(unreadable: {why})"),
            JustificationView::Unavailable(why) => format!("(not shown by this node: {why})"),
        }
    }
}

impl Session {
    /// Who a justification for `patient`'s archive is sealed for: her X25519 key (from the
    /// ledger, as the node reports it) and every regulator's (from the genesis this client
    /// trusts). The ledger checks the readers itself and denies a justification sealed for
    /// anyone else.
    pub fn justification_readers(
        &self,
        patient: &PublicKey,
    ) -> Result<Vec<X25519Public>, ClientError> {
        let mut readers = vec![self.patient(patient)?.x25519];
        for m in self.members()? {
            if m.role == "regulator" && !readers.contains(&m.x25519_public) {
                readers.push(m.x25519_public);
            }
        }
        Ok(readers)
    }
}

/// Seals `text` into `request` for `readers`, bound to the request; call before signing it.
pub fn seal_into(
    request: &mut AccessRequest,
    chain_id: &[u8; 32],
    text: &str,
    readers: &[X25519Public],
) -> Result<(), ClientError> {
    if request.purpose != Purpose::EmergencyTreat {
        return Err(ClientError::Invalid(
            "a justification is for emergency access only (--purpose ETREAT)".into(),
        ));
    }
    let context = request.justification_context(chain_id);
    request.justification = Some(justification::seal(text, &context, readers).map_err(
        |e| match e {
            LedgerError::TooLarge { max, .. } => {
                ClientError::Invalid(format!("the justification is longer than {max} bytes"))
            }
            other => ClientError::Ledger(other),
        },
    )?);
    Ok(())
}

/// The justification of every emergency access among `events`, as `me` can see it, by the
/// hash of its access record. Events of other purposes carry none and are left out.
pub fn read_justifications(
    api: &ApiClient,
    me: &Keypair,
    chain_id: &[u8; 32],
    events: &[IndexedEvent],
) -> Result<BTreeMap<Digest32, JustificationView>, ClientError> {
    let mut out = BTreeMap::new();
    for ie in events {
        let e = &ie.event;
        if e.purpose != Purpose::EmergencyTreat || out.contains_key(&e.tx_hash) {
            continue;
        }
        let (sealed, request) = match access_record(api, &e.tx_hash, &e.request_hash) {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            // A node may keep transactions from some readers: the audit still stands, without
            // the text.
            Err(ClientError::Api(ApiError::Refused {
                status: 401 | 403,
                reason,
                ..
            })) => {
                out.insert(e.tx_hash, JustificationView::Unavailable(reason));
                continue;
            }
            Err(e) => return Err(e),
        };
        let context = request.justification_context(chain_id);
        let view = if !sealed.is_for(&me.x25519_public()) {
            JustificationView::Sealed
        } else {
            match justification::open(&sealed, &context, me) {
                Ok(text) => JustificationView::Read(text),
                Err(e) => JustificationView::Unreadable(e.to_string()),
            }
        };
        out.insert(e.tx_hash, view);
    }
    Ok(out)
}

/// The sealed justification and request of access record `tx_hash`, checked against the hashes
/// the log holds for it; `None` when the request carries no justification.
fn access_record(
    api: &ApiClient,
    tx_hash: &Digest32,
    request_hash: &Digest32,
) -> Result<Option<(SealedJustification, AccessRequest)>, ClientError> {
    let v = api.get_json(&format!("/v1/txs/{}", tx_hash.to_hex()))?;
    let tx = v
        .get("tx")
        .cloned()
        .ok_or_else(|| bad_answer("transaction"))?;
    let stx: SignedTransaction =
        serde_json::from_value(tx).map_err(|_| bad_answer("transaction"))?;
    if stx.hash() != tx_hash.0 {
        return Err(ClientError::Invalid(format!(
            "the node's transaction {} is not the one the access log names",
            tx_hash.to_hex()
        )));
    }
    let TxBody::RecordAccess(record) = stx.tx.body else {
        return Err(bad_answer("access record"));
    };
    if cradle_ledger::crypto::sha256(&codec::encode(&record.request)) != request_hash.0 {
        return Err(ClientError::Invalid(format!(
            "the access request in transaction {} is not the one the access log names",
            tx_hash.to_hex()
        )));
    }
    let request = record.request.request;
    Ok(request
        .justification
        .clone()
        .map(|sealed| (sealed, request)))
}
