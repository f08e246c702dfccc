//! Archive endpoints.
//!
//! | method and path | who | what |
//! |---|---|---|
//! | `PUT /v1/archives/{ciphertext_sha256}` | this node's member, signed | stores an encrypted archive |
//! | `POST /v1/archives/{archive_id}/fetch` | the accessor, signed | records the access, then streams the ciphertext or answers 403 |
//!
//! A fetch evaluates the access rule on committed state, submits the access record signed by
//! this custodian, waits until it is committed, and only then streams. The ledger reads a client
//! needs around these are in [`super::records`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use cradle_ledger::access::{self, AccessOutcome, Decision, SignedAccessRequest};
use cradle_ledger::api_request::{AUTH_HEADER, ApiAuthError, SignedApiRequest};
use cradle_ledger::apply::decide_access;
use cradle_ledger::state::StateExt;
use cradle_ledger::tx::{RecordAccess, Transaction, TxBody, WrappedKey};
use cradle_ledger::{ArchiveId, Hash, PublicKey};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::ReplayError;
use super::store::{Piece, VerifiedReader};
use crate::api::{ApiError, ApiResult, ApiState, hex32, submit_bytes, wait_for_commit};
use crate::clock::now_ms;

/// Largest access request body.
const FETCH_BODY_MAX: usize = 4096;

fn unauthorized(e: ApiAuthError) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, e.to_string())
}

/// Checks the signed-request header against this request; returns the signer.
pub(crate) fn authenticate(
    state: &ApiState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body_sha256: &Hash,
) -> Result<PublicKey, ApiError> {
    let value = headers
        .get(AUTH_HEADER)
        .ok_or_else(|| unauthorized(ApiAuthError::Missing))?
        .to_str()
        .map_err(|_| unauthorized(ApiAuthError::Malformed("not ASCII".into())))?;
    let signed = SignedApiRequest::from_header(value)
        .map_err(|e| unauthorized(ApiAuthError::Malformed(e.to_string())))?;
    let now = now_ms();
    signed
        .check(
            &state.consortium.chain_id,
            method,
            path,
            body_sha256,
            now,
            state.request_skew_ms,
        )
        .map_err(unauthorized)?;
    let r = &signed.request;
    let mut replay = state
        .replay
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match replay.check_and_insert(r.signer, r.nonce, now) {
        Ok(()) => Ok(r.signer),
        Err(ReplayError::Replayed) => Err(unauthorized(ApiAuthError::Replayed)),
        Err(ReplayError::Busy) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many signed requests in flight; retry shortly",
        )),
    }
}

pub(crate) fn path_of(uri: &Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}

fn store_error(e: super::ArchiveStoreError) -> ApiError {
    use super::ArchiveStoreError as E;
    match e {
        E::TooLarge { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        E::Full { .. } => ApiError::new(StatusCode::INSUFFICIENT_STORAGE, e.to_string()),
        E::HashMismatch { .. } | E::LengthMismatch { .. } | E::Interrupted(_) => {
            ApiError::bad(e.to_string())
        }
        E::Io { .. } => ApiError::internal(e),
    }
}

/// `PUT /v1/archives/{ciphertext_sha256}`: the body is the ciphertext; the signed request's
/// body hash must be the path's hash. Only this node's own member may upload: the store holds
/// the archives its institution is custodian of.
pub async fn put_archive(
    State(state): State<Arc<ApiState>>,
    Path(hash): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let expected = hex32(&hash, "ciphertext hash")?;
    let signer = authenticate(&state, &headers, "PUT", &path_of(&uri), &expected)?;
    if signer != state.custodian.public_key() {
        let reason = match state.consortium.member(&signer) {
            Some(m) => format!(
                "{} is not this node's member: upload to your own institution's node",
                m.name
            ),
            None => "uploads are accepted only from consortium members".to_string(),
        };
        warn!(signer = %signer, "archive upload refused: {reason}");
        return Err(ApiError::new(StatusCode::FORBIDDEN, reason));
    }
    let len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                "an archive upload needs a Content-Length",
            )
        })?;
    state.archives.admit(len).map_err(store_error)?;

    let (tx, mut rx) = mpsc::channel::<Bytes>(8);
    let store = state.archives.clone();
    let writer = tokio::task::spawn_blocking(move || {
        let mut upload = store.begin(expected, len)?;
        while let Some(piece) = rx.blocking_recv() {
            upload.write(&piece)?;
        }
        upload.finish()
    });
    let mut stream = body.into_data_stream();
    let mut interrupted = None;
    while let Some(piece) = stream.next().await {
        match piece {
            Ok(piece) => {
                if tx.send(piece).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                interrupted = Some(e.to_string());
                break;
            }
        }
    }
    drop(tx);
    let stored = writer.await.map_err(ApiError::internal)?;
    if let Some(reason) = interrupted {
        return Err(ApiError::bad(format!(
            "the upload was interrupted: {reason}"
        )));
    }
    let new = stored.map_err(store_error)?;
    info!(sha256 = %hex::encode(expected), bytes = len, new, "archive stored");
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "ciphertext_sha256": hex::encode(expected),
            "bytes": len,
            "new": new,
        })),
    )
        .into_response())
}

fn outcome_name(o: &AccessOutcome) -> &'static str {
    match o {
        AccessOutcome::Permitted => "permitted",
        AccessOutcome::Denied { .. } => "denied",
        AccessOutcome::BreakGlass { .. } => "break_glass",
    }
}

/// `POST /v1/archives/{archive_id}/fetch`: the body is the accessor's signed access request.
pub async fn fetch_archive(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let archive_id = ArchiveId(hex32(&id, "archive id")?);
    // Read at most the bound, so an oversized body is refused before it is buffered.
    let body = axum::body::to_bytes(body, FETCH_BODY_MAX)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("an access request is at most {FETCH_BODY_MAX} bytes"),
            )
        })?;
    let body_hash = cradle_ledger::crypto::sha256(&body);
    let signer = authenticate(&state, &headers, "POST", &path_of(&uri), &body_hash)?;
    let request: SignedAccessRequest = cradle_ledger::codec::decode(&body, FETCH_BODY_MAX)
        .map_err(|e| ApiError::bad(format!("invalid access request: {e}")))?;
    let req = &request.request;
    if req.accessor != signer {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the access request is not the signer's own",
        ));
    }
    if req.archive != archive_id {
        return Err(ApiError::bad("the access request names another archive"));
    }
    request
        .verify(&state.consortium.chain_id)
        .map_err(|_| ApiError::new(StatusCode::UNAUTHORIZED, "bad access request signature"))?;

    // The rule, on committed state, at the time the next block will carry.
    let store = state.store.clone();
    let custodian = state.custodian.public_key();
    let archive = state
        .store
        .archive(&archive_id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("no such archive on the ledger"))?;
    if archive.custodian != custodian {
        let holder = state
            .consortium
            .member(&archive.custodian)
            .map_or_else(|| archive.custodian.to_string(), |m| m.name.clone());
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!("this node does not hold the archive: ask {holder}'s node"),
        ));
    }
    let object = state
        .archives
        .open_object(&archive.ciphertext_sha256)
        .map_err(ApiError::internal)?;
    let Some((file, len)) = object else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the custodian does not hold this archive's ciphertext; nothing was recorded",
        ));
    };
    if len != archive.size_bytes {
        warn!(archive = %archive_id, stored = len, registered = archive.size_bytes, "stored archive has the wrong length");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the custodian's copy of this archive is damaged; nothing was recorded",
        ));
    }
    let tip_time = store
        .tip()
        .map_err(ApiError::internal)?
        .map_or(0, |t| t.time_ms);
    let decide_at = now_ms().max(tip_time + 1);
    // The ledger's own decision, with its checks: what it would refuse to record is refused
    // here, at once, rather than submitted and never committed.
    let decision = match decide_access(&*store, &state.consortium, &archive, req, decide_at) {
        Ok(d) => d,
        Err(cradle_ledger::Error::StaleRequest {
            requested_at_ms, ..
        }) => {
            let ttl = state.consortium.policy.access_request_ttl_ms;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!(
                    "the access request was made at {requested_at_ms} ms, more than {ttl} ms from now: sign a new one"
                ),
            ));
        }
        Err(cradle_ledger::Error::RequestReplayed) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "this access request was already recorded: sign a new one",
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let (outcome, wrapped) = match decision {
        Decision::Permitted(basis) => {
            let key = match basis {
                access::Basis::Patient => Some(archive.key_for_patient),
                access::Basis::Custodian => Some(archive.key_for_custodian),
                access::Basis::Grant(g) => store
                    .grant_key(&g, &archive_id)
                    .map_err(ApiError::internal)?,
            };
            (AccessOutcome::Permitted, key)
        }
        Decision::Denied(reason) => (AccessOutcome::Denied { reason }, None),
        Decision::BreakGlass => {
            let member = state
                .consortium
                .member(&req.accessor)
                .ok_or_else(|| ApiError::internal("break-glass decided for a non-member"))?;
            let key = cradle_ledger::keywrap::unwrap_key(
                &archive.key_for_custodian,
                &archive_id,
                state.custodian.key(),
            )
            .map_err(|e| ApiError::internal(format!("custodian key unwrap: {e}")))?;
            let for_accessor = cradle_ledger::keywrap::wrap_key(&key, &archive_id, &member.x25519)
                .map_err(ApiError::internal)?;
            (
                AccessOutcome::BreakGlass {
                    key_for_accessor: for_accessor,
                },
                Some(for_accessor),
            )
        }
    };
    let outcome_label = outcome_name(&outcome);
    let denial = match &outcome {
        AccessOutcome::Denied { reason } => Some(*reason),
        _ => None,
    };
    let record = RecordAccess {
        request: request.clone(),
        grant: decision.grant(),
        outcome,
    };
    let nonce = state
        .custodian
        .next_nonce(store.last_nonce(&custodian).map_err(ApiError::internal)?);
    let tx = Transaction {
        chain_id: state.consortium.chain_id,
        signer: custodian,
        nonce,
        body: TxBody::RecordAccess(record),
    }
    .sign(state.custodian.key());
    let tx_hash = submit_bytes(&state, tx.encode()).await.map_err(|e| {
        tracing::warn!(reason = %e.reason(), "could not submit an access record");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "could not record the access right now; nothing was released: retry",
        )
    })?;
    let height = wait_for_commit(&state, &tx_hash).await?;
    info!(
        archive = %archive_id,
        accessor = %req.accessor,
        purpose = %req.purpose,
        outcome = outcome_label,
        height,
        "access recorded"
    );
    let tx_hex = hex::encode(tx_hash);
    if let Some(reason) = denial {
        return Ok((
            StatusCode::FORBIDDEN,
            axum::Json(json!({
                "error": format!("access denied: {}", reason.as_str()),
                "reason": reason,
                "access_tx": tx_hex,
                "height": height,
            })),
        )
            .into_response());
    }
    let wrapped: WrappedKey = wrapped.ok_or_else(|| {
        ApiError::internal("permitted access without a wrapped key for the accessor")
    })?;
    let expected = archive.ciphertext_sha256;
    let (pieces_tx, pieces_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut reader = VerifiedReader::new(file, len, expected);
        loop {
            match reader.next_piece() {
                Ok(Piece::Data(data)) => {
                    if pieces_tx.blocking_send(Ok(Bytes::from(data))).is_err() {
                        return;
                    }
                }
                Ok(Piece::Done) => return,
                Err(reason) => {
                    tracing::error!(archive = %archive_id, %reason, "refusing to serve a damaged archive");
                    let _ = pieces_tx.blocking_send(Err(std::io::Error::other(reason)));
                    return;
                }
            }
        }
    });
    let stream = futures::stream::unfold(pieces_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    let hv = |s: String| HeaderValue::from_str(&s).map_err(ApiError::internal);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, hv(len.to_string())?);
    h.insert("x-cradle-access-tx", hv(tx_hex)?);
    h.insert("x-cradle-outcome", HeaderValue::from_static(outcome_label));
    h.insert("x-cradle-wrapped-key", hv(wrapped.to_hex())?);
    h.insert(
        "x-cradle-ciphertext-sha256",
        hv(hex::encode(archive.ciphertext_sha256))?,
    );
    Ok(response)
}
