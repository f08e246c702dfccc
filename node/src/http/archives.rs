//! Archive endpoints.
//!
//! | method and path | who | what |
//! |---|---|---|
//! | `PUT /v1/archives/{ciphertext_sha256}` | this node's member, signed | stores an encrypted archive |
//! | `POST /v1/archives/{archive_id}/fetch` | the accessor, signed | records the access, then streams the ciphertext or answers 403 |
//!
//! The work is the custodian's ([`crate::custodian`]); these handlers authenticate, call it,
//! and format its outcome.

use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use cradle_genesis::clock::now_ms;
use cradle_ledger::access::SignedAccessRequest;
use cradle_ledger::contract::{
    ACCESS_REQUEST_BYTES_MAX, ACCESS_TX_HEADER, CIPHERTEXT_SHA256_HEADER, ErrorCode, FetchDenied,
    OUTCOME_HEADER, WRAPPED_KEY_HEADER,
};
use cradle_ledger::tx::Purpose;
use cradle_ledger::{ArchiveId, PublicKey};
use serde_json::json;
use std::net::SocketAddr;
use tokio::sync::mpsc;

use super::auth::authenticate;
use super::rate::Class;
use super::{HttpError, HttpResult, HttpState, hex32};
use crate::custodian::store::Piece;
use crate::custodian::{ArchiveStoreError, FetchError, FetchOutcome, Released, UploadError};

impl From<UploadError> for HttpError {
    fn from(e: UploadError) -> Self {
        use ArchiveStoreError as S;
        let (status, code) = match &e {
            UploadError::OtherMember { .. }
            | UploadError::NotMember
            | UploadError::OtherInstitution { .. }
            | UploadError::StaffNotActive => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            UploadError::Store(S::TooLarge { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge)
            }
            UploadError::Store(S::Full { .. } | S::DiskReserve { .. }) => (
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorCode::InsufficientStorage,
            ),
            UploadError::Store(
                S::HashMismatch { .. } | S::LengthMismatch { .. } | S::Interrupted(_),
            )
            | UploadError::Interrupted(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            UploadError::Store(S::Unavailable(_)) => {
                return HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    e.to_string(),
                )
                .retry_after_s(5);
            }
            UploadError::Store(S::Io { .. }) | UploadError::Writer(_) | UploadError::Ledger(_) => {
                return HttpError::internal(e);
            }
        };
        HttpError::new(status, code, e.to_string())
    }
}

impl From<FetchError> for HttpError {
    fn from(e: FetchError) -> Self {
        use FetchError as F;
        let (status, code) = match &e {
            F::Malformed(_) | F::OtherArchive => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            F::NotOwnRequest | F::NotEntitled | F::StaffNotActive => {
                (StatusCode::FORBIDDEN, ErrorCode::Forbidden)
            }
            F::BadSignature => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            F::Stale { .. } => (StatusCode::UNAUTHORIZED, ErrorCode::StaleRequest),
            F::NoSuchArchive => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            F::NotHeld { .. } => (StatusCode::MISDIRECTED_REQUEST, ErrorCode::Misdirected),
            F::CiphertextMissing | F::Damaged | F::NotRecorded => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable)
            }
            F::AlreadyRecorded => (StatusCode::CONFLICT, ErrorCode::AlreadyRecorded),
            F::TooManyDenials { retry_after_ms } => {
                let retry = retry_after_ms.div_ceil(1_000).max(1);
                return HttpError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::RateLimited,
                    e.to_string(),
                )
                .retry_after_s(retry);
            }
            F::Refused { .. } => (StatusCode::CONFLICT, ErrorCode::TxRejected),
            F::Timeout => (StatusCode::GATEWAY_TIMEOUT, ErrorCode::CommitTimeout),
            F::Internal(_) => return HttpError::internal(e),
        };
        HttpError::new(status, code, e.to_string())
    }
}

/// `PUT /v1/archives/{ciphertext_sha256}`: the body is the ciphertext; the signed request's
/// body hash must be the path's hash.
pub async fn put(
    State(state): State<Arc<HttpState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(hash): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let expected = hex32(&hash, "ciphertext hash")?;
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let signer = authenticate(
        &state,
        peer,
        &headers,
        "PUT",
        &uri,
        &expected,
        Class::Ordinary,
    )?;
    let _transfer = state.transfers.take(signer)?;
    let len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            HttpError::new(
                StatusCode::LENGTH_REQUIRED,
                ErrorCode::LengthRequired,
                "an archive upload needs a Content-Length",
            )
        })?;
    let new = state
        .custodian
        .upload(signer, expected, len, body.into_data_stream())
        .await?;
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

/// `POST /v1/archives/{archive_id}/fetch`: the body is the accessor's signed access request.
pub async fn fetch(
    State(state): State<Arc<HttpState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let archive_id = ArchiveId(hex32(&id, "archive id")?);
    // Read at most the bound, so an oversized body is refused before it is buffered.
    let body =
        super::bodies::read_small(body, ACCESS_REQUEST_BYTES_MAX, "an access request").await?;
    // An emergency draws on capacity of its own that no ordinary traffic can take. The body is
    // only looked at here; the custodian checks it.
    let class = match SignedAccessRequest::decode(&body) {
        Ok(r) if r.request.purpose == Purpose::EmergencyTreat => Class::BreakGlass,
        _ => Class::Fetch,
    };
    let body_hash = cradle_ledger::crypto::sha256(&body);
    let signer = authenticate(&state, peer, &headers, "POST", &uri, &body_hash, class)?;
    // A place for the download is taken before the access is recorded: a node too busy to
    // serve it records nothing.
    let transfer = state.transfers.take(signer)?;
    // A denial writes an entry into a mother's history as surely as a read: one key's denials
    // of one patient are held to their own rate, refused before anything is recorded.
    let may_deny = |patient: &PublicKey| match state.rate.take_patient(signer, *patient, now_ms()) {
        Ok(()) => None,
        Err(limited) => {
            state
                .metrics
                .requests_rate_limited_key
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some(limited.retry_after_ms())
        }
    };
    match state
        .custodian
        .fetch(archive_id, signer, &body, may_deny)
        .await?
    {
        FetchOutcome::Denied {
            reason,
            access_tx,
            height,
        } => Ok((
            StatusCode::FORBIDDEN,
            axum::Json(FetchDenied {
                error: format!("access denied: {}", reason.as_str()),
                code: ErrorCode::AccessDenied,
                reason,
                access_tx: hex::encode(access_tx),
                height,
            }),
        )
            .into_response()),
        FetchOutcome::Released(released) => stream(archive_id, *released, transfer),
    }
}

/// The ciphertext as a streamed body, read and checked on a blocking thread; a damaged piece
/// ends the stream with an error rather than serving it.
fn stream(
    archive_id: ArchiveId,
    released: Released,
    transfer: super::transfers::TransferPermit,
) -> HttpResult {
    let Released {
        mut reader,
        len,
        ciphertext_sha256,
        access_tx,
        outcome,
        wrapped_key,
        ..
    } = released;
    let (pieces_tx, pieces_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let _transfer = transfer;
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
    let hv = |s: String| HeaderValue::from_str(&s).map_err(HttpError::internal);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, hv(len.to_string())?);
    h.insert(ACCESS_TX_HEADER, hv(hex::encode(access_tx))?);
    h.insert(OUTCOME_HEADER, HeaderValue::from_static(outcome));
    h.insert(WRAPPED_KEY_HEADER, hv(wrapped_key.to_hex())?);
    h.insert(
        CIPHERTEXT_SHA256_HEADER,
        hv(hex::encode(ciphertext_sha256))?,
    );
    Ok(response)
}
