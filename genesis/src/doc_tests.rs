//! Tests of the genesis document: each validation rule alone, and the chain id.

use cradle_ledger::{Keypair, Limits, Policy, PublicKey, Role};

use crate::doc::{ConsensusParams, GenesisDoc, GenesisMember};
use crate::error::GenesisError;

fn member(i: u8, role: Role, power: u64) -> GenesisMember {
    let kp = Keypair::from_seed(&[i; 32]);
    GenesisMember {
        name: format!("Member {i}"),
        role,
        public_key: kp.public_key(),
        x25519: kp.x25519_public(),
        voting_power: power,
        p2p_addr: Some(format!("/ip4/127.0.0.1/tcp/{}", 26600 + u16::from(i) * 2)),
        api_addr: Some(format!("127.0.0.1:{}", 8600 + u16::from(i))),
    }
}

fn valid() -> GenesisDoc {
    let mut regulator = member(4, Role::Regulator, 0);
    regulator.p2p_addr = None;
    regulator.api_addr = None;
    GenesisDoc {
        chain_name: "cradle-test".into(),
        genesis_time_ms: 1_735_689_600_000,
        members: vec![
            member(1, Role::Hospital, 1),
            member(2, Role::Hospital, 1),
            member(3, Role::Clinic, 1),
            regulator,
        ],
        consensus: ConsensusParams::default(),
        policy: Policy::default(),
        limits: Limits::default(),
    }
}

/// Applies `breaker` to a valid doc and returns the single error validation reports.
fn only_error(breaker: impl FnOnce(&mut GenesisDoc)) -> GenesisError {
    let mut doc = valid();
    breaker(&mut doc);
    let errs = doc.validate().expect_err("broken doc passed validation");
    let mut all = errs.0;
    assert_eq!(all.len(), 1, "want exactly one error, got {all:?}");
    all.remove(0)
}

#[test]
fn valid_doc_passes_and_builds_a_consortium() {
    let doc = valid();
    doc.validate().unwrap();
    let c = doc.consortium().unwrap();
    assert_eq!(c.chain_id, doc.chain_id());
    assert_eq!(c.members.len(), 4);
    assert_eq!(c.validators().len(), 3);
}

#[test]
fn empty_chain_name() {
    let e = only_error(|d| d.chain_name = "  ".into());
    assert!(matches!(e, GenesisError::EmptyChainName), "{e}");
    let e = only_error(|d| d.chain_name = "x".repeat(65));
    assert!(matches!(e, GenesisError::BadChainName { .. }), "{e}");
}

#[test]
fn no_members() {
    let e = only_error(|d| d.members.clear());
    assert!(matches!(e, GenesisError::NoMembers), "{e}");
}

#[test]
fn bad_member_name() {
    let e = only_error(|d| d.members[0].name = "Bad\nName".into());
    assert!(
        matches!(e, GenesisError::BadMemberName { index: 0, .. }),
        "{e}"
    );
    let e = only_error(|d| d.members[0].name = " Padded".into());
    assert!(matches!(e, GenesisError::BadMemberName { .. }), "{e}");
}

#[test]
fn duplicate_name() {
    let e = only_error(|d| d.members[1].name = d.members[0].name.clone());
    assert!(
        matches!(
            e,
            GenesisError::DuplicateName {
                first: 0,
                second: 1,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn duplicate_public_key() {
    let e = only_error(|d| d.members[1].public_key = d.members[0].public_key);
    assert!(matches!(e, GenesisError::DuplicatePublicKey { .. }), "{e}");
}

#[test]
fn duplicate_x25519_key() {
    let e = only_error(|d| d.members[2].x25519 = d.members[0].x25519);
    assert!(matches!(e, GenesisError::DuplicateX25519 { .. }), "{e}");
}

#[test]
fn invalid_ed25519_key() {
    // Some encodings are not points on the curve; take the first such one.
    let bytes = (2u8..=255)
        .map(|b| {
            let mut bytes = [0u8; 32];
            bytes[0] = b;
            bytes
        })
        .find(|b| PublicKey(*b).verifying_key().is_err())
        .expect("an encoding that is not a point");
    let e = only_error(|d| d.members[0].public_key = PublicKey(bytes));
    assert!(matches!(e, GenesisError::InvalidPublicKey { .. }), "{e}");
}

#[test]
fn duplicate_p2p_address() {
    let e = only_error(|d| d.members[1].p2p_addr = d.members[0].p2p_addr.clone());
    assert!(matches!(e, GenesisError::DuplicateP2pAddr { .. }), "{e}");
}

#[test]
fn duplicate_api_address() {
    let e = only_error(|d| d.members[1].api_addr = d.members[0].api_addr.clone());
    assert!(matches!(e, GenesisError::DuplicateApiAddr { .. }), "{e}");
}

#[test]
fn unparsable_addresses() {
    let e = only_error(|d| d.members[0].p2p_addr = Some("127.0.0.1:26600".into()));
    assert!(matches!(e, GenesisError::BadP2pAddr { .. }), "{e}");
    let e = only_error(|d| d.members[0].p2p_addr = Some("/ip4/127.0.0.1/tcp/0".into()));
    assert!(matches!(e, GenesisError::BadP2pAddr { .. }), "{e}");
    let e = only_error(|d| d.members[0].api_addr = Some("localhost".into()));
    assert!(matches!(e, GenesisError::BadApiAddr { .. }), "{e}");
}

#[test]
fn validator_without_p2p_address() {
    let e = only_error(|d| d.members[0].p2p_addr = None);
    assert!(matches!(e, GenesisError::MissingP2pAddr { .. }), "{e}");
}

#[test]
fn no_validator() {
    let e = only_error(|d| {
        for m in &mut d.members {
            m.voting_power = 0;
        }
    });
    assert!(matches!(e, GenesisError::NoValidator), "{e}");
}

#[test]
fn voting_power_overflow() {
    let e = only_error(|d| {
        d.members[0].voting_power = u64::MAX;
        d.members[1].voting_power = 1;
    });
    assert!(matches!(e, GenesisError::VotingPowerOverflow), "{e}");
}

#[test]
fn regulator_with_voting_power() {
    let e = only_error(|d| {
        d.members[3].voting_power = 1;
        d.members[3].p2p_addr = Some("/ip4/127.0.0.1/tcp/9".into());
    });
    assert!(
        matches!(e, GenesisError::RegulatorWithPower { power: 1, .. }),
        "{e}"
    );
}

#[test]
fn timeouts_out_of_bounds() {
    let e = only_error(|d| d.consensus.timeouts.timeout_prevote_ms = 10);
    assert!(
        matches!(
            e,
            GenesisError::BadTimeout {
                name: "timeout_prevote_ms",
                value_ms: 10,
                ..
            }
        ),
        "{e}"
    );
    let e = only_error(|d| d.consensus.timeouts.timeout_precommit_ms = 60_001);
    assert!(matches!(e, GenesisError::BadTimeout { .. }), "{e}");
    let e = only_error(|d| d.consensus.pacing.batch_window_ms = 120_000);
    assert!(
        matches!(
            e,
            GenesisError::BadTimeout {
                name: "batch_window_ms",
                ..
            }
        ),
        "{e}"
    );
    // An idle proposer that outwaits the others' propose timeout would lose every idle round.
    let e = only_error(|d| d.consensus.pacing.heartbeat_ms = 3_000);
    assert!(
        matches!(
            e,
            GenesisError::BadTimeout {
                name: "heartbeat_ms",
                max_ms: 2_999,
                ..
            }
        ),
        "{e}"
    );
    let e = only_error(|d| d.consensus.timeouts.timeout_delta_ms = 0);
    assert!(
        matches!(
            e,
            GenesisError::BadTimeout {
                name: "timeout_delta_ms",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn delta_above_propose() {
    let e = only_error(|d| {
        d.consensus.timeouts.timeout_delta_ms = d.consensus.timeouts.timeout_propose_ms + 1
    });
    assert!(matches!(e, GenesisError::DeltaExceedsPropose { .. }), "{e}");
}

#[test]
fn invalid_limits() {
    let e = only_error(|d| d.limits.block_txs_max = 0);
    assert!(matches!(e, GenesisError::InvalidLimits(_)), "{e}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut doc = valid();
    doc.chain_name.clear();
    doc.members[1].name = doc.members[0].name.clone();
    doc.members[3].voting_power = 5;
    doc.consensus.timeouts.timeout_propose_ms = 1;
    // Also: the regulator now validates without a p2p address, and the delta exceeds propose.
    let errs = doc.validate().unwrap_err();
    assert_eq!(errs.len(), 6, "{errs}");
    let line = errs.to_string();
    assert!(line.starts_with("6 problems: "), "{line}");
    assert!(!line.contains('\n'), "{line}");
    assert!(matches!(
        doc.consortium(),
        Err(GenesisError::Invalid(e)) if e.len() == 6
    ));
}

#[test]
fn chain_id_ignores_json_formatting() {
    let doc = valid();
    let pretty = doc.to_json_pretty();
    let compact = serde_json::to_string(&doc).unwrap();
    // Reorder keys: serde_json::Value sorts object keys alphabetically.
    let reordered = serde_json::to_string(&serde_json::to_value(&doc).unwrap()).unwrap();
    assert_ne!(pretty, compact);
    assert_ne!(compact, reordered);
    for text in [&pretty, &compact, &reordered] {
        let back: GenesisDoc = serde_json::from_str(text).unwrap();
        assert_eq!(back.chain_id(), doc.chain_id());
    }
    let back: GenesisDoc = borsh::from_slice(&borsh::to_vec(&doc).unwrap()).unwrap();
    assert_eq!(back, doc);
}

#[test]
fn chain_id_changes_when_any_field_changes() {
    let base = valid().chain_id();
    type Change = Box<dyn Fn(&mut GenesisDoc)>;
    let changes: Vec<(&str, Change)> = vec![
        ("chain_name", Box::new(|d| d.chain_name.push('x'))),
        ("genesis_time_ms", Box::new(|d| d.genesis_time_ms += 1)),
        ("member name", Box::new(|d| d.members[0].name.push('x'))),
        (
            "member role",
            Box::new(|d| d.members[2].role = Role::Hospital),
        ),
        (
            "member key",
            Box::new(|d| d.members[0].public_key = Keypair::from_seed(&[9; 32]).public_key()),
        ),
        (
            "member x25519",
            Box::new(|d| d.members[0].x25519 = Keypair::from_seed(&[9; 32]).x25519_public()),
        ),
        ("voting power", Box::new(|d| d.members[0].voting_power = 2)),
        ("p2p addr", Box::new(|d| d.members[0].p2p_addr = None)),
        ("api addr", Box::new(|d| d.members[0].api_addr = None)),
        ("member order", Box::new(|d| d.members.swap(0, 1))),
        (
            "timeout_propose_ms",
            Box::new(|d| d.consensus.timeouts.timeout_propose_ms += 1),
        ),
        (
            "timeout_prevote_ms",
            Box::new(|d| d.consensus.timeouts.timeout_prevote_ms += 1),
        ),
        (
            "timeout_precommit_ms",
            Box::new(|d| d.consensus.timeouts.timeout_precommit_ms += 1),
        ),
        (
            "timeout_delta_ms",
            Box::new(|d| d.consensus.timeouts.timeout_delta_ms += 1),
        ),
        (
            "batch_window_ms",
            Box::new(|d| d.consensus.pacing.batch_window_ms += 1),
        ),
        (
            "heartbeat_ms",
            Box::new(|d| d.consensus.pacing.heartbeat_ms += 1),
        ),
        (
            "break_glass_allowed",
            Box::new(|d| d.policy.break_glass_allowed ^= true),
        ),
        (
            "access_request_ttl_ms",
            Box::new(|d| d.policy.access_request_ttl_ms += 1),
        ),
        (
            "grant_duration_max_ms",
            Box::new(|d| d.policy.grant_duration_max_ms += 1),
        ),
        ("tx_bytes_max", Box::new(|d| d.limits.tx_bytes_max += 1)),
        ("block_txs_max", Box::new(|d| d.limits.block_txs_max += 1)),
        (
            "block_bytes_max",
            Box::new(|d| d.limits.block_bytes_max += 1),
        ),
    ];
    for (what, change) in changes {
        let mut doc = valid();
        change(&mut doc);
        assert_ne!(doc.chain_id(), base, "changing {what} kept the chain id");
    }
}

#[test]
fn save_and_load_round_trip_and_load_rejects_invalid_docs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("genesis.json");
    let doc = valid();
    doc.save(&path).unwrap();
    let back = GenesisDoc::load(&path).unwrap();
    assert_eq!(back.chain_id(), doc.chain_id());

    let mut bad = valid();
    bad.members.clear();
    bad.save(&path).unwrap();
    assert!(matches!(
        GenesisDoc::load(&path),
        Err(GenesisError::Invalid(_))
    ));
    assert_eq!(GenesisDoc::load_unvalidated(&path).unwrap(), bad);

    std::fs::write(&path, "{\"chain_name\": 1}").unwrap();
    assert!(matches!(
        GenesisDoc::load(&path),
        Err(GenesisError::Json { .. })
    ));
}

#[test]
fn lookups_by_key_and_name() {
    let doc = valid();
    let key = doc.members[2].public_key;
    assert_eq!(doc.member_by_key(&key).map(|(i, _)| i), Some(2));
    assert_eq!(
        doc.member_by_name("Member 2").map(|(_, m)| m.public_key),
        Some(doc.members[1].public_key)
    );
    assert!(doc.member_by_name("Nobody").is_none());
    assert_eq!(doc.validators().count(), 3);
}

#[test]
fn chain_id_of_a_known_document_is_stable() {
    // Computed when the policy gained its governance settings (a regulator's approval for
    // membership changes, the proposals' window), which changed the document's layout and so
    // every chain id on purpose (as the break-glass roles and the proposer's pacing did before).
    // Moving fields between crates (as the timeouts into `cradle_consensus::Config` did) must not.
    assert_eq!(
        valid().chain_id_hex(),
        "3554b566b1d6be0ba9a861f7f12197580293c258b78acb3607cfc9f102dbb722"
    );
    let json: serde_json::Value = serde_json::from_str(&valid().to_json_pretty()).unwrap();
    assert_eq!(
        json["consensus"],
        serde_json::json!({
            "timeout_propose_ms": 3000,
            "timeout_prevote_ms": 1000,
            "timeout_precommit_ms": 1000,
            "timeout_delta_ms": 500,
            "batch_window_ms": 5,
            "heartbeat_ms": 1000,
        })
    );
}

#[test]
fn consensus_params_refuse_unknown_and_missing_fields() {
    let mut json: serde_json::Value = serde_json::to_value(valid()).unwrap();
    json["consensus"]["timeout_commit_ms"] = 1000.into();
    let err = serde_json::from_value::<GenesisDoc>(json.clone()).unwrap_err();
    assert!(err.to_string().contains("timeout_commit_ms"), "{err}");
    let consensus = json["consensus"].as_object_mut().unwrap();
    consensus.remove("timeout_commit_ms");
    consensus.remove("timeout_delta_ms");
    let err = serde_json::from_value::<GenesisDoc>(json).unwrap_err();
    assert!(err.to_string().contains("timeout_delta_ms"), "{err}");
}
