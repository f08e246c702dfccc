//! The client API: HTTP/JSON on each node (axum).
//!
//! Request bodies are bounded; every bad request gets a 4xx status and a one-line JSON reason,
//! `{"error": "..."}`. Transactions are decoded and their signatures checked here, on the
//! request's own task, before they reach the driver.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cradle_ledger::block::FinalizedBlock;
use cradle_ledger::state::StateExt;
use cradle_ledger::{Consortium, Hash, PublicKey};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use crate::archives::api as archives;
use crate::archives::records;
use crate::archives::{ArchiveStore, Custodian, ReplayCache};
use crate::audit;
use crate::driver::{Ingress, Status, SubmitError};
use crate::metrics::Metrics;
use crate::storage::Store;

/// Largest batch body: many transactions in one request, for busy custodians and load tests.
const BATCH_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Most transactions in one batch.
const BATCH_TXS_MAX: usize = 4096;

/// Longest a client may ask to wait for its transaction's commit.
const WAIT_MAX: Duration = Duration::from_secs(30);

/// What the API handlers share.
pub struct ApiState {
    pub consortium: Arc<Consortium>,
    pub member: String,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub status: watch::Receiver<Status>,
    pub ingress: mpsc::Sender<Ingress>,
    /// The encrypted archives this node's institution holds as custodian.
    pub archives: Arc<ArchiveStore>,
    /// This node's member key, which signs access records as custodian.
    pub custodian: Arc<Custodian>,
    /// Nonces of signed requests seen within the allowed skew.
    pub replay: std::sync::Mutex<ReplayCache>,
    /// How far a signed request's time may be from this node's clock.
    pub request_skew_ms: u64,
    /// The genesis document, as served at `/v1/genesis`.
    pub genesis: Value,
}

/// An error answer: a status and a one-line reason.
pub struct ApiError(StatusCode, String);

impl ApiError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self(status, reason.into())
    }
    /// The one-line reason.
    pub fn reason(&self) -> &str {
        &self.1
    }
    pub fn bad(reason: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, reason.into())
    }
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, reason.into())
    }
    pub fn internal(reason: impl std::fmt::Display) -> Self {
        tracing::error!(%reason, "api internal error");
        Self(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let reason = self.1.replace('\n', " ");
        (self.0, axum::Json(json!({ "error": reason }))).into_response()
    }
}

pub type ApiResult = Result<Response, ApiError>;

pub fn router(state: Arc<ApiState>) -> Router {
    let body_max = state.consortium.limits.tx_bytes_max as usize;
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/txs", post(submit_tx))
        .route(
            "/v1/txs/batch",
            post(submit_batch).layer(DefaultBodyLimit::max(BATCH_BYTES_MAX)),
        )
        .route("/v1/txs/{hash}", get(get_tx))
        .route("/v1/blocks/{height}", get(get_block))
        .route("/v1/blocks/{height}/raw", get(get_block_raw))
        .route("/v1/nonce/{key}", get(get_nonce))
        .route(
            "/v1/archives/{id}",
            get(records::get_archive)
                .put(archives::put_archive)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/archives/{id}/fetch", post(archives::fetch_archive))
        .route("/v1/patients/{key}", get(records::get_patient))
        .route(
            "/v1/patients/{key}/archives",
            get(records::get_patient_archives),
        )
        .route(
            "/v1/patients/{key}/grants",
            get(records::get_patient_grants),
        )
        .route("/v1/grants/{id}", get(records::get_grant))
        .route(
            "/v1/grants/{id}/keys/{archive}",
            get(records::get_grant_key),
        )
        .route("/v1/members", get(records::get_members))
        .route("/v1/genesis", get(audit::genesis))
        .route("/v1/audit/patient/{key}", get(audit::patient))
        .route("/v1/audit/archive/{id}", get(audit::archive))
        .route("/v1/audit/accessor/{key}", get(audit::accessor))
        .route("/v1/audit/break-glass", get(audit::break_glass))
        .route("/v1/audit/consistency", get(audit::consistency))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(body_max))
        .with_state(state)
}

pub fn hex32(s: &str, what: &str) -> Result<[u8; 32], ApiError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| ApiError::bad(format!("{what} must be 64 hex digits")))?;
    Ok(out)
}

fn parse_height(s: &str) -> Result<u64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad("height must be a non-negative integer"))
}

fn status_json(state: &ApiState, status: &Status) -> Value {
    let (height, hash, time_ms) = match status.tip {
        Some(t) => (t.height, hex::encode(t.hash), t.time_ms),
        None => (0, String::new(), state.consortium.genesis_time_ms),
    };
    json!({
        "chain_id": hex::encode(state.consortium.chain_id),
        "member": state.member,
        "height": height,
        "block_hash": hash,
        "time_ms": time_ms,
        "state_root": hex::encode(status.state_root),
        "access_log_size": status.access_log_size,
        "access_log_root": hex::encode(status.access_log_root),
        "round": status.round,
        "peers": status.peers,
        "mempool_txs": status.mempool_txs,
    })
}

async fn status(State(state): State<Arc<ApiState>>) -> ApiResult {
    let status = state.status.borrow().clone();
    Ok(axum::Json(status_json(&state, &status)).into_response())
}

#[derive(Deserialize)]
struct SubmitQuery {
    /// `commit`: answer only once the transaction is in a committed block.
    wait: Option<String>,
}

async fn submit_tx(
    State(state): State<Arc<ApiState>>,
    Query(q): Query<SubmitQuery>,
    body: Bytes,
) -> ApiResult {
    let wait = match q.wait.as_deref() {
        None => false,
        Some("commit") => true,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "unknown wait mode {other:?}: use commit"
            )));
        }
    };
    let hash = submit_bytes(&state, body.to_vec()).await?;
    if !wait {
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({ "hash": hex::encode(hash) })),
        )
            .into_response());
    }
    let height = wait_for_commit(&state, &hash).await?;
    Ok(axum::Json(json!({ "hash": hex::encode(hash), "height": height })).into_response())
}

/// Verifies an encoded transaction off the async runtime and hands it to the driver; the
/// answer is its hash once the mempool took it.
pub async fn submit_bytes(state: &ApiState, bytes: Vec<u8>) -> Result<Hash, ApiError> {
    let chain_id = state.consortium.chain_id;
    let max = state.consortium.limits.tx_bytes_max as usize;
    let verified =
        tokio::task::spawn_blocking(move || crate::verify::verify_one(bytes, &chain_id, max))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::bad(format!("invalid transaction: {e}")))?;
    let (reply, answer) = oneshot::channel();
    let shutting_down = || {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "node is shutting down".into(),
        )
    };
    state
        .ingress
        .send(Ingress::Submit {
            tx: Box::new(verified),
            reply,
        })
        .await
        .map_err(|_| shutting_down())?;
    match answer.await {
        Ok(Ok(hash)) => Ok(hash),
        Ok(Err(SubmitError::Mempool(e))) => {
            let code = match e {
                crate::mempool::MempoolError::Full { .. } => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::CONFLICT,
            };
            Err(ApiError(code, e.to_string()))
        }
        Ok(Err(e)) => Err(ApiError::bad(e.to_string())),
        Err(_) => Err(shutting_down()),
    }
}

/// `POST /v1/txs/batch`: a borsh `Vec<Vec<u8>>` of encoded transactions behind the version byte.
/// Each is checked and admitted on its own; the answer lists, in order, a hash or an error.
async fn submit_batch(State(state): State<Arc<ApiState>>, body: Bytes) -> ApiResult {
    let batch: cradle_ledger::codec::BoundedVec<Vec<u8>, BATCH_TXS_MAX> =
        cradle_ledger::codec::decode(&body, BATCH_BYTES_MAX)
            .map_err(|e| ApiError::bad(format!("invalid batch: {e}")))?;
    let chain_id = state.consortium.chain_id;
    let max = state.consortium.limits.tx_bytes_max as usize;
    let checked = tokio::task::spawn_blocking(move || {
        batch
            .into_inner()
            .into_iter()
            .map(|b| crate::verify::verify_one(b, &chain_id, max))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(ApiError::internal)?;
    let mut answers = Vec::with_capacity(checked.len());
    for item in checked {
        let answer = match item {
            Err(e) => json!({ "error": format!("invalid transaction: {e}") }),
            Ok(tx) => {
                let (reply, answer) = oneshot::channel();
                if state
                    .ingress
                    .send(Ingress::Submit {
                        tx: Box::new(tx),
                        reply,
                    })
                    .await
                    .is_err()
                {
                    return Err(ApiError(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "node is shutting down".into(),
                    ));
                }
                match answer.await {
                    Ok(Ok(hash)) => json!({ "hash": hex::encode(hash) }),
                    Ok(Err(e)) => json!({ "error": e.to_string() }),
                    Err(_) => json!({ "error": "node is shutting down" }),
                }
            }
        };
        answers.push(answer);
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "results": answers })),
    )
        .into_response())
}

/// Waits until `hash` is in a committed block, watching the driver's status for new blocks.
pub async fn wait_for_commit(state: &ApiState, hash: &Hash) -> Result<u64, ApiError> {
    let mut status = state.status.clone();
    let deadline = tokio::time::Instant::now() + WAIT_MAX;
    loop {
        if let Some((height, _)) = state.store.tx_location(hash).map_err(ApiError::internal)? {
            return Ok(height);
        }
        match tokio::time::timeout_at(deadline, status.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => {
                return Err(ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "node is shutting down".into(),
                ));
            }
            Err(_) => {
                return Err(ApiError(
                    StatusCode::GATEWAY_TIMEOUT,
                    "transaction accepted but not committed within 30 s".into(),
                ));
            }
        }
    }
}

async fn get_tx(State(state): State<Arc<ApiState>>, Path(hash): Path<String>) -> ApiResult {
    let hash = hex32(&hash, "transaction hash")?;
    let (height, index) = state
        .store
        .tx_location(&hash)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("no such committed transaction"))?;
    let fb = state
        .store
        .block(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal("indexed block missing"))?;
    let tx = fb
        .block
        .txs
        .get(index as usize)
        .ok_or_else(|| ApiError::internal("indexed transaction missing"))?;
    Ok(axum::Json(json!({
        "hash": hex::encode(hash),
        "height": height,
        "index": index,
        "kind": tx.tx.body.kind(),
        "tx": tx,
    }))
    .into_response())
}

fn block_json(fb: &FinalizedBlock) -> Value {
    let h = &fb.block.header;
    json!({
        "height": h.height,
        "hash": hex::encode(h.hash()),
        "chain_id": h.chain_id,
        "time_ms": h.time_ms,
        "prev_hash": h.prev_hash,
        "proposer": h.proposer,
        "tx_count": h.tx_count,
        "tx_root": h.tx_root,
        "state_root": h.state_root,
        "access_log_size": h.access_log_size,
        "access_log_root": h.access_log_root,
        "txs": fb.block.txs.iter().map(|t| hex::encode(t.hash())).collect::<Vec<_>>(),
        "certificate": {
            "round": fb.certificate.round,
            "signers": fb.certificate.signatures.iter().map(|s| s.validator).collect::<Vec<_>>(),
        },
    })
}

async fn get_block(State(state): State<Arc<ApiState>>, Path(height): Path<String>) -> ApiResult {
    let height = parse_height(&height)?;
    let fb = state
        .store
        .block(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no block at height {height}")))?;
    Ok(axum::Json(block_json(&fb)).into_response())
}

async fn get_block_raw(
    State(state): State<Arc<ApiState>>,
    Path(height): Path<String>,
) -> ApiResult {
    let height = parse_height(&height)?;
    let bytes = state
        .store
        .block_bytes(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no block at height {height}")))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn get_nonce(State(state): State<Arc<ApiState>>, Path(key): Path<String>) -> ApiResult {
    let key = PublicKey(hex32(&key, "public key")?);
    let last = state.store.last_nonce(&key).map_err(ApiError::internal)?;
    Ok(axum::Json(json!({ "public_key": key, "last_nonce": last })).into_response())
}

async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
