//! Audit endpoints.
//!
//! | path | answer (`application/octet-stream`, `codec::encode`) |
//! |---|---|
//! | `GET /v1/audit/patient/{key}` | an audit answer over the patient's log |
//! | `GET /v1/audit/archive/{id}` | over the archive's log |
//! | `GET /v1/audit/accessor/{key}` | over the accessor institution's log |
//! | `GET /v1/audit/break-glass` | over the break-glass log |
//! | `GET /v1/audit/consistency?from=SIZE` | a consistency proof of the global log |
//! | `GET /v1/audit/evidence[?offset=N]` | a page of the equivocation evidence this node holds |
//!
//! The first four are signed requests and take `?from_ms=..&to_ms=..` (both or neither,
//! inclusive); who may read which history is [`super::policy::audit`]'s to say. The evidence
//! is signed too, and answered to regulators only.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cradle_ledger::audit::AuditSubject;
use cradle_ledger::contract::ErrorCode;
use cradle_ledger::{ArchiveId, PublicKey};
use serde::Deserialize;

use super::policy::{self, Caller};
use super::{HttpError, HttpResult, HttpState, hex32};
use crate::audit::{self as service, AuditError};

impl From<AuditError> for HttpError {
    fn from(e: AuditError) -> Self {
        let (status, code) = match &e {
            AuditError::NoBlocks => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            AuditError::TooMany(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            AuditError::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            AuditError::Internal(_) => return HttpError::internal(e),
        };
        HttpError::new(status, code, e.to_string())
    }
}

#[derive(Deserialize)]
pub struct RangeQuery {
    from_ms: Option<u64>,
    to_ms: Option<u64>,
}

impl RangeQuery {
    /// The time range asked for, if any; public for the fuzz target over query strings.
    pub fn range(&self) -> Result<Option<(u64, u64)>, HttpError> {
        match (self.from_ms, self.to_ms) {
            (None, None) => Ok(None),
            (Some(f), Some(t)) if f <= t => Ok(Some((f, t))),
            (Some(_), Some(_)) => Err(HttpError::bad("from_ms must not be after to_ms")),
            _ => Err(HttpError::bad("give both from_ms and to_ms, or neither")),
        }
    }
}

fn bytes(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}

async fn answer(
    state: Arc<HttpState>,
    caller: Caller,
    subject: AuditSubject,
    q: RangeQuery,
) -> HttpResult {
    policy::audit(&state, &caller, &subject)?;
    let range = q.range()?;
    let store = state.store.clone();
    let answer = tokio::task::spawn_blocking(move || service::answer(&store, subject, range))
        .await
        .map_err(HttpError::internal)??;
    Ok(bytes(answer.encode()))
}

pub async fn patient(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Query(q): Query<RangeQuery>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    let key = PublicKey(hex32(&key, "patient key")?);
    answer(state, caller, AuditSubject::Patient(key), q).await
}

pub async fn archive(
    State(state): State<Arc<HttpState>>,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    let id = ArchiveId(hex32(&id, "archive id")?);
    answer(state, caller, AuditSubject::Archive(id), q).await
}

pub async fn accessor(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Query(q): Query<RangeQuery>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    let key = PublicKey(hex32(&key, "accessor key")?);
    answer(state, caller, AuditSubject::Accessor(key), q).await
}

pub async fn break_glass(
    State(state): State<Arc<HttpState>>,
    Query(q): Query<RangeQuery>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    answer(state, caller, AuditSubject::BreakGlass, q).await
}

#[derive(Deserialize)]
pub struct ConsistencyQuery {
    from: u64,
}

/// `GET /v1/audit/consistency?from=SIZE`: hashes only, to anyone the ledger knows.
pub async fn consistency(
    State(state): State<Arc<HttpState>>,
    Query(q): Query<ConsistencyQuery>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let store = state.store.clone();
    let answer = tokio::task::spawn_blocking(move || service::consistency(&store, q.from))
        .await
        .map_err(HttpError::internal)??;
    Ok(bytes(answer.encode()))
}

#[derive(Deserialize)]
pub struct EvidenceQuery {
    #[serde(default)]
    offset: u64,
}

/// `GET /v1/audit/evidence[?offset=N]`: signed, regulators only.
pub async fn evidence(
    State(state): State<Arc<HttpState>>,
    Query(q): Query<EvidenceQuery>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::regulators(&caller)?;
    let store = state.store.clone();
    let answer = tokio::task::spawn_blocking(move || service::evidence(&store, q.offset))
        .await
        .map_err(HttpError::internal)??;
    Ok(bytes(answer.encode()))
}
