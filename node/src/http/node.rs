//! The node itself: its health, its progress, the genesis it runs, and its metrics (served on
//! the operator's own address, not the API's).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::policy::{self, Caller};
use super::{HttpResult, HttpState};

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /v1/status`: to anyone, the height, block hash and this node's member key; to members
/// and regulators also the time, state root, access log, round, peers and mempool.
pub async fn status(
    State(state): State<Arc<HttpState>>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    let status = state.status.borrow().clone();
    let (height, hash, time_ms) = match status.tip {
        Some(t) => (t.height, hex::encode(t.hash), t.time_ms),
        None => (0, String::new(), state.consortium.genesis_time_ms),
    };
    if policy::members(&caller).is_err() {
        return Ok(axum::Json(json!({
            "height": height,
            "block_hash": hash,
            "node_key": state.node_key,
        }))
        .into_response());
    }
    Ok(axum::Json(json!({
        "node_key": state.node_key,
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
pub async fn genesis(
    State(state): State<Arc<HttpState>>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
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
