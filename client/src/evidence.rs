//! Equivocation evidence for regulators: fetched page by page with signed requests, and checked
//! item by item from the genesis document alone.
//!
//! # Node endpoint (the contract)
//!
//! `GET /v1/audit/evidence?offset={n}`, signed by a regulator: an [`EvidenceAnswer::encode`],
//! at most [`cradle_ledger::audit::EVIDENCE_PAGE_MAX`] items from position `n` of the node's
//! evidence store, in (height, round, step, validator) order, with how many it holds in all.
//! Anyone else is refused with 403 `forbidden`, an unsigned request with 401.
//!
//! Each item proves itself: two messages for one height, round and step, naming different
//! values, both signed on this chain by one genesis validator. The client refuses the whole
//! answer if one item does not verify. A node can still withhold evidence it holds; ask others.

use cradle_ledger::audit::{
    AuditError, Equivocation, EvidenceAnswer, EvidenceItem, describe, verify_evidence,
};
use cradle_ledger::governance::Sets;
use cradle_ledger::{Digest32, Keypair};

use crate::api::ApiClient;
use crate::audit::{AuditClientError, columns, signed_get};

/// Most pages the client asks for in one listing: a node stores at most 10,000 items, so 100
/// pages of 1,000 cover a store ten times larger.
pub const EVIDENCE_PAGES_MAX: usize = 100;

/// Every page of the node's evidence, unverified.
pub fn fetch_evidence(
    api: &ApiClient,
    key: &Keypair,
    chain_id: &cradle_ledger::Hash,
) -> Result<Vec<EvidenceAnswer>, AuditClientError> {
    let mut pages = Vec::new();
    let mut offset = 0u64;
    for _ in 0..EVIDENCE_PAGES_MAX {
        let path = format!("/v1/audit/evidence?offset={offset}");
        let bytes = signed_get(api, key, chain_id, &path)?;
        let page = EvidenceAnswer::decode(&bytes).map_err(AuditClientError::Decode)?;
        if page.offset != offset {
            return Err(AuditClientError::NotAsked("another page of evidence"));
        }
        let got = page.items.len() as u64;
        let total = page.total;
        pages.push(page);
        offset = offset.saturating_add(got);
        if got == 0 || offset >= total {
            break;
        }
    }
    Ok(pages)
}

/// The node's evidence, every item checked from genesis and the set changes followed from it
/// (see the module docs).
pub fn evidence_verified(
    api: &ApiClient,
    key: &Keypair,
    sets: &Sets,
) -> Result<Vec<EvidenceItem>, AuditClientError> {
    let mut out = Vec::new();
    for page in fetch_evidence(api, key, &sets.latest().chain_id)? {
        let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
        // Name a bad item by its position in the whole listing, not in its page.
        let items = verify_evidence(sets, &page).map_err(|e| match e {
            AuditError::BadEvidence { index, reason } => AuditError::BadEvidence {
                index: offset.saturating_add(index),
                reason,
            },
            other => other,
        })?;
        out.extend(items);
    }
    Ok(out)
}

/// The node's evidence, named against the set in force at each item's height but not checked.
pub fn evidence_unverified(
    api: &ApiClient,
    key: &Keypair,
    sets: &Sets,
) -> Result<Vec<EvidenceItem>, AuditClientError> {
    let pages = fetch_evidence(api, key, &sets.latest().chain_id)?;
    Ok(pages
        .iter()
        .flat_map(|p| p.items.iter())
        .map(|e: &Equivocation| describe(sets.at(e.slot().height), e))
        .collect())
}

fn value(v: Option<Digest32>) -> String {
    match v {
        Some(id) => format!("{}…", &id.to_hex()[..16]),
        None => "nil".into(),
    }
}

/// A plain-text table, one row per offence: height, round, kind, validator (member name), and
/// the first 16 hex digits of the two values it signed for.
pub fn render_evidence_table(items: &[EvidenceItem]) -> String {
    let header = [
        "HEIGHT",
        "ROUND",
        "KIND",
        "VALIDATOR",
        "FIRST VALUE",
        "SECOND VALUE",
    ];
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|e| {
            vec![
                e.height.to_string(),
                e.round.to_string(),
                e.kind.to_string(),
                e.member
                    .clone()
                    .unwrap_or_else(|| format!("validator {}", e.validator)),
                value(e.first_value),
                value(e.second_value),
            ]
        })
        .collect();
    columns(&header, &rows)
}

/// The evidence as JSON: `{"verified": .., "evidence": [..]}`, value ids in full hex.
pub fn render_evidence_json(items: &[EvidenceItem], verified: bool) -> String {
    let doc = serde_json::json!({ "verified": verified, "evidence": items });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_the_member_and_shortens_the_values() {
        let item = EvidenceItem {
            height: 12,
            round: 0,
            kind: "prevote",
            validator: 3,
            validator_key: None,
            member: Some("Township Clinic 2".into()),
            first_value: Some(Digest32([0xab; 32])),
            second_value: None,
        };
        let table = render_evidence_table(&[item]);
        let row = table.lines().nth(1).unwrap_or_default();
        for want in [
            "12",
            "prevote",
            "Township Clinic 2",
            "abababababababab…",
            "nil",
        ] {
            assert!(row.contains(want), "{want:?} missing from {row:?}");
        }
    }
}
