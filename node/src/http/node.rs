//! The node itself: its progress, the genesis it runs, and its metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{HttpResult, HttpState};

/// `GET /v1/status`: height, block hash, state root, access log, round, peers, mempool.
pub async fn status(State(state): State<Arc<HttpState>>) -> HttpResult {
    let status = state.status.borrow().clone();
    let (height, hash, time_ms) = match status.tip {
        Some(t) => (t.height, hex::encode(t.hash), t.time_ms),
        None => (0, String::new(), state.consortium.genesis_time_ms),
    };
    Ok(axum::Json(json!({
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
    }))
    .into_response())
}

/// `GET /v1/genesis`: the genesis document this node runs (for display; a verifying client
/// uses its own copy).
pub async fn genesis(State(state): State<Arc<HttpState>>) -> HttpResult {
    Ok(axum::Json(state.genesis.clone()).into_response())
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
