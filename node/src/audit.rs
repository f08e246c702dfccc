//! Audit answers with their proofs, served from one RocksDB snapshot.
//!
//! | path | answer (`application/octet-stream`, `codec::encode`) |
//! |---|---|
//! | `GET /v1/audit/patient/{key}` | [`AuditAnswer`] over the patient's log |
//! | `GET /v1/audit/archive/{id}` | over the archive's log |
//! | `GET /v1/audit/accessor/{key}` | over the accessor institution's log |
//! | `GET /v1/audit/break-glass` | over the break-glass log |
//! | `GET /v1/audit/consistency?from=SIZE` | [`ConsistencyAnswer`] of the global log |
//!
//! The first four take `?from_ms=..&to_ms=..` (both or neither, inclusive) for a time range.
//! Every answer is proven against the tip's header and commit certificate, so the client checks
//! it from genesis and need not trust this node.
//!
//! Who read whose records is itself private: the first four are signed requests (see
//! [`cradle_ledger::api_request`]) and are answered to a regulator, and otherwise only to whom
//! the history concerns: a patient's to the patient, an archive's to its patient and its
//! custodian, an institution's accesses to the institution. The break-glass log is for
//! regulators. A consistency proof holds hashes only and is open to anyone.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use cradle_ledger::access::AccessEvent;
use cradle_ledger::audit::{
    AuditAnswer, AuditSource, AuditSubject, CommitCertificate, ConsistencyAnswer, build_answer,
    build_consistency,
};
use cradle_ledger::block::BlockHeader;
use cradle_ledger::crypto::sha256;
use cradle_ledger::state::StateExt;
use cradle_ledger::{ArchiveId, Error, PublicKey, Role};
use serde::Deserialize;

use crate::api::{ApiError, ApiResult, ApiState, hex32};
use crate::archives::api::{authenticate, path_of};
use crate::storage::{EVENTS_PAGE_MAX, StorageError, StoreSnapshot};

/// An [`AuditSource`] over one consistent snapshot of the store.
pub struct SnapshotSource<'a> {
    snapshot: StoreSnapshot<'a>,
}

impl<'a> SnapshotSource<'a> {
    pub fn new(snapshot: StoreSnapshot<'a>) -> Self {
        Self { snapshot }
    }

    pub fn snapshot(&self) -> &StoreSnapshot<'a> {
        &self.snapshot
    }
}

fn storage(e: StorageError) -> Error {
    Error::Storage(e.to_string())
}

impl<'a> AuditSource for SnapshotSource<'a> {
    type State = StoreSnapshot<'a>;

    fn tip(&self) -> Result<Option<(BlockHeader, CommitCertificate)>, Error> {
        let Some(tip) = self.snapshot.tip().map_err(storage)? else {
            return Ok(None);
        };
        let fb = self
            .snapshot
            .block(tip.height)
            .map_err(storage)?
            .ok_or_else(|| Error::Corrupt(format!("tip block {} missing", tip.height)))?;
        Ok(Some((fb.block.header, fb.certificate)))
    }

    fn state(&self) -> &Self::State {
        &self.snapshot
    }

    fn events(&self, subject: &AuditSubject) -> Result<Vec<AccessEvent>, Error> {
        let mut out = Vec::new();
        let mut from = 0u64;
        loop {
            let page = match subject {
                AuditSubject::Patient(p) => {
                    self.snapshot.events_for_patient(p, from, EVENTS_PAGE_MAX)
                }
                AuditSubject::Archive(a) => {
                    self.snapshot.events_for_archive(a, from, EVENTS_PAGE_MAX)
                }
                AuditSubject::Accessor(k) => {
                    self.snapshot.events_for_accessor(k, from, EVENTS_PAGE_MAX)
                }
                AuditSubject::BreakGlass => self.snapshot.events_break_glass(from, EVENTS_PAGE_MAX),
            }
            .map_err(storage)?;
            let full = page.len() == EVENTS_PAGE_MAX;
            if let Some(last) = page.last() {
                from = last.global_index + 1;
            }
            out.extend(page.into_iter().map(|e| e.event));
            if !full {
                return Ok(out);
            }
        }
    }
}

#[derive(Deserialize)]
pub struct RangeQuery {
    from_ms: Option<u64>,
    to_ms: Option<u64>,
}

impl RangeQuery {
    fn range(&self) -> Result<Option<(u64, u64)>, ApiError> {
        match (self.from_ms, self.to_ms) {
            (None, None) => Ok(None),
            (Some(f), Some(t)) if f <= t => Ok(Some((f, t))),
            (Some(_), Some(_)) => Err(ApiError::bad("from_ms must not be after to_ms")),
            _ => Err(ApiError::bad("give both from_ms and to_ms, or neither")),
        }
    }
}

fn answer_error(e: Error) -> ApiError {
    match e {
        Error::NoBlocks => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no block is committed yet: nothing to prove against",
        ),
        Error::TooMany { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{e}: ask for a time range"),
        ),
        other => ApiError::internal(other),
    }
}

fn bytes(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}

/// Whether `signer` may read `subject`'s history (see the module docs).
fn authorize(state: &ApiState, signer: &PublicKey, subject: &AuditSubject) -> Result<(), ApiError> {
    if state
        .consortium
        .member(signer)
        .is_some_and(|m| m.role == Role::Regulator)
    {
        return Ok(());
    }
    let (allowed, who) = match subject {
        AuditSubject::Patient(p) => (p == signer, "the patient herself or a regulator"),
        AuditSubject::Accessor(a) => (a == signer, "the institution itself or a regulator"),
        AuditSubject::Archive(id) => {
            let record = state.store.archive(id).map_err(ApiError::internal)?;
            (
                record.is_some_and(|r| &r.patient == signer || &r.custodian == signer),
                "the archive's patient, its custodian or a regulator",
            )
        }
        AuditSubject::BreakGlass => (false, "regulators"),
    };
    if allowed {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        format!("this history is answered only to {who}"),
    ))
}

async fn answer(
    state: Arc<ApiState>,
    headers: HeaderMap,
    uri: Uri,
    subject: AuditSubject,
    q: RangeQuery,
) -> ApiResult {
    let signer = authenticate(&state, &headers, "GET", &path_of(&uri), &sha256(b""))?;
    authorize(&state, &signer, &subject)?;
    let range = q.range()?;
    let store = state.store.clone();
    let answer: AuditAnswer = tokio::task::spawn_blocking(move || {
        let src = SnapshotSource::new(store.snapshot());
        build_answer(&src, subject, range)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(answer_error)?;
    Ok(bytes(answer.encode()))
}

pub async fn patient(
    State(state): State<Arc<ApiState>>,
    Path(key): Path<String>,
    Query(q): Query<RangeQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult {
    let key = PublicKey(hex32(&key, "patient key")?);
    answer(state, headers, uri, AuditSubject::Patient(key), q).await
}

pub async fn archive(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult {
    let id = ArchiveId(hex32(&id, "archive id")?);
    answer(state, headers, uri, AuditSubject::Archive(id), q).await
}

pub async fn accessor(
    State(state): State<Arc<ApiState>>,
    Path(key): Path<String>,
    Query(q): Query<RangeQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult {
    let key = PublicKey(hex32(&key, "accessor key")?);
    answer(state, headers, uri, AuditSubject::Accessor(key), q).await
}

pub async fn break_glass(
    State(state): State<Arc<ApiState>>,
    Query(q): Query<RangeQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult {
    answer(state, headers, uri, AuditSubject::BreakGlass, q).await
}

#[derive(Deserialize)]
pub struct ConsistencyQuery {
    from: u64,
}

pub async fn consistency(
    State(state): State<Arc<ApiState>>,
    Query(q): Query<ConsistencyQuery>,
) -> ApiResult {
    let store = state.store.clone();
    let answer: Result<ConsistencyAnswer, ApiError> = tokio::task::spawn_blocking(move || {
        let src = SnapshotSource::new(store.snapshot());
        let size = src
            .tip()
            .map_err(answer_error)?
            .map_or(0, |(h, _)| h.access_log_size);
        if q.from > size {
            return Err(ApiError::bad(format!(
                "the access log has {size} entries, fewer than {}",
                q.from
            )));
        }
        build_consistency(&src, &src.snapshot().global_log(), q.from).map_err(answer_error)
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(bytes(answer?.encode()))
}

/// `GET /v1/genesis`: the genesis document this node runs (for display; a verifying client
/// uses its own copy).
pub async fn genesis(State(state): State<Arc<ApiState>>) -> ApiResult {
    Ok(axum::Json(state.genesis.clone()).into_response())
}
