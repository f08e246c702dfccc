//! The node itself: its health, its progress, the genesis it runs, and its metrics (served on
//! the operator's own address, not the API's).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::policy::{self, Caller};
use super::{HttpResult, HttpState};

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the node can serve a clinician now: it is synced (its last block is at most
/// the ready lag old) and connected to enough validators that, with its own vote, they hold
/// more than two thirds of the voting power. 200 `ready`, or 503 with the reason, for a load
/// balancer. It names no patient and no block, so anyone may ask.
pub async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    let status = state.status.borrow().clone();
    match not_ready(&state, &status, cradle_genesis::clock::now_ms()) {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

/// Why the node is not ready, if it is not.
fn not_ready(state: &HttpState, status: &crate::driver::Status, now_ms: u64) -> Option<String> {
    let Some(tip) = status.tip else {
        return Some("no block committed yet".into());
    };
    let age_ms = now_ms.saturating_sub(tip.time_ms);
    if age_ms > state.ready_lag_ms {
        return Some(format!(
            "the last block (height {}) is {age_ms} ms old, more than {} ms: catching up or no quorum",
            tip.height, state.ready_lag_ms
        ));
    }
    // The peers this node is connected to are counted as the validators of least power: a
    // lower bound on the power it can reach.
    let consortium = state.consortium();
    let validators = consortium.validators();
    let me = validators
        .index_of(&state.node_key.0)
        .and_then(|i| validators.get(i))
        .map_or(0, |v| v.voting_power);
    let mut others: Vec<u64> = validators
        .validators()
        .iter()
        .filter(|v| v.public_key != state.node_key.0)
        .map(|v| v.voting_power)
        .collect();
    others.sort_unstable();
    let reached = others
        .iter()
        .take(status.peers)
        .fold(me, |sum, p| sum.saturating_add(*p));
    if !validators.is_quorum(reached) {
        return Some(format!(
            "connected to {} peers: not enough validators for a quorum",
            status.peers
        ));
    }
    None
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
        None => (0, String::new(), state.consortium().genesis_time_ms),
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
        "chain_id": hex::encode(state.consortium().chain_id),
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
    let mut text = state.metrics.render();
    match state.store.memory_usage() {
        Ok(memory) => crate::metrics::render_storage(&mut text, &memory),
        Err(error) => tracing::warn!(%error, "reading the store's memory for /metrics"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
