//! Governance: the member sets a client follows from genesis, and the proposals members vote on.
//!
//! | method and path | what | who |
//! |---|---|---|
//! | `GET /v1/governance/sets` | every adopted member set with the certified header that names it (binary [`SetChanges`]) | any known party |
//! | `GET /v1/governance/proposals` | the proposals and where each stands | members and regulators |
//!
//! Proposals are submitted and approved as transactions (`POST /v1/txs`), judged by the
//! ledger's rules like any other.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::IntoResponse;
use cradle_ledger::codec;
use cradle_ledger::governance::{
    self, Adoption, ProposalRecord, SET_CHANGES_MAX, SetChange, SetChanges,
};
use cradle_ledger::state::{StateReader, keys};
use cradle_ledger::{Hash, ProposalId};
use serde_json::json;

use super::policy::{self, Caller};
use super::{HttpError, HttpResult, HttpState};

/// Most proposals listed.
const PROPOSALS_MAX: usize = 1024;

/// `GET /v1/governance/sets`: each set adopted since genesis that has been named by a committed
/// header, oldest first, with that header and its certificate.
pub async fn sets(
    State(state): State<Arc<HttpState>>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::known(&caller)?;
    let store = state.store.clone();
    let changes = tokio::task::spawn_blocking(move || -> Result<Vec<SetChange>, HttpError> {
        let tip = store
            .tip()
            .map_err(HttpError::internal)?
            .map_or(0, |t| t.height);
        let mut out = Vec::new();
        for (first, set) in
            governance::history(&*store, SET_CHANGES_MAX).map_err(HttpError::internal)?
        {
            // The header of the height before a set's first names it; until it is committed,
            // no header a client checks needs the set.
            let named_at = first.saturating_sub(1);
            if named_at == 0 || named_at > tip {
                continue;
            }
            let fb = store
                .block(named_at)
                .map_err(HttpError::internal)?
                .ok_or_else(|| HttpError::internal("a committed block is missing"))?;
            out.push(SetChange {
                set,
                header: fb.block.header,
                certificate: fb.certificate,
            });
        }
        Ok(out)
    })
    .await
    .map_err(HttpError::internal)??;
    let changes = SetChanges::new(changes).map_err(HttpError::internal)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        codec::encode(&changes),
    )
        .into_response())
}

/// `GET /v1/governance/proposals`: every proposal the state holds, newest adoption state, with
/// its status as of the tip.
pub async fn proposals(
    State(state): State<Arc<HttpState>>,
    Extension(caller): Extension<Caller>,
) -> HttpResult {
    policy::members(&caller)?;
    let tip = state.store.tip().map_err(HttpError::internal)?;
    let now_ms = tip.map_or(state.consortium().genesis_time_ms, |t| t.time_ms);
    let newest = governance::membership(&*state.store)
        .map_err(HttpError::internal)?
        .map_or(0, |m| m.newest().epoch);
    let mut list = Vec::new();
    for (key, value) in state
        .store
        .scan_prefix(&[keys::PROPOSAL], PROPOSALS_MAX)
        .map_err(HttpError::internal)?
    {
        let id: Hash = key
            .get(1..)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| HttpError::internal("short proposal key"))?;
        let record: ProposalRecord =
            codec::decode(&value, governance::MEMBERSHIP_BYTES_MAX).map_err(HttpError::internal)?;
        let (adopted_height, activation) = match record.adoption {
            Adoption::Adopted { height, activation } => (Some(height), Some(activation)),
            Adoption::Open => (None, None),
        };
        list.push(json!({
            "id": ProposalId(id),
            "status": record.status(now_ms, newest),
            "change": record.change,
            "proposer": record.proposer,
            "epoch": record.epoch,
            "proposed_height": record.proposed_height,
            "expires_at_ms": record.expires_at_ms,
            "approvals": record.approvals,
            "adopted_height": adopted_height,
            "activation_height": activation,
        }));
    }
    let c = state.consortium();
    Ok(axum::Json(json!({
        "epoch": c.epoch,
        "members_hash": hex::encode(c.members_hash()),
        "proposals": list,
    }))
    .into_response())
}
