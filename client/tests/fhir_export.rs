//! The FHIR export checked by an independent validator: `scripts/lib/fhir_validate.py`, which
//! parses every resource with the FHIR R4 models of the Python package fhir.resources.
//!
//! The validator must be installed (`scripts/lib/env.sh` installs it); a missing python3 or
//! fhir.resources fails these tests with the command that installs it, rather than skipping.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use cradle_client::fhir::{audit_bundle, consent_resources};
use cradle_ledger::access::{AccessEvent, DenialReason, EventOutcome};
use cradle_ledger::audit::IndexedEvent;
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::state::GrantRecord;
use cradle_ledger::tx::{Category, Purpose, Scope};
use cradle_ledger::{
    ArchiveId, Consortium, Digest32, GrantId, Keypair, Limits, Member, Policy, Role,
};
use serde_json::{Value, json};

const T0_MS: u64 = 1_780_000_000_000;
const DAY_MS: u64 = 24 * 3600 * 1000;
const INSTALL: &str = "python3 -m pip install 'fhir.resources==6.4.0' (or source scripts/lib/env.sh and run cradle_install_fhir_validator)";

struct World {
    consortium: Consortium,
    hospital: Keypair,
    clinic: Keypair,
    patient: Keypair,
}

fn member(name: &str, role: Role, key: &Keypair, power: u64) -> Member {
    Member {
        name: name.into(),
        role,
        public_key: key.public_key(),
        x25519: key.x25519_public(),
        voting_power: power,
    }
}

fn world() -> World {
    let hospital = Keypair::from_seed(&[1; 32]);
    let clinic = Keypair::from_seed(&[3; 32]);
    let regulator = Keypair::from_seed(&[4; 32]);
    let patient = Keypair::from_seed(&[0xaa; 32]);
    let consortium = Consortium::new(
        cradle_ledger::crypto::sha256(b"fhir test chain"),
        T0_MS,
        vec![
            member("County Hospital", Role::Hospital, &hospital, 1),
            member("Township Clinic", Role::Clinic, &clinic, 1),
            member("Health Commission", Role::Regulator, &regulator, 0),
        ],
        Policy::default(),
        Limits::default(),
    )
    .unwrap();
    World {
        consortium,
        hospital,
        clinic,
        patient,
    }
}

fn event(
    w: &World,
    i: u64,
    accessor: &Keypair,
    purpose: Purpose,
    grant: Option<GrantId>,
    outcome: EventOutcome,
) -> IndexedEvent {
    IndexedEvent {
        index: i,
        event: AccessEvent {
            height: 20 + i,
            time_ms: T0_MS + i * 61_001,
            tx_hash: Digest32([i as u8; 32]),
            request_hash: Digest32([0x80 | i as u8; 32]),
            patient: w.patient.public_key(),
            archive: ArchiveId([0x33; 32]),
            category: Category::LabourAndDelivery,
            custodian: w.hospital.public_key(),
            accessor: accessor.public_key(),
            purpose,
            grant,
            outcome,
        },
    }
}

/// Permitted (by grant and by the patient herself), denied and break-glass reads.
fn audit(w: &World) -> Value {
    let events = [
        event(
            w,
            0,
            &w.clinic,
            Purpose::Treat,
            Some(GrantId([0x44; 32])),
            EventOutcome::Permitted,
        ),
        event(
            w,
            1,
            &w.patient,
            Purpose::PatientRequest,
            None,
            EventOutcome::Permitted,
        ),
        event(
            w,
            2,
            &w.clinic,
            Purpose::Research,
            None,
            EventOutcome::Denied {
                reason: DenialReason::PurposeNotCovered,
            },
        ),
        event(
            w,
            3,
            &w.clinic,
            Purpose::EmergencyTreat,
            None,
            EventOutcome::BreakGlass,
        ),
    ];
    audit_bundle(&events, &w.consortium, &hex::encode(w.consortium.chain_id))
}

fn grant(w: &World, scope: Scope, revoked_at_ms: Option<u64>) -> GrantRecord {
    GrantRecord {
        patient: w.patient.public_key(),
        grantee: w.clinic.public_key(),
        scope,
        purposes: BoundedVec::new(vec![Purpose::Treat, Purpose::EmergencyTreat]).unwrap(),
        valid_from_ms: T0_MS,
        expires_at_ms: T0_MS + 30 * DAY_MS,
        granted_at_ms: T0_MS,
        granted_height: 3,
        revoked_at_ms,
        revoked_height: revoked_at_ms.map(|_| 7),
    }
}

/// An active grant by category, a revoked one over everything and an active one by archive id.
fn consents(w: &World) -> Value {
    let grants = [
        (
            GrantId([1; 32]),
            grant(
                w,
                Scope::Categories(
                    BoundedVec::new(vec![Category::PrenatalVisit, Category::Ultrasound]).unwrap(),
                ),
                None,
            ),
        ),
        (GrantId([2; 32]), grant(w, Scope::All, Some(T0_MS + DAY_MS))),
        (
            GrantId([3; 32]),
            grant(
                w,
                Scope::Archives(BoundedVec::new(vec![ArchiveId([0x33; 32])]).unwrap()),
                None,
            ),
        ),
    ];
    consent_resources(
        &w.patient.public_key(),
        &grants,
        &w.consortium,
        T0_MS + 2 * DAY_MS,
    )
}

fn validator() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts/lib/fhir_validate.py")
}

/// Runs the validator on `doc`; returns its exit code and its stdout and stderr together.
fn validate(doc: &Value) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resource.json");
    std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let out = match Command::new("python3").arg(validator()).arg(&path).output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run python3 ({e}): install python3, then {INSTALL}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(
        code, 3,
        "the FHIR validator is not installed: {INSTALL}\nvalidator said: {text}"
    );
    (code, text)
}

fn assert_valid(doc: &Value, resources: usize) {
    let (code, text) = validate(doc);
    assert_eq!(
        (code, text.trim()),
        (0, format!("ok: {resources} resources").as_str()),
        "document:\n{}",
        serde_json::to_string_pretty(doc).unwrap()
    );
}

fn assert_rejected(doc: &Value, needle: &str) {
    let (code, text) = validate(doc);
    assert_eq!(code, 1, "wanted a rejection naming {needle:?}, got: {text}");
    assert!(
        text.contains(needle),
        "wanted {needle:?} in the validator's complaint, got: {text}"
    );
}

#[test]
fn audit_bundle_with_permitted_denied_and_break_glass_events_is_valid_r4() {
    let w = world();
    let bundle = audit(&w);
    assert_eq!(bundle["entry"].as_array().unwrap().len(), 4);
    assert_valid(&bundle, 5);
}

#[test]
fn consent_bundle_with_active_and_revoked_grants_is_valid_r4() {
    let w = world();
    let bundle = consents(&w);
    let statuses: Vec<&Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"]["status"])
        .collect();
    assert_eq!(
        statuses,
        [&json!("active"), &json!("inactive"), &json!("active")]
    );
    assert_valid(&bundle, 4);
}

#[test]
fn validator_rejects_an_audit_event_without_recorded() {
    let w = world();
    let mut bundle = audit(&w);
    bundle["entry"][2]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("recorded");
    assert_rejected(
        &bundle,
        &format!("entry[2] AuditEvent/access-{}: recorded", "02".repeat(16)),
    );
}

#[test]
fn validator_rejects_a_bad_outcome_code_and_a_misspelt_element() {
    let w = world();
    let mut bundle = audit(&w);
    bundle["entry"][0]["resource"]["outcome"] = json!("99");
    assert_rejected(&bundle, "outcome: '99'");

    let mut bundle = audit(&w);
    let ev = bundle["entry"][3]["resource"].as_object_mut().unwrap();
    let desc = ev.remove("outcomeDesc").unwrap();
    ev.insert("outcomeDescription".into(), desc);
    assert_rejected(&bundle, "outcomeDescription: extra fields not permitted");
}

#[test]
fn validator_rejects_a_consent_without_policy_or_a_malformed_instant() {
    let w = world();
    let mut bundle = consents(&w);
    bundle["entry"][1]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("policyRule");
    assert_rejected(&bundle, "ppc-1");

    let mut bundle = consents(&w);
    bundle["entry"][0]["resource"]["provision"]["period"]["start"] = json!("28/05/2026");
    assert_rejected(&bundle, "provision.period.start: invalid datetime format");
}
