//! The FHIR export checked by an independent validator: `scripts/lib/fhir_validate.py`, which
//! parses every resource with the FHIR R4 models of the Python package fhir.resources.
//!
//! The validator must be installed (`scripts/lib/env.sh` installs it); a missing python3 or
//! fhir.resources fails these tests with the command that installs it, rather than skipping.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use cradle_client::fhir::{audit_bundle, consent_resources};
use cradle_ledger::access::{DenialReason, EventOutcome};
use cradle_ledger::audit::IndexedEvent;
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::state::GrantRecord;
use cradle_ledger::tx::{Category, Purpose, Scope};
use cradle_ledger::{Consortium, GrantId, Keypair, Policy};
use cradle_testkit::{
    DAY_MS, EVENT_ARCHIVE, GENESIS_MS as T0_MS, TestConsortium, access_event, grant_record,
    patient_key,
};
use serde_json::{Value, json};
const INSTALL: &str = "python3 -m pip install 'fhir.resources==6.4.0' (or source scripts/lib/env.sh and run cradle_install_fhir_validator)";

/// The test kit's consortium and one patient of the hospital.
struct World {
    consortium: Consortium,
    hospital: Keypair,
    clinic: Keypair,
    patient: Keypair,
}

fn world() -> World {
    let t = TestConsortium::new(Policy::default());
    World {
        consortium: t.consortium,
        hospital: t.hospital_a,
        clinic: t.clinic,
        patient: patient_key(0),
    }
}

/// Event `i` of the log: `accessor` read the patient's archive held by the hospital.
fn event(
    w: &World,
    i: u8,
    accessor: &Keypair,
    purpose: Purpose,
    grant: Option<GrantId>,
    outcome: EventOutcome,
) -> IndexedEvent {
    let mut logged = access_event(
        i,
        &w.patient.public_key(),
        &w.hospital.public_key(),
        &accessor.public_key(),
        purpose,
        outcome,
    );
    logged.event.grant = grant;
    logged
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
    grant_record(
        &w.patient.public_key(),
        &w.clinic.public_key(),
        scope,
        &[Purpose::Treat, Purpose::EmergencyTreat],
        revoked_at_ms,
    )
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
                Scope::Archives(BoundedVec::new(vec![EVENT_ARCHIVE]).unwrap()),
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
