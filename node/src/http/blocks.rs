//! Blocks: a committed block's header fields and transaction hashes, or its encoding with the
//! commit certificate for light clients.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use cradle_ledger::block::FinalizedBlock;
use serde_json::{Value, json};

use super::policy::{self, Caller};
use super::{HttpError, HttpResult, HttpState};

fn parse_height(s: &str) -> Result<u64, HttpError> {
    s.parse()
        .map_err(|_| HttpError::bad("height must be a non-negative integer"))
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

/// `GET /v1/blocks/{height}`: members and regulators.
pub async fn get(
    State(state): State<Arc<HttpState>>,
    Path(height): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::members(&caller)?;
    let height = parse_height(&height)?;
    let fb = state
        .store
        .block(height)
        .map_err(HttpError::internal)?
        .ok_or_else(|| HttpError::not_found(format!("no block at height {height}")))?;
    Ok(axum::Json(block_json(&fb)).into_response())
}

/// `GET /v1/blocks/{height}/raw`: members and regulators.
pub async fn raw(
    State(state): State<Arc<HttpState>>,
    Path(height): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::members(&caller)?;
    let height = parse_height(&height)?;
    let bytes = state
        .store
        .block_bytes(height)
        .map_err(HttpError::internal)?
        .ok_or_else(|| HttpError::not_found(format!("no block at height {height}")))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}
