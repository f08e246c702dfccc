//! Transactions: submit one (optionally waiting for its commit receipt) or a batch, look up a
//! committed one, and a signer's last committed nonce.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use cradle_ledger::PublicKey;
use cradle_ledger::contract::{SubmitAnswer, TX_BATCH_BYTES_MAX, TxBatch};
use cradle_ledger::state::StateExt;
use serde::Deserialize;
use serde_json::json;

use super::policy::{self, Caller};
use super::{HttpError, HttpResult, HttpState, hex32};
use crate::driver::SubmitError;

#[derive(Deserialize)]
pub struct SubmitQuery {
    /// `commit`: answer only once the transaction is in a committed block.
    wait: Option<String>,
}

/// `POST /v1/txs[?wait=commit]`: one encoded signed transaction. 202 with its hash; with
/// `wait=commit`, 200 with its height and index once committed, or 409 with the ledger's reason
/// the moment it is dropped.
pub async fn submit(
    State(state): State<Arc<HttpState>>,
    Query(q): Query<SubmitQuery>,
    body: Bytes,
) -> HttpResult {
    let wait = match q.wait.as_deref() {
        None => false,
        Some("commit") => true,
        Some(other) => {
            return Err(HttpError::bad(format!(
                "unknown wait mode {other:?}: use commit"
            )));
        }
    };
    if !wait {
        let hash = state.submitter.submit(body.to_vec()).await?;
        let answer = SubmitAnswer {
            hash: hex::encode(hash),
            height: None,
            index: None,
        };
        return Ok((StatusCode::ACCEPTED, axum::Json(answer)).into_response());
    }
    let committed = state.submitter.submit_and_wait(body.to_vec()).await?;
    Ok(axum::Json(SubmitAnswer {
        hash: hex::encode(committed.hash),
        height: Some(committed.height),
        index: Some(committed.index),
    })
    .into_response())
}

/// `POST /v1/txs/batch`: a borsh `Vec<Vec<u8>>` of encoded transactions behind the version byte.
/// Each is checked and admitted on its own; the answer lists, in order, a hash or an error
/// with its code.
pub async fn submit_batch(State(state): State<Arc<HttpState>>, body: Bytes) -> HttpResult {
    // Refused whole, before any signature work, while half a second of commits is already
    // pending: the excess waits at its sender (Retry-After), not in seconds of queue here.
    if state.metrics.backlogged.load(Ordering::Relaxed) == 1 {
        return Err(SubmitError::Busy.into());
    }
    let batch = decode_batch(&body)?;
    let answers: Vec<_> = state
        .submitter
        .submit_batch(batch.into_inner())
        .await?
        .into_iter()
        .map(|answer| match answer {
            Ok(hash) => json!({ "hash": hex::encode(hash) }),
            Err(e) => {
                let error = e.to_string();
                let code = HttpError::from(e).code();
                json!({ "error": error, "code": code.as_str() })
            }
        })
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "results": answers })),
    )
        .into_response())
}

/// The body of `POST /v1/txs/batch`: bounded, versioned, no trailing bytes; each transaction is
/// decoded and checked later, on its own.
pub fn decode_batch(body: &[u8]) -> Result<TxBatch, HttpError> {
    cradle_ledger::codec::decode(body, TX_BATCH_BYTES_MAX)
        .map_err(|e| HttpError::bad(format!("invalid batch: {e}")))
}

/// `GET /v1/txs/{hash}`: a committed transaction, its height and index; to members and
/// regulators, and to a patient the record of an access to one of her archives (which carries
/// the sealed justification of an emergency access).
pub async fn get(
    State(state): State<Arc<HttpState>>,
    Path(hash): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let hash = hex32(&hash, "transaction hash")?;
    let location = state
        .store
        .tx_location(&hash)
        .map_err(HttpError::internal)?;
    let Some((height, index)) = location else {
        // A patient learns nothing of transactions that are not about her.
        policy::members(&caller)?;
        return Err(HttpError::not_found("no such committed transaction"));
    };
    let fb = state
        .store
        .block(height)
        .map_err(HttpError::internal)?
        .ok_or_else(|| HttpError::internal("indexed block missing"))?;
    let tx = usize::try_from(index)
        .ok()
        .and_then(|i| fb.block.txs.get(i))
        .ok_or_else(|| HttpError::internal("indexed transaction missing"))?;
    let about = match &tx.tx.body {
        cradle_ledger::tx::TxBody::RecordAccess(r) => state
            .store
            .archive(&r.request.request.archive)
            .map_err(HttpError::internal)?
            .map(|a| a.patient),
        _ => None,
    };
    policy::transaction(&caller, about.as_ref())?;
    Ok(axum::Json(json!({
        "hash": hex::encode(hash),
        "height": height,
        "index": index,
        "kind": tx.tx.body.kind(),
        "tx": tx,
    }))
    .into_response())
}

/// `GET /v1/nonce/{public key}`: a signer's last committed nonce; to the key itself, members
/// and regulators.
pub async fn nonce(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    let key = PublicKey(hex32(&key, "public key")?);
    // A patient's later key is hers: she asks as the patient she enrolled as.
    let owner: Option<PublicKey> = state
        .store
        .record(&cradle_ledger::state::keys::patient_alias(&key))
        .map_err(HttpError::internal)?;
    policy::nonce(&caller, &owner.unwrap_or(key))?;
    let last = state.store.last_nonce(&key).map_err(HttpError::internal)?;
    Ok(axum::Json(json!({ "public_key": key, "last_nonce": last })).into_response())
}
