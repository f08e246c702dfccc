//! Committed ledger records: what a client needs to encrypt for, and decrypt from, its
//! counterparts.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /v1/archives/{archive_id}` | the archive's ledger record |
//! | `GET /v1/patients/{key}` (`/archives`, `/grants`) | a patient's keys, archives and grants |
//! | `GET /v1/grants/{grant_id}` (`/keys/{archive_id}`) | a grant and the keys it carries |
//! | `GET /v1/members` | the consortium's members and their public keys |
//! | `GET /v1/archives/{archive_id}/proof`, `GET /v1/patients/{key}/proof` | the record proven against the tip's certified header (binary) |
//! | `GET /v1/patients/{key}/identity/proof` | the patient a key she got after enrolment signs for, proven (binary) |
//!
//! They serve committed ledger state, which names keys, hashes and wrapped keys only, to the
//! parties [`super::policy`] allows; a party who may not read a record learns nothing of it, not
//! even whether it exists.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use cradle_ledger::state::{ArchiveRecord, GrantRecord, StateExt, StateReader, keys};
use cradle_ledger::{ArchiveId, GrantId, PublicKey};
use serde_json::json;

use super::policy::{self, Caller};
use super::{HttpError, HttpResult, HttpState, hex32};

/// Most grants or archives listed for one patient.
const LIST_MAX: usize = 4096;

/// The archive's record if `caller` may read it. A patient learns nothing of archives that
/// are not hers, not even that they exist (403 either way).
fn readable_archive(
    state: &HttpState,
    caller: &Caller,
    id: &ArchiveId,
) -> Result<Option<ArchiveRecord>, HttpError> {
    let rec = state.store.archive(id).map_err(HttpError::internal)?;
    let patient = rec.as_ref().map_or(PublicKey([0; 32]), |r| r.patient);
    policy::archive_record(caller, &patient)?;
    Ok(rec)
}

/// `GET /v1/archives/{archive_id}`
pub async fn archive(
    State(state): State<Arc<HttpState>>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let id = ArchiveId(hex32(&id, "archive id")?);
    let rec = readable_archive(&state, &caller, &id)?
        .ok_or_else(|| HttpError::not_found("no such archive on the ledger"))?;
    let custodian_name = state
        .consortium()
        .member(&rec.custodian)
        .map(|m| m.name.clone());
    Ok(axum::Json(json!({
        "archive": id,
        "record": rec,
        "custodian_name": custodian_name,
    }))
    .into_response())
}

fn patient_key(s: &str) -> Result<PublicKey, HttpError> {
    Ok(PublicKey(hex32(s, "patient key")?))
}

/// The record at `key` with its state proof against the tip (binary, `codec::encode`).
async fn proven(state: &HttpState, key: Vec<u8>) -> HttpResult {
    let store = state.store.clone();
    let answer = tokio::task::spawn_blocking(move || crate::audit::record(&store, key))
        .await
        .map_err(HttpError::internal)??;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        answer.encode(),
    )
        .into_response())
}

/// `GET /v1/archives/{archive_id}/proof`: the archive's record proven against the tip, for a
/// client that trusts only genesis (who may read it as for the record itself).
pub async fn archive_proof(
    State(state): State<Arc<HttpState>>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let id = ArchiveId(hex32(&id, "archive id")?);
    readable_archive(&state, &caller, &id)?;
    proven(&state, keys::archive(&id)).await
}

/// `GET /v1/patients/{key}/proof`: her record (her keys) proven against the tip.
pub async fn patient_proof(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let p = patient_key(&key)?;
    policy::patient_record(&caller, &p)?;
    proven(&state, keys::patient(&p)).await
}

/// `GET /v1/patients/{key}/identity/proof`: which patient a key she got after her enrolment
/// signs for (the record is absent for an enrolment key or no patient's key), proven against
/// the tip: to her, members and regulators, as her record is.
pub async fn patient_identity_proof(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let k = patient_key(&key)?;
    let identity: Option<PublicKey> = state
        .store
        .record(&keys::patient_alias(&k))
        .map_err(HttpError::internal)?;
    policy::patient_record(&caller, &identity.unwrap_or(k))?;
    proven(&state, keys::patient_alias(&k)).await
}

/// `GET /v1/patients/{key}`
pub async fn patient(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let p = patient_key(&key)?;
    policy::patient_record(&caller, &p)?;
    let rec = state
        .store
        .patient(&p)
        .map_err(HttpError::internal)?
        .ok_or_else(|| HttpError::not_found("no such patient is enrolled"))?;
    Ok(axum::Json(json!({ "patient": p, "record": rec })).into_response())
}

/// `GET /v1/patients/{key}/archives`
pub async fn patient_archives(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let p = patient_key(&key)?;
    policy::patient_listing(&state, &caller, &p)?;
    let list = state
        .store
        .patient_archives(&p, LIST_MAX)
        .map_err(HttpError::internal)?;
    let items: Vec<_> = list
        .into_iter()
        .map(|(id, rec)| json!({ "archive": id, "record": rec }))
        .collect();
    Ok(axum::Json(json!({ "patient": p, "archives": items })).into_response())
}

/// `GET /v1/patients/{key}/grants`: every grant the patient gave, revoked and expired ones too.
pub async fn patient_grants(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let p = patient_key(&key)?;
    policy::patient_grants(&caller, &p)?;
    let mut prefix = keys::grants_to(&p, &PublicKey([0; 32]));
    prefix.truncate(1 + 32);
    let entries = state
        .store
        .scan_prefix(&prefix, LIST_MAX)
        .map_err(HttpError::internal)?;
    let mut items = Vec::with_capacity(entries.len());
    for (k, _) in entries {
        let Some(id) = k
            .len()
            .checked_sub(32)
            .and_then(|s| <[u8; 32]>::try_from(&k[s..]).ok())
        else {
            return Err(HttpError::internal("short grant index key"));
        };
        let id = GrantId(id);
        let grant: GrantRecord = state
            .store
            .grant(&id)
            .map_err(HttpError::internal)?
            .ok_or_else(|| HttpError::internal("dangling grant index"))?;
        let grantee_name = state
            .consortium()
            .member(&grant.grantee)
            .map(|m| m.name.clone());
        items.push(json!({ "grant": id, "record": grant, "grantee_name": grantee_name }));
    }
    Ok(axum::Json(json!({ "patient": p, "grants": items })).into_response())
}

/// `GET /v1/grants/{grant_id}`
pub async fn grant(
    State(state): State<Arc<HttpState>>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let id = GrantId(hex32(&id, "grant id")?);
    let rec = grant_for(&state, &caller, &id)?;
    Ok(axum::Json(json!({ "grant": id, "record": rec })).into_response())
}

/// The grant `id` if `caller` may read it; a party who may not learns nothing, not even that
/// it exists (403 either way).
fn grant_for(state: &HttpState, caller: &Caller, id: &GrantId) -> Result<GrantRecord, HttpError> {
    let rec = state.store.grant(id).map_err(HttpError::internal)?;
    match rec {
        Some(rec) => {
            policy::grant(caller, &rec)?;
            Ok(rec)
        }
        None => {
            policy::regulators(caller)
                .map_err(|_| HttpError::forbidden("this is answered only to the patient who gave the grant, its grantee and regulators"))?;
            Err(HttpError::not_found("no such grant on the ledger"))
        }
    }
}

/// `GET /v1/grants/{grant_id}/keys/{archive_id}`
pub async fn grant_key(
    State(state): State<Arc<HttpState>>,
    Path((grant, archive)): Path<(String, String)>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let g = GrantId(hex32(&grant, "grant id")?);
    let a = ArchiveId(hex32(&archive, "archive id")?);
    grant_for(&state, &caller, &g)?;
    let key = state
        .store
        .grant_key(&g, &a)
        .map_err(HttpError::internal)?
        .ok_or_else(|| HttpError::not_found("the grant carries no key for this archive"))?;
    Ok(axum::Json(json!({ "grant": g, "archive": a, "key": key })).into_response())
}

/// `GET /v1/members`
pub async fn members(
    State(state): State<Arc<HttpState>>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let members: Vec<_> = state
        .consortium()
        .members
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "role": m.role.as_str(),
                "public_key": m.public_key,
                "signing_key": m.signing_key(),
                "x25519_public": m.x25519,
                "voting_power": m.voting_power,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "members": members })).into_response())
}
