//! FHIR R4 (4.0.1) export of the access log and of a patient's consents, for regulators and
//! patients whose tools speak FHIR rather than Cradle's own JSON.
//!
//! - [`audit_bundle`]: one `AuditEvent` per logged access, permitted, denied or break-glass;
//! - [`consent_resources`]: one `Consent` per grant a patient gave.
//!
//! What it promises: the output names keys, identifiers and member institutions only. The ledger
//! holds no patient names or health data, and neither does the export, but for one thing: a
//! break-glass justification, sealed on the ledger for the patient and the regulators, appears
//! in clear in their own export only, opened on their machine with their key. Everything is read from
//! committed records; nothing here reads the clock (the caller passes `now_ms`), so one input
//! always gives the same JSON.
//!
//! Identifiers use URN systems of their own (`urn:cradle:member`, `urn:cradle:patient`,
//! `urn:cradle:key`, `urn:cradle:archive`, `urn:cradle:grant`, `urn:cradle:tx`), and archives and
//! grants are also referenced as `DocumentReference/<archive-id>` and `Consent/<grant-id>`, so a
//! consumer can join the audit bundle with the consent bundle.

use cradle_ledger::access::EventOutcome;
use cradle_ledger::audit::IndexedEvent;
use cradle_ledger::staff::StaffRef;
use cradle_ledger::state::GrantRecord;
use cradle_ledger::tx::{Purpose, Scope};
use cradle_ledger::{Consortium, Digest32, GrantId, PublicKey};
use serde_json::{Value, json};

use crate::audit::{Justifications, Names};
use crate::session::justification::JustificationView;

/// DICOM controlled terminology: event types and audit participant role ids.
pub const SYSTEM_DICOM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// HL7 v3 ActReason: the PurposeOfUse codes, and BTG ("break the glass").
pub const SYSTEM_ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
pub const SYSTEM_MEMBER: &str = "urn:cradle:member";
pub const SYSTEM_PATIENT: &str = "urn:cradle:patient";
pub const SYSTEM_KEY: &str = "urn:cradle:key";
pub const SYSTEM_ARCHIVE: &str = "urn:cradle:archive";
pub const SYSTEM_GRANT: &str = "urn:cradle:grant";
pub const SYSTEM_TX: &str = "urn:cradle:tx";
pub const SYSTEM_CATEGORY: &str = "urn:cradle:category";
pub const SYSTEM_ROLE: &str = "urn:cradle:role";
/// A clinician's pseudonymous staff id.
pub const SYSTEM_STAFF: &str = "urn:cradle:staff";
/// A clinician's role.
pub const SYSTEM_STAFF_ROLE: &str = "urn:cradle:staff-role";
const SYSTEM_SECURITY_ROLE_TYPE: &str =
    "http://terminology.hl7.org/CodeSystem/extra-security-role-type";
const SYSTEM_ROLE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleClass";
/// The extension on a `Consent` that carries the moment the patient revoked it.
pub const EXTENSION_REVOKED_AT: &str = "urn:cradle:fhir:consent-revoked-at";

const SYSTEM_RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
const SYSTEM_SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const SYSTEM_ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const SYSTEM_OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const SYSTEM_LIFECYCLE: &str = "http://terminology.hl7.org/CodeSystem/dicom-audit-lifecycle";
const SYSTEM_RESOURCE_TYPES: &str = "http://hl7.org/fhir/resource-types";
const SYSTEM_PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const SYSTEM_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const SYSTEM_CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const SYSTEM_LOINC: &str = "http://loinc.org";

/// The latest moment a FHIR `instant` can spell (its year has four digits):
/// 9999-12-31T23:59:59.999Z. Later times are clamped to it rather than written invalid.
const INSTANT_MS_MAX: u64 = 253_402_300_799_999;
const DAY_MS: u64 = 86_400_000;

/// A FHIR R4 `collection` Bundle with one `AuditEvent` per logged access, in the order given.
///
/// `consortium` supplies the display names of member institutions; `chain_id_hex` becomes each
/// event's `source.site`, so events from different chains cannot be mistaken for each other.
pub fn audit_bundle(events: &[IndexedEvent], consortium: &Consortium, chain_id_hex: &str) -> Value {
    audit_bundle_with(
        events,
        consortium,
        chain_id_hex,
        &Justifications::new(),
        &Names::new(),
    )
}

/// [`audit_bundle`], each emergency access with its justification as the reader sees it (the
/// text for the patient and the regulators, that it is sealed for anyone else), as the
/// `cradle-justification` detail of the ledger-record entity; a clinician who asked is named in
/// her agent where the reader may know her name (`names`).
pub fn audit_bundle_with(
    events: &[IndexedEvent],
    consortium: &Consortium,
    chain_id_hex: &str,
    justifications: &Justifications,
    names: &Names,
) -> Value {
    let entries: Vec<Value> = events
        .iter()
        .map(|e| {
            let j = justifications.get(&e.event.tx_hash);
            json!({ "resource": audit_event(e, consortium, chain_id_hex, j, names) })
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": "collection", "entry": entries })
}

/// A FHIR R4 `collection` Bundle with one `Consent` per grant of `patient`, in the order given.
///
/// A grant is `inactive` once revoked or expired at `now_ms`, and `active` otherwise (including a
/// grant whose validity has not started yet: it is in force, for the period it states). Grants of
/// other patients in `grants` are left out.
pub fn consent_resources(
    patient: &PublicKey,
    grants: &[(GrantId, GrantRecord)],
    consortium: &Consortium,
    now_ms: u64,
) -> Value {
    let entries: Vec<Value> = grants
        .iter()
        .filter(|(_, g)| &g.patient == patient)
        .map(|(id, g)| json!({ "resource": consent(id, g, consortium, now_ms) }))
        .collect();
    json!({ "resourceType": "Bundle", "type": "collection", "entry": entries })
}

fn audit_event(
    logged: &IndexedEvent,
    consortium: &Consortium,
    chain_id_hex: &str,
    justification: Option<&JustificationView>,
    names: &Names,
) -> Value {
    let e = &logged.event;
    let text;
    let (outcome, outcome_desc) = match e.outcome {
        EventOutcome::Permitted => ("0", None),
        EventOutcome::BreakGlass => ("0", Some("emergency access without a grant (break-glass)")),
        EventOutcome::Denied { reason } => ("4", Some(reason.as_str())),
        EventOutcome::Reviewed { entry, decision } => {
            text = format!(
                "reviewed by the commission: {} (break-glass access {})",
                decision.code().replace('_', " "),
                entry.to_hex()
            );
            ("0", Some(text.as_str()))
        }
        EventOutcome::Rotated { new_key } => {
            text = format!("the patient rotated her keys: new key {}", new_key.to_hex());
            ("0", Some(text.as_str()))
        }
        EventOutcome::Recovered { new_key } => {
            text = format!(
                "a member recovered the patient (lost key): new key {}",
                new_key.to_hex()
            );
            ("0", Some(text.as_str()))
        }
    };
    // A key change reads nothing: it changes who may act for the patient.
    let (kind, subtype, action) = if e.outcome.is_key_change() {
        (
            coding(SYSTEM_DICOM, "110137", "User Security Attributes Changed"),
            coding(SYSTEM_RESTFUL_INTERACTION, "update", "update"),
            "U",
        )
    } else {
        (
            coding(SYSTEM_DICOM, "110110", "Patient Record"),
            coding(SYSTEM_RESTFUL_INTERACTION, "read", "read"),
            "R",
        )
    };
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": format!("access-{}", &e.tx_hash.to_hex()[..32]),
        "type": kind,
        "subtype": [subtype],
        "action": action,
        "recorded": instant(e.time_ms),
        "outcome": outcome,
        "purposeOfEvent": [concept(purpose_coding(e.purpose))],
        "agent": agents(logged, consortium, names),
        "source": {
            "site": chain_id_hex,
            // A key change has no custodian: the member or patient who signed it reports it.
            "observer": reference(
                if e.about_archive() { &e.custodian } else { &e.accessor },
                consortium,
                &e.patient,
            ),
            "type": [coding(SYSTEM_SOURCE_TYPE, "4", "Application Server")],
        },
        "entity": entities(logged, justification),
    });
    if let Some(desc) = outcome_desc {
        event["outcomeDesc"] = json!(desc);
    }
    // Break-glass is flagged on the resource itself, where access-control and audit tooling
    // look for security labels, as well as by the ETREAT purpose of event and of use.
    if e.outcome.is_break_glass() {
        event["meta"] = json!({
            "security": [coding(SYSTEM_ACT_REASON, "BTG", "break the glass")],
        });
    }
    event
}

/// Who took part: the requestor; for a clinician, her institution too (as IHE BALP carries
/// the user beside her organization); and the custodian.
fn agents(logged: &IndexedEvent, consortium: &Consortium, names: &Names) -> Vec<Value> {
    let e = &logged.event;
    let mut agents = Vec::with_capacity(3);
    match &e.staff {
        Some(s) => {
            agents.push(clinician_agent(logged, s, names));
            agents.push(json!({
                "type": concept(coding(SYSTEM_ROLE_CLASS, "PROV", "healthcare provider")),
                "who": member_or_key(&s.institution, consortium),
                "requestor": false,
            }));
        }
        None => agents.push(accessor_agent(logged, consortium)),
    }
    if e.about_archive() {
        agents.push(custodian_agent(&e.custodian, consortium));
    }
    agents
}

/// The clinician who asked: a human user, by her pseudonymous staff id and (where the reader
/// may know it) her name, with her role and the purpose she gave.
fn clinician_agent(logged: &IndexedEvent, s: &StaffRef, names: &Names) -> Value {
    let e = &logged.event;
    let mut who = json!({ "identifier": identifier(SYSTEM_STAFF, s.id.to_hex()) });
    if let Some(name) = names.get(&s.id) {
        who["display"] = json!(name);
    }
    json!({
        "type": concept(coding(SYSTEM_SECURITY_ROLE_TYPE, "humanuser", "human user")),
        "role": [concept(coding(SYSTEM_STAFF_ROLE, s.role.code(), s.role.code()))],
        "who": who,
        "altId": e.accessor.to_hex(),
        "requestor": true,
        "purposeOfUse": [concept(purpose_coding(e.purpose))],
    })
}

/// Who asked, when it was not a clinician: the patient herself, or an institution's key.
fn accessor_agent(logged: &IndexedEvent, consortium: &Consortium) -> Value {
    let e = &logged.event;
    let mut agent = json!({
        "type": concept(coding(SYSTEM_DICOM, "110152", "Destination Role ID")),
        "who": reference(&e.accessor, consortium, &e.patient),
        "requestor": true,
        "purposeOfUse": [concept(purpose_coding(e.purpose))],
    });
    if let Some(m) = consortium.member_by_any_key(&e.accessor) {
        agent["role"] = json!([concept(coding(
            SYSTEM_ROLE,
            m.role.as_str(),
            m.role.as_str()
        ))]);
    }
    agent
}

/// Who holds the archive and recorded the access.
fn custodian_agent(custodian: &PublicKey, consortium: &Consortium) -> Value {
    json!({
        "type": concept(coding(SYSTEM_DICOM, "110153", "Source Role ID")),
        "role": [concept(coding(SYSTEM_PARTICIPATION, "CST", "custodian"))],
        "who": member_or_key(custodian, consortium),
        "requestor": false,
    })
}

/// The patient, the archive, the consent used (if any) and the ledger record itself.
fn entities(logged: &IndexedEvent, justification: Option<&JustificationView>) -> Vec<Value> {
    let e = &logged.event;
    let archive = e.archive.to_hex();
    let mut out = vec![json!({
        "what": { "identifier": identifier(SYSTEM_PATIENT, e.patient.to_hex()) },
        "type": coding(SYSTEM_ENTITY_TYPE, "1", "Person"),
        "role": coding(SYSTEM_OBJECT_ROLE, "1", "Patient"),
    })];
    if e.about_archive() {
        out.push(json!({
            "what": {
                "reference": format!("DocumentReference/{archive}"),
                "identifier": identifier(SYSTEM_ARCHIVE, archive),
            },
            "type": coding(SYSTEM_RESOURCE_TYPES, "DocumentReference", "DocumentReference"),
            "role": coding(SYSTEM_OBJECT_ROLE, "4", "Domain Resource"),
            "lifecycle": coding(SYSTEM_LIFECYCLE, "6", "Access / Use"),
            "detail": [detail("cradle-archive-category", e.category.code())],
        }));
    }
    if let Some(grant) = e.grant {
        let grant = grant.to_hex();
        out.push(json!({
            "what": {
                "reference": format!("Consent/{grant}"),
                "identifier": identifier(SYSTEM_GRANT, grant),
            },
            "type": coding(SYSTEM_RESOURCE_TYPES, "Consent", "Consent"),
        }));
    }
    let mut details = vec![detail("cradle-tx-hash", &e.tx_hash.to_hex())];
    // Reviews and key changes carry no signed request: their request hash is all zeros.
    if e.request_hash != Digest32([0; 32]) {
        details.push(detail("cradle-request-hash", &e.request_hash.to_hex()));
    }
    details.push(detail("cradle-block-height", &e.height.to_string()));
    details.push(detail("cradle-log-index", &logged.index.to_string()));
    if let Some(j) = justification {
        details.push(detail("cradle-justification", &j.display()));
    }
    out.push(json!({
        "what": { "identifier": identifier(SYSTEM_TX, e.tx_hash.to_hex()) },
        "type": coding(SYSTEM_ENTITY_TYPE, "2", "System Object"),
        "description": "the ledger's access record",
        "detail": details,
    }));
    out
}

fn consent(id: &GrantId, g: &GrantRecord, consortium: &Consortium, now_ms: u64) -> Value {
    let inactive = g.revoked_at_ms.is_some() || now_ms >= g.expires_at_ms;
    let mut provision = json!({
        "type": "permit",
        "period": { "start": instant(g.valid_from_ms), "end": instant(g.expires_at_ms) },
        "actor": [{
            "role": concept(coding(SYSTEM_PARTICIPATION, "IRCP", "information recipient")),
            "reference": member_or_key(&g.grantee, consortium),
        }],
        "purpose": g.purposes.iter().map(|p| purpose_coding(*p)).collect::<Vec<_>>(),
    });
    match &g.scope {
        // No class and no data: the provision covers all of the patient's archives.
        Scope::All => {}
        Scope::Categories(cs) => {
            provision["class"] = cs
                .iter()
                .map(|c| coding(SYSTEM_CATEGORY, c.code(), c.code()))
                .collect();
        }
        Scope::Archives(ids) => {
            provision["data"] = ids
                .iter()
                .map(|a| {
                    json!({
                        "meaning": "instance",
                        "reference": {
                            "reference": format!("DocumentReference/{}", a.to_hex()),
                            "identifier": identifier(SYSTEM_ARCHIVE, a.to_hex()),
                        },
                    })
                })
                .collect();
        }
    }
    let patient = json!({ "identifier": identifier(SYSTEM_PATIENT, g.patient.to_hex()) });
    let mut consent = json!({
        "resourceType": "Consent",
        "id": id.to_hex(),
        "identifier": [identifier(SYSTEM_GRANT, id.to_hex())],
        "status": if inactive { "inactive" } else { "active" },
        "scope": concept(coding(SYSTEM_CONSENT_SCOPE, "patient-privacy", "Privacy Consent")),
        "category": [concept(coding(SYSTEM_LOINC, "59284-0", "Patient Consent"))],
        "patient": patient.clone(),
        "dateTime": instant(g.granted_at_ms),
        // The patient grants and the grantee agrees to honour it: R4 names both as performers.
        "performer": [patient, member_or_key(&g.grantee, consortium)],
        "policyRule": concept(coding(SYSTEM_ACT_CODE, "OPTIN", "opt-in")),
        "provision": provision,
    });
    // The provision keeps the period the patient granted; the revocation is a separate fact.
    if let Some(at) = g.revoked_at_ms {
        consent["extension"] =
            json!([{ "url": EXTENSION_REVOKED_AT, "valueDateTime": instant(at) }]);
    }
    consent
}

/// A reference to a key: the member institution it belongs to, the event's patient, or a bare
/// key (a clinician's, say). Only institutions get a display name.
fn reference(key: &PublicKey, consortium: &Consortium, patient: &PublicKey) -> Value {
    if consortium.member_by_any_key(key).is_none() && key == patient {
        return json!({ "identifier": identifier(SYSTEM_PATIENT, key.to_hex()) });
    }
    member_or_key(key, consortium)
}

fn member_or_key(key: &PublicKey, consortium: &Consortium) -> Value {
    match consortium.member_by_any_key(key) {
        Some(m) => json!({
            "identifier": identifier(SYSTEM_MEMBER, key.to_hex()),
            "display": m.name,
        }),
        None => json!({ "identifier": identifier(SYSTEM_KEY, key.to_hex()) }),
    }
}

fn purpose_coding(p: Purpose) -> Value {
    let display = match p {
        Purpose::Treat => "treatment",
        Purpose::EmergencyTreat => "Emergency Treatment",
        Purpose::Research => "healthcare research",
        Purpose::PublicHealth => "public health",
        Purpose::Operations => "healthcare operations",
        Purpose::Payment => "healthcare payment",
        Purpose::PatientRequest => "patient requested",
        Purpose::CareCoordination => "coordination of care",
        Purpose::Oversight => "health system administration",
    };
    coding(SYSTEM_ACT_REASON, p.code(), display)
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

fn concept(coding: Value) -> Value {
    json!({ "coding": [coding] })
}

fn identifier(system: &str, value: String) -> Value {
    json!({ "system": system, "value": value })
}

fn detail(kind: &str, value: &str) -> Value {
    json!({ "type": kind, "valueString": value })
}

/// Milliseconds since the Unix epoch as a FHIR `instant`: UTC, millisecond precision,
/// e.g. `2026-05-28T20:26:40.000Z`. Times past the year 9999 are clamped to its last millisecond.
pub fn instant(ms: u64) -> String {
    let ms = ms.min(INSTANT_MS_MAX);
    let (year, month, day) = civil_from_days(ms / DAY_MS);
    let in_day = ms % DAY_MS;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01: Howard Hinnant's `civil_from_days`,
/// restricted to non-negative days (the ledger has no times before the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cradle_ledger::access::DenialReason;
    use cradle_ledger::codec::BoundedVec;
    use cradle_ledger::tx::Category;
    use cradle_ledger::{ArchiveId, Digest32, Keypair, Policy};
    use cradle_testkit::{
        EVENT_ARCHIVE, GENESIS_MS as T0_MS, TestConsortium, access_event, grant_record,
        outsider_key, patient_key,
    };

    /// The test kit's consortium, with the names these tests use, and one patient.
    struct Fixture {
        consortium: Consortium,
        hospital: Keypair,
        clinic: Keypair,
        regulator: Keypair,
        patient: Keypair,
    }

    fn fixture() -> Fixture {
        let t = TestConsortium::new(Policy::default());
        Fixture {
            consortium: t.consortium,
            hospital: t.hospital_a,
            clinic: t.clinic,
            regulator: t.regulator,
            patient: patient_key(0),
        }
    }

    /// Event 3 of the log: `accessor` read the patient's ultrasound held by the hospital, at
    /// height 23, 183.003 s after genesis, by transaction `[3; 32]`.
    fn event(
        f: &Fixture,
        accessor: &Keypair,
        purpose: Purpose,
        outcome: EventOutcome,
    ) -> IndexedEvent {
        access_event(
            3,
            &f.patient.public_key(),
            &f.hospital.public_key(),
            &accessor.public_key(),
            purpose,
            outcome,
        )
    }

    #[test]
    fn a_justification_is_a_detail_of_the_ledger_record_entity() {
        let f = fixture();
        let e = event(
            &f,
            &f.clinic,
            Purpose::EmergencyTreat,
            EventOutcome::BreakGlass,
        );
        let plain = audit_bundle(std::slice::from_ref(&e), &f.consortium, "ab");
        assert!(!plain.to_string().contains("cradle-justification"));
        let mut j = Justifications::new();
        j.insert(
            e.event.tx_hash,
            JustificationView::Read("placenta praevia".into()),
        );
        let bundle = audit_bundle_with(&[e], &f.consortium, "ab", &j, &Names::new());
        let ev = only_event(&bundle);
        let record = ev["entity"].as_array().unwrap().last().unwrap();
        let detail = record["detail"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["type"] == "cradle-justification")
            .unwrap();
        assert_eq!(detail["valueString"], "placenta praevia");
    }

    fn only_event(bundle: &Value) -> &Value {
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "collection");
        let entries = bundle["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "bundle: {bundle}");
        &entries[0]["resource"]
    }

    fn detail_value<'a>(event: &'a Value, kind: &str) -> &'a Value {
        event["entity"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["detail"].as_array().into_iter().flatten())
            .find(|d| d["type"] == kind)
            .map(|d| &d["valueString"])
            .unwrap_or_else(|| panic!("no detail {kind} in {event}"))
    }

    #[test]
    fn a_recovery_is_a_change_of_her_security_attributes_not_a_read() {
        let f = fixture();
        let mut e = event(
            &f,
            &f.clinic,
            Purpose::PatientRequest,
            EventOutcome::Recovered {
                new_key: patient_key(9).public_key(),
            },
        );
        // As the ledger logs it: no archive, no custodian.
        e.event.archive = cradle_ledger::access::NO_ARCHIVE;
        e.event.custodian = cradle_ledger::PublicKey([0; 32]);
        e.event.request_hash = Digest32([0; 32]);
        let bundle = audit_bundle(std::slice::from_ref(&e), &f.consortium, "ab");
        let r = &bundle["entry"][0]["resource"];
        assert_eq!(r["action"], "U");
        assert_eq!(r["type"]["code"], "110137");
        assert_eq!(r["subtype"][0]["code"], "update");
        let desc = r["outcomeDesc"].as_str().unwrap();
        assert!(desc.contains("recovered the patient"), "{desc}");
        assert!(
            desc.contains(&patient_key(9).public_key().to_hex()),
            "{desc}"
        );
        // No record was read: no DocumentReference, and no custodian agent of zeros.
        let text = r.to_string();
        assert!(!text.contains("DocumentReference"), "{text}");
        assert!(!text.contains(&"0".repeat(64)), "{text}");
        assert_eq!(r["agent"].as_array().map(Vec::len), Some(1), "{text}");
    }

    #[test]
    fn instant_formats_utc_with_milliseconds() {
        assert_eq!(instant(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(instant(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(instant(1_780_000_001_234), "2026-05-28T20:26:41.234Z");
        assert_eq!(instant(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(instant(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn civil_from_days_agrees_with_a_day_by_day_count() {
        let mut expected = (1970u64, 1u64, 1u64);
        for days in 0..(200 * 366) {
            assert_eq!(civil_from_days(days), expected, "days {days}");
            let (y, m, d) = expected;
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            expected = if d < len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn permitted_read_by_a_grantee_names_agents_entities_and_the_consent_used() {
        let f = fixture();
        let mut logged = event(&f, &f.clinic, Purpose::Treat, EventOutcome::Permitted);
        logged.event.grant = Some(GrantId([0x44; 32]));
        let bundle = audit_bundle(&[logged], &f.consortium, "07ab");
        let ev = only_event(&bundle);

        assert_eq!(ev["resourceType"], "AuditEvent");
        assert_eq!(ev["id"], format!("access-{}", "03".repeat(16)));
        assert_eq!(ev["type"]["system"], SYSTEM_DICOM);
        assert_eq!(ev["type"]["code"], "110110");
        assert_eq!(ev["subtype"][0]["code"], "read");
        assert_eq!(ev["action"], "R");
        assert_eq!(ev["recorded"], "2026-05-28T20:29:43.003Z");
        assert_eq!(ev["outcome"], "0");
        assert!(ev.get("outcomeDesc").is_none());
        assert!(ev.get("meta").is_none(), "no break-glass label: {ev}");
        assert_eq!(
            ev["purposeOfEvent"][0]["coding"][0]["system"],
            SYSTEM_ACT_REASON
        );
        assert_eq!(ev["purposeOfEvent"][0]["coding"][0]["code"], "TREAT");

        let requestor = &ev["agent"][0];
        assert_eq!(requestor["requestor"], true);
        assert_eq!(requestor["who"]["identifier"]["system"], SYSTEM_MEMBER);
        assert_eq!(
            requestor["who"]["identifier"]["value"],
            f.clinic.public_key().to_hex()
        );
        assert_eq!(requestor["who"]["display"], "Township Clinic");
        assert_eq!(requestor["role"][0]["coding"][0]["code"], "clinic");
        assert_eq!(requestor["purposeOfUse"][0]["coding"][0]["code"], "TREAT");
        let custodian = &ev["agent"][1];
        assert_eq!(custodian["requestor"], false);
        assert_eq!(custodian["role"][0]["coding"][0]["code"], "CST");
        assert_eq!(custodian["who"]["display"], "County Hospital");

        assert_eq!(ev["source"]["site"], "07ab");
        assert_eq!(
            ev["source"]["observer"]["identifier"]["value"],
            f.hospital.public_key().to_hex()
        );
        assert_eq!(ev["source"]["observer"]["display"], "County Hospital");

        let entity = ev["entity"].as_array().unwrap();
        assert_eq!(
            entity.len(),
            4,
            "patient, archive, consent, ledger record: {ev}"
        );
        assert_eq!(entity[0]["what"]["identifier"]["system"], SYSTEM_PATIENT);
        assert_eq!(
            entity[0]["what"]["identifier"]["value"],
            f.patient.public_key().to_hex()
        );
        assert_eq!(entity[0]["role"]["code"], "1");
        let archive = EVENT_ARCHIVE.to_hex();
        assert_eq!(
            entity[1]["what"]["reference"],
            format!("DocumentReference/{archive}")
        );
        assert_eq!(entity[1]["what"]["identifier"]["value"], archive);
        assert_eq!(detail_value(ev, "cradle-archive-category"), "ultrasound");
        let grant = GrantId([0x44; 32]).to_hex();
        assert_eq!(entity[2]["what"]["reference"], format!("Consent/{grant}"));
        assert_eq!(
            detail_value(ev, "cradle-tx-hash"),
            &Digest32([3; 32]).to_hex()
        );
        assert_eq!(detail_value(ev, "cradle-log-index"), "3");
        assert_eq!(detail_value(ev, "cradle-block-height"), "23");
    }

    #[test]
    fn denied_read_has_minor_failure_outcome_and_the_reason() {
        let f = fixture();
        let reason = DenialReason::GrantRevoked;
        let logged = event(
            &f,
            &f.clinic,
            Purpose::Research,
            EventOutcome::Denied { reason },
        );
        let bundle = audit_bundle(&[logged], &f.consortium, "07ab");
        let ev = only_event(&bundle);
        assert_eq!(ev["outcome"], "4");
        assert_eq!(ev["outcomeDesc"], reason.as_str());
        assert_eq!(ev["purposeOfEvent"][0]["coding"][0]["code"], "HRESCH");
        assert!(ev.get("meta").is_none());
        // No grant was used, so no consent entity.
        let refs: Vec<_> = ev["entity"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["what"]["reference"])
            .collect();
        assert!(
            !refs
                .iter()
                .any(|r| r.as_str().is_some_and(|r| r.starts_with("Consent/")))
        );
    }

    #[test]
    fn break_glass_is_labelled_btg_with_emergency_purpose() {
        let f = fixture();
        let logged = event(
            &f,
            &f.clinic,
            Purpose::EmergencyTreat,
            EventOutcome::BreakGlass,
        );
        let bundle = audit_bundle(&[logged], &f.consortium, "07ab");
        let ev = only_event(&bundle);
        assert_eq!(ev["outcome"], "0");
        let label = &ev["meta"]["security"][0];
        assert_eq!(label["system"], SYSTEM_ACT_REASON);
        assert_eq!(label["code"], "BTG");
        assert_eq!(ev["purposeOfEvent"][0]["coding"][0]["code"], "ETREAT");
        assert_eq!(
            ev["agent"][0]["purposeOfUse"][0]["coding"][0]["code"],
            "ETREAT"
        );
        assert!(ev["outcomeDesc"].as_str().unwrap().contains("break-glass"));
    }

    #[test]
    fn accessors_outside_the_consortium_are_keys_without_names() {
        let f = fixture();
        let clinician = outsider_key();
        let by_clinician = event(&f, &clinician, Purpose::Treat, EventOutcome::Permitted);
        let by_patient = event(
            &f,
            &f.patient,
            Purpose::PatientRequest,
            EventOutcome::Permitted,
        );
        let bundle = audit_bundle(&[by_clinician, by_patient], &f.consortium, "07ab");
        let who = &bundle["entry"][0]["resource"]["agent"][0]["who"];
        assert_eq!(who["identifier"]["system"], SYSTEM_KEY);
        assert_eq!(who["identifier"]["value"], clinician.public_key().to_hex());
        assert!(who.get("display").is_none());
        let who = &bundle["entry"][1]["resource"]["agent"][0]["who"];
        assert_eq!(who["identifier"]["system"], SYSTEM_PATIENT);
        assert!(who.get("display").is_none());
    }

    /// The patient's grant to the clinic for treatment and care coordination, for 30 days.
    fn grant(f: &Fixture, scope: Scope, revoked_at_ms: Option<u64>) -> GrantRecord {
        grant_record(
            &f.patient.public_key(),
            &f.clinic.public_key(),
            scope,
            &[Purpose::Treat, Purpose::CareCoordination],
            revoked_at_ms,
        )
    }

    #[test]
    fn consent_carries_required_r4_elements_and_the_provision() {
        let f = fixture();
        let scope = Scope::Categories(BoundedVec::new(vec![Category::Ultrasound]).unwrap());
        let id = GrantId([0x55; 32]);
        let bundle = consent_resources(
            &f.patient.public_key(),
            &[(id, grant(&f, scope, None))],
            &f.consortium,
            T0_MS + DAY_MS,
        );
        let c = only_event(&bundle);
        assert_eq!(c["resourceType"], "Consent");
        assert_eq!(c["id"], id.to_hex());
        assert_eq!(c["status"], "active");
        assert_eq!(c["scope"]["coding"][0]["code"], "patient-privacy");
        assert_eq!(c["category"][0]["coding"][0]["system"], SYSTEM_LOINC);
        assert_eq!(c["category"][0]["coding"][0]["code"], "59284-0");
        assert_eq!(c["policyRule"]["coding"][0]["code"], "OPTIN");
        assert_eq!(
            c["patient"]["identifier"]["value"],
            f.patient.public_key().to_hex()
        );
        assert_eq!(c["dateTime"], instant(T0_MS));
        assert_eq!(c["performer"][1]["display"], "Township Clinic");
        let p = &c["provision"];
        assert_eq!(p["type"], "permit");
        assert_eq!(p["period"]["start"], instant(T0_MS));
        assert_eq!(p["period"]["end"], instant(T0_MS + 30 * DAY_MS));
        let purposes: Vec<_> = p["purpose"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["code"].clone())
            .collect();
        assert_eq!(purposes, vec![json!("TREAT"), json!("COC")]);
        assert_eq!(p["actor"][0]["role"]["coding"][0]["code"], "IRCP");
        assert_eq!(
            p["actor"][0]["reference"]["identifier"]["value"],
            f.clinic.public_key().to_hex()
        );
        assert_eq!(p["class"][0]["system"], SYSTEM_CATEGORY);
        assert_eq!(p["class"][0]["code"], "ultrasound");
        assert!(c.get("extension").is_none());
    }

    #[test]
    fn revoked_or_expired_consents_are_inactive_and_revocation_is_recorded() {
        let f = fixture();
        let revoked_at = T0_MS + 2 * DAY_MS;
        let archive = ArchiveId([0x66; 32]);
        let grants = [
            (GrantId([1; 32]), grant(&f, Scope::All, Some(revoked_at))),
            (
                GrantId([2; 32]),
                grant(
                    &f,
                    Scope::Archives(BoundedVec::new(vec![archive]).unwrap()),
                    None,
                ),
            ),
        ];
        let now = T0_MS + 3 * DAY_MS;
        let bundle = consent_resources(&f.patient.public_key(), &grants, &f.consortium, now);
        let revoked = &bundle["entry"][0]["resource"];
        assert_eq!(revoked["status"], "inactive");
        assert_eq!(revoked["extension"][0]["url"], EXTENSION_REVOKED_AT);
        assert_eq!(
            revoked["extension"][0]["valueDateTime"],
            instant(revoked_at)
        );
        assert!(
            revoked["provision"].get("class").is_none()
                && revoked["provision"].get("data").is_none()
        );
        let by_archive = &bundle["entry"][1]["resource"];
        assert_eq!(by_archive["status"], "active");
        assert_eq!(by_archive["provision"]["data"][0]["meaning"], "instance");
        assert_eq!(
            by_archive["provision"]["data"][0]["reference"]["reference"],
            format!("DocumentReference/{}", archive.to_hex())
        );

        let later = consent_resources(
            &f.patient.public_key(),
            &grants[1..],
            &f.consortium,
            T0_MS + 30 * DAY_MS,
        );
        assert_eq!(
            later["entry"][0]["resource"]["status"], "inactive",
            "expired"
        );
    }

    #[test]
    fn consents_of_other_patients_are_left_out() {
        let f = fixture();
        let mut other = grant(&f, Scope::All, None);
        other.patient = f.regulator.public_key();
        let bundle = consent_resources(
            &f.patient.public_key(),
            &[(GrantId([3; 32]), other)],
            &f.consortium,
            T0_MS,
        );
        assert_eq!(bundle["entry"].as_array().unwrap().len(), 0);
    }
}
