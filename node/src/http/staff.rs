//! Clinicians: their ledger records, an institution's staff list, and its staff directory.
//!
//! | method and path | what | to whom |
//! |---|---|---|
//! | `GET /v1/staff/{key}` | a clinician's ledger record: pseudonymous id, institution, role, department, status | anyone the ledger knows |
//! | `GET /v1/members/{key}/staff` | an institution's clinicians, with names when this is its node | the institution, its administrators, regulators |
//! | `GET /v1/staff/{key}/directory` | her name and staff number, from her institution's node only | see [`policy::staff_directory`] |
//! | `PUT /v1/staff/{key}/directory` | sets them (JSON `{"name", "staff_number"}`, signed with its body) | the institution, its administrators |
//!
//! Names live only in this node's directory ([`crate::directory`]) and never reach a log.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use cradle_ledger::PublicKey;
use cradle_ledger::contract::ErrorCode;
use cradle_ledger::staff::StaffRecord;
use cradle_ledger::state::StateExt;
use serde_json::json;

use super::auth::authenticate;
use super::policy::{self, Caller};
use super::rate::Class;
use super::{HttpError, HttpResult, HttpState, hex32};
use crate::directory::{DirectoryEntry, DirectoryError};

/// Largest directory entry body read.
const DIRECTORY_BODY_BYTES_MAX: usize = 2048;
/// Most clinicians listed for one institution.
const STAFF_LIST_MAX: usize = 10_000;

fn staff_key(s: &str) -> Result<PublicKey, HttpError> {
    Ok(PublicKey(hex32(s, "clinician key")?))
}

fn record(state: &HttpState, key: &PublicKey) -> Result<StaffRecord, HttpError> {
    state
        .store
        .staff(key)
        .map_err(HttpError::internal)?
        .ok_or_else(|| HttpError::not_found("no such clinician on the ledger"))
}

fn institution_name(state: &HttpState, key: &PublicKey) -> Option<String> {
    state.consortium().member(key).map(|m| m.name.clone())
}

/// `GET /v1/staff/{key}`
pub async fn get(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::staff_record(&caller)?;
    let key = staff_key(&key)?;
    let rec = record(&state, &key)?;
    Ok(axum::Json(json!({
        "key": key,
        "institution_name": institution_name(&state, &rec.institution),
        "record": rec,
    }))
    .into_response())
}

/// `GET /v1/members/{key}/staff`
pub async fn list(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    let institution = PublicKey(hex32(&key, "member key")?);
    policy::staff_admin(&caller, &institution, false)?;
    let here = institution == state.node_identity();
    let staff = state
        .store
        .institution_staff(&institution, STAFF_LIST_MAX)
        .map_err(HttpError::internal)?;
    let listed: Vec<_> = staff
        .into_iter()
        .map(|(key, rec)| {
            let entry = here.then(|| state.directory.get(&rec.id)).flatten();
            json!({ "key": key, "record": rec, "directory": entry })
        })
        .collect();
    Ok(axum::Json(json!({
        "institution": institution,
        "institution_name": institution_name(&state, &institution),
        "names_from_this_node": here,
        "staff": listed,
    }))
    .into_response())
}

/// The directory is this node's institution's: another's clinicians are asked of their own node.
fn held_here(state: &HttpState, rec: &StaffRecord) -> Result<(), HttpError> {
    if rec.institution == state.node_identity() {
        return Ok(());
    }
    let name = institution_name(state, &rec.institution).unwrap_or_default();
    Err(HttpError::new(
        StatusCode::MISDIRECTED_REQUEST,
        ErrorCode::Misdirected,
        format!("this clinician's directory is kept by {name}'s node: ask it"),
    ))
}

/// `GET /v1/staff/{key}/directory`
pub async fn directory(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let key = staff_key(&key)?;
    // Who may not read learns nothing, not even whether the clinician exists.
    let rec = match state.store.staff(&key).map_err(HttpError::internal)? {
        Some(rec) => rec,
        None => {
            policy::regulators(&caller)?;
            return Err(HttpError::not_found("no such clinician on the ledger"));
        }
    };
    policy::staff_directory(&state, &caller, &rec)?;
    held_here(&state, &rec)?;
    let entry = state
        .directory
        .get(&rec.id)
        .ok_or_else(|| HttpError::not_found("the institution has no directory entry for her"))?;
    Ok(axum::Json(json!({
        "key": key,
        "id": rec.id,
        "institution": rec.institution,
        "institution_name": institution_name(&state, &rec.institution),
        "role": rec.role,
        "name": entry.name,
        "staff_number": entry.staff_number,
    }))
    .into_response())
}

/// `PUT /v1/staff/{key}/directory`
pub async fn set_directory(
    State(state): State<Arc<HttpState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(key): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let key = staff_key(&key)?;
    let body =
        super::bodies::read_small(body, DIRECTORY_BODY_BYTES_MAX, "a directory entry").await?;
    let body_hash = cradle_ledger::crypto::sha256(&body);
    let signer = authenticate(
        &state,
        peer,
        &headers,
        "PUT",
        &uri,
        &body_hash,
        Class::Ordinary,
    )?;
    let caller = Caller::of(&state, signer)?;
    let rec = match state.store.staff(&key).map_err(HttpError::internal)? {
        Some(rec) => rec,
        None => {
            policy::staff_admin(&caller, &state.node_identity(), true)?;
            return Err(HttpError::not_found(
                "no such clinician on the ledger: register her first",
            ));
        }
    };
    policy::staff_admin(&caller, &rec.institution, true)?;
    held_here(&state, &rec)?;
    let entry = parse_directory_entry(&body)?;
    state.directory.set(rec.id, entry).map_err(|e| match e {
        DirectoryError::Invalid(_) => HttpError::bad(e.to_string()),
        DirectoryError::Full => HttpError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::InsufficientStorage,
            e.to_string(),
        ),
        other => HttpError::internal(other),
    })?;
    tracing::info!(staff = %rec.id, "staff directory entry set");
    Ok((
        StatusCode::OK,
        axum::Json(json!({ "key": key, "id": rec.id })),
    )
        .into_response())
}

/// The body of `PUT /v1/staff/{key}/directory`: JSON `{"name", "staff_number"}`; the directory
/// checks the values when it takes them.
pub fn parse_directory_entry(body: &[u8]) -> Result<DirectoryEntry, HttpError> {
    serde_json::from_slice(body).map_err(|e| {
        HttpError::bad(format!(
            "a directory entry is {{\"name\", \"staff_number\"}}: {e}"
        ))
    })
}
