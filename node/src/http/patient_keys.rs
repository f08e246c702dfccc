//! A patient's key changes, as her history and the regulators' view show them.
//!
//! | method and path | what | who |
//! |---|---|---|
//! | `GET /v1/patients/{key}/keys` | every change of her keys: when, the new key, and the member that recovered her if one did | herself, members, their active clinicians, regulators |
//! | `GET /v1/audit/recoveries` | every recovery of a patient by a member, consortium-wide | regulators |

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use cradle_ledger::PublicKey;
use cradle_ledger::state::{KeyChange, StateExt, StateReader, keys};
use serde_json::json;

use super::policy::{self, Caller};
use super::{HttpError, HttpResult, HttpState, hex32};

/// Most key changes or recoveries listed.
const LIST_MAX: usize = 4096;

/// `GET /v1/patients/{key}/keys`, `key` being the key she enrolled with.
pub async fn changes(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let patient = PublicKey(hex32(&key, "patient key")?);
    policy::patient_record(&caller, &patient)?;
    let record = state
        .store
        .patient(&patient)
        .map_err(HttpError::internal)?
        .ok_or_else(|| HttpError::not_found("no such patient is enrolled"))?;
    let mut changes = Vec::new();
    for (_, value) in state
        .store
        .scan_prefix(&keys::key_changes(&patient), LIST_MAX)
        .map_err(HttpError::internal)?
    {
        let change: KeyChange = cradle_ledger::codec::decode(&value, 4096)
            .map_err(|e| HttpError::internal(format!("key change record: {e}")))?;
        changes.push(change);
    }
    Ok(axum::Json(json!({
        "patient": patient,
        "current_key": record.current_key.unwrap_or(patient),
        "changes": changes,
    }))
    .into_response())
}

/// `GET /v1/audit/recoveries`: every recovery, oldest first, with the member that made it.
pub async fn recoveries(
    State(state): State<Arc<HttpState>>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::regulators(&caller)?;
    let mut list = Vec::new();
    for (k, v) in state
        .store
        .scan_prefix(&keys::recoveries(), LIST_MAX)
        .map_err(HttpError::internal)?
    {
        // RECOVERY || height (8, big-endian) || patient (32).
        let (Some(height), Some(patient)) = (k.get(1..9), k.get(9..41)) else {
            return Err(HttpError::internal("short recovery key"));
        };
        let height = u64::from_be_bytes(height.try_into().map_err(HttpError::internal)?);
        let patient = PublicKey(patient.try_into().map_err(HttpError::internal)?);
        let by: PublicKey = cradle_ledger::codec::decode(&v, 64).map_err(HttpError::internal)?;
        list.push(json!({ "height": height, "patient": patient, "recovered_by": by }));
    }
    Ok(axum::Json(json!({ "recoveries": list })).into_response())
}
