//! Clinicians on a real four-member localnet, through the `cradle` CLI: records are read by
//! people, each with her own key, and every access names the person, her role and her
//! institution. A mother's prenatal record is held by County Hospital 1; she grants Township
//! Clinic 1 (all its clinicians) and County Hospital 2 (obstetricians only).
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use cradle_tests::Cluster;
use cradle_tests::cli::{Clinician, clinician, cradle, mother_with_archive, ok, shared_record};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn json(out: Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

/// A refused command: exit 1 and `reason` on stderr; returns the stderr.
fn refused(out: Output, reason: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "expected {reason:?}: {stderr}");
    assert!(stderr.contains(reason), "expected {reason:?} in {stderr:?}");
    stderr
}

/// The access record a denial names.
fn access_tx_of(stderr: &str) -> String {
    let at = stderr
        .find("transaction ")
        .expect("a denial names its record");
    stderr[at + "transaction ".len()..]
        .chars()
        .take(64)
        .collect()
}

/// The committed access record's outcome and the clinician it names, as node 3 has it.
fn recorded(c: &Cluster, tx: &str) -> (String, Value) {
    let v = cradle_tests::cli::committed_tx(c, 3, tx, WAIT);
    let body = &v["tx"]["tx"]["body"];
    let outcome = match body["outcome"]["outcome"].as_str().unwrap() {
        "denied" => format!("denied:{}", body["outcome"]["reason"].as_str().unwrap()),
        other => other.to_string(),
    };
    (outcome, body["request"]["request"]["accessor"].clone())
}

struct Story<'a> {
    c: &'a Cluster,
    work: PathBuf,
    archive: String,
}

impl Story<'_> {
    /// `who` asks the custodian (County Hospital 1's node) for the archive.
    fn get(&self, who: &Path, purpose: &str, out: &str, extra: &[&str]) -> Output {
        let out = self.work.join(out);
        let mut args = vec![
            "archive",
            "get",
            &self.archive,
            "--purpose",
            purpose,
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        cradle(&self.c.nodes[0].api, who, &args)
    }
}

fn member_key(c: &Cluster, i: usize) -> PathBuf {
    c.nodes[i].home.join("node.key")
}

#[test]
fn records_are_read_by_people_and_every_access_names_them() {
    let c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    let work = c.dir.path().join("work");
    let record = shared_record("Karla_Kessler_eb2955c7-1c46-47bd-bffc-bae94824b629.json");
    let mother = mother_with_archive(&c, &work.join("mother"), 0, &record);
    let story = Story {
        c: &c,
        work: work.clone(),
        archive: mother.archive.clone(),
    };
    let staff = work.join("staff");
    let midwife = clinician(&c, &staff, 2, "midwife", "midwifery", "Wang Fang");
    let nurse = clinician(&c, &staff, 1, "nurse", "obstetrics", "Liu Yang");
    let obstetrician = clinician(&c, &staff, 1, "obstetrician", "obstetrics", "Zhang Wei");
    let admin = clinician(&c, &staff, 1, "administrator", "administration", "Zhao Lei");
    let emergency = clinician(
        &c,
        &staff,
        3,
        "emergency-physician",
        "emergency",
        "Chen Jing",
    );

    let grant = |grantee: &str, extra: &[&str]| {
        let mut args = vec![
            "consent",
            "grant",
            "--grantee",
            grantee,
            "--purpose",
            "TREAT",
            "--expires",
            "30d",
        ];
        args.extend_from_slice(extra);
        ok(cradle(&c.nodes[0].api, &mother.key, &args))
    };
    grant("Township Clinic 1", &[]);
    grant("County Hospital 2", &["--roles", "obstetrician"]);

    // The midwife of the granted clinic reads the record, decrypted with the key the custodian
    // re-wrapped for her inside the access record.
    let got = json(story.get(&midwife.key, "TREAT", "midwife.json", &[]));
    assert_eq!(got["outcome"], "permitted");
    assert_eq!(
        std::fs::read(work.join("midwife.json")).unwrap(),
        std::fs::read(&record).unwrap()
    );
    let v = cradle_tests::cli::committed_tx(&c, 3, got["access_tx"].as_str().unwrap(), WAIT);
    let key_for = &v["tx"]["tx"]["body"]["outcome"]["key_for_accessor"];
    assert!(
        key_for.is_string(),
        "the record carries her wrapped key: {v}"
    );

    // A nurse at County Hospital 2, whose grant names obstetricians only, is refused and the
    // refusal recorded with her key; the hospital's obstetrician reads; its administrator not.
    let err = refused(
        story.get(&nurse.key, "TREAT", "nurse.json", &[]),
        "the grant does not cover the clinician's role",
    );
    let (outcome, accessor) = recorded(&c, &access_tx_of(&err));
    assert_eq!(outcome, "denied:role_not_covered");
    assert_eq!(accessor.as_str().unwrap(), public_hex(&nurse));
    assert!(!work.join("nurse.json").exists());
    let got = json(story.get(&obstetrician.key, "TREAT", "ob.json", &[]));
    assert_eq!(got["outcome"], "permitted");
    refused(
        story.get(&admin.key, "TREAT", "admin.json", &[]),
        "the grant does not cover the clinician's role",
    );

    // The clinic's key is the institution's, not a person's: refused and recorded.
    let err = refused(
        story.get(&member_key(&c, 2), "TREAT", "clinic-key.json", &[]),
        "an institution's key cannot read records",
    );
    assert_eq!(
        recorded(&c, &access_tx_of(&err)).0,
        "denied:institution_key"
    );

    // Township Clinic 2's emergency physician has no grant (her clinic has none): a clinician's
    // key does not reach another institution's grant. She breaks the glass; the midwife may not.
    let err = refused(
        story.get(&emergency.key, "TREAT", "er-treat.json", &[]),
        "no grant covers this archive",
    );
    assert_eq!(recorded(&c, &access_tx_of(&err)).0, "denied:no_grant");
    let got = json(story.get(
        &emergency.key,
        "ETREAT",
        "er.json",
        &[
            "--justification",
            "antepartum haemorrhage, unconscious on arrival",
        ],
    ));
    assert_eq!(got["outcome"], "break_glass");
    refused(
        story.get(
            &midwife.key,
            "ETREAT",
            "midwife-glass.json",
            &["--justification", "bleeding"],
        ),
        "the clinician's role may not break the glass",
    );

    // The clinic retires its midwife: from the next block she is refused, and that is logged.
    ok(cradle(
        &c.nodes[2].api,
        &member_key(&c, 2),
        &["staff", "retire", midwife.public.to_str().unwrap()],
    ));
    // Her key is no one's any more: her client is refused at once, a fetch sent anyway too, and
    // neither writes anything into the mother's history.
    refused(
        story.get(&midwife.key, "TREAT", "retired.json", &[]),
        "suspended, retired or rotated out",
    );
    assert!(
        direct_fetch(&c, &midwife.key, &mother.archive)
            .contains("suspended, retired or rotated out")
    );

    // County Hospital 2's administrator (not the hospital's node key) replaces the
    // obstetrician's stolen laptop key; the old key is refused, the new one reads as her.
    let laptop = staff.join("zhang-wei-new.key");
    ok(Command::new(cradle_tests::cluster::bin("cradle").unwrap())
        .args(["keygen", "--out"])
        .arg(&laptop)
        .arg("--genesis")
        .arg(c.nodes[1].home.join("genesis.json"))
        .output()
        .unwrap());
    let laptop_pub = staff.join("zhang-wei-new.key.pub");
    ok(cradle(
        &c.nodes[1].api,
        &admin.key,
        &[
            "staff",
            "rotate-key",
            obstetrician.public.to_str().unwrap(),
            laptop_pub.to_str().unwrap(),
        ],
    ));
    refused(
        story.get(&obstetrician.key, "TREAT", "stolen.json", &[]),
        "suspended, retired or rotated out",
    );
    assert!(
        direct_fetch(&c, &obstetrician.key, &mother.archive)
            .contains("suspended, retired or rotated out")
    );
    assert_eq!(
        json(story.get(&laptop, "TREAT", "ob-new.json", &[]))["outcome"],
        "permitted"
    );

    // The administrator lists her hospital's staff with names; another institution and the
    // mother are refused the list.
    let list = json(cradle(
        &c.nodes[1].api,
        &admin.key,
        &["staff", "list", "--format", "json"],
    ));
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["directory"]["name"].as_str())
        .collect();
    for name in ["Liu Yang", "Zhang Wei", "Zhao Lei"] {
        assert!(names.contains(&name), "{name} missing from {list}");
    }
    refused(
        cradle(
            &c.nodes[1].api,
            &mother.key,
            &["staff", "list", "--institution", "County Hospital 2"],
        ),
        "answered only to the institution, its administrators and regulators",
    );

    // The mother's verified history lists each person who read or tried to read her records,
    // by role and by name, the names served to her by each clinician's own institution.
    let genesis = c.dir.path().join("net/genesis.json");
    let audit = |format: &str| {
        cradle(
            &c.nodes[3].api,
            &mother.key,
            &[
                "audit",
                "--patient",
                mother.public.to_str().unwrap(),
                "--verify",
                "--genesis",
                genesis.to_str().unwrap(),
                "--checkpoint",
                work.join("checkpoint.json").to_str().unwrap(),
                "--format",
                format,
            ],
        )
    };
    let history = json(audit("json"));
    let people: Vec<(String, String)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["staff"].is_null())
        .map(|e| {
            (
                e["staff"]["role"].as_str().unwrap().to_string(),
                e["staff"]["name"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    for (role, name) in [
        ("midwife", "Wang Fang"),
        ("nurse", "Liu Yang"),
        ("obstetrician", "Zhang Wei"),
        ("administrator", "Zhao Lei"),
        ("emergency-physician", "Chen Jing"),
    ] {
        assert!(
            people.contains(&(role.to_string(), name.to_string())),
            "{role} {name} missing from {people:?}"
        );
    }
    // The rotated key reads as the same person: one staff id for both of her keys.
    let ids: std::collections::BTreeSet<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["staff"]["name"] == "Zhang Wei")
        .map(|e| e["staff"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let table = ok(audit("table"));
    assert!(table.contains("emergency-physician Chen Jing"), "{table}");
    assert!(table.contains("BREAK-GLASS"), "{table}");

    // The regulator reviews the emergency access and sees who broke the glass.
    let regulator = c.dir.path().join("net/regulator/regulator.key");
    let glass = json(cradle(
        &c.nodes[3].api,
        &regulator,
        &[
            "audit",
            "--break-glass",
            "--verify",
            "--genesis",
            genesis.to_str().unwrap(),
            "--checkpoint",
            work.join("regulator-checkpoint.json").to_str().unwrap(),
            "--format",
            "json",
        ],
    ));
    let events = glass["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{glass}");
    assert_eq!(events[0]["staff"]["role"], "emergency-physician");
    assert_eq!(events[0]["staff"]["name"], "Chen Jing");
    assert_eq!(events[0]["institution"], "Township Clinic 2");

    // No name reaches a node's log or the ledger.
    for i in 0..4 {
        let log = c.log(i);
        for name in ["Wang Fang", "Zhang Wei", "Chen Jing"] {
            assert!(!log.contains(name), "node {i} logged {name}");
        }
    }
    let raw = c
        .client(3)
        .get_bytes(&format!("/v1/blocks/{}/raw", c.height(3).unwrap()))
        .unwrap();
    assert!(!raw.windows(9).any(|w| w == b"Wang Fang"));

    // The FHIR export names the user agent with her role beside her organization, and passes
    // an independent R4 validator.
    let fhir = ok(audit("fhir"));
    assert!(
        fhir.contains("humanuser") && fhir.contains("urn:cradle:staff-role"),
        "{fhir}"
    );
    assert!(fhir.contains("Chen Jing"), "{fhir}");
    let file = work.join("audit.fhir.json");
    std::fs::write(&file, &fhir).unwrap();
    let validator = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib/fhir_validate.py");
    let v = Command::new("python3")
        .arg(&validator)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "the export was rejected: {}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
}

fn public_hex(c: &Clinician) -> String {
    cradle_genesis::keyfile::read_key_file(&c.key)
        .unwrap()
        .public_key()
        .to_hex()
}
/// A fetch sent straight to the custodian's node with `key`'s signed request, as a client that
/// skips every check would: refused with its reason, and nothing recorded.
fn direct_fetch(c: &Cluster, key: &Path, archive: &str) -> String {
    let purpose = cradle_ledger::tx::Purpose::Treat;
    match cradle_tests::fetch::signed_fetch(c, 0, key, archive, purpose) {
        cradle_client::api::Fetched::Refused {
            status: 403,
            reason,
            access_tx: None,
            ..
        } => reason,
        cradle_client::api::Fetched::Refused {
            status,
            reason,
            access_tx,
            ..
        } => panic!("refused otherwise: {status} {reason} (recorded in {access_tx:?})"),
        cradle_client::api::Fetched::Stream(_) => panic!("released to an inactive clinician"),
    }
}
