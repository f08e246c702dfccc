//! A mother's keys with real processes on a running 4-member localnet: she loses her phone,
//! the hospital that holds her record recovers her with a key made on her new phone, and she
//! reads her record with the new key while the lost one is refused.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use cradle_tests::Cluster;
use cradle_tests::cli::{cradle, keygen, mother_with_archive, ok, shared_record};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const RECORD: &str = "Nona_Kris_5f72d2e8-c56b-4288-a829-c1c1ebfad423.json";

fn get(c: &Cluster, key: &Path, archive: &str, out: &Path) -> std::process::Output {
    cradle(
        &c.nodes[0].api,
        key,
        &[
            "archive",
            "get",
            archive,
            "--purpose",
            "PATRQT",
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
        ],
    )
}

#[test]
fn a_mother_who_lost_her_key_is_recovered_and_reads_her_record_with_the_new_one() {
    let c = Cluster::start(4, &[]).unwrap();
    c.wait_height(0, 2, WAIT).unwrap();
    let work = c.dir.path().join("work");
    let record = shared_record(RECORD);
    let mother = mother_with_archive(&c, &work, 0, &record);
    let before = work.join("before.json");
    ok(get(&c, &mother.key, &mother.archive, &before));
    assert_eq!(
        std::fs::read(&before).unwrap(),
        std::fs::read(&record).unwrap()
    );

    // Her new phone makes a key and its proof; the hospital, with her present, recovers her.
    let phone = work.join("phone.key");
    keygen(&c.nodes[0].home.join("genesis.json"), &phone);
    let hospital = c.nodes[0].home.join("node.key");
    let recovered: Value = serde_json::from_str(&ok(cradle(
        &c.nodes[0].api,
        &hospital,
        &[
            "patient",
            "recover",
            mother.public.to_str().unwrap(),
            &format!("{}.pub", phone.display()),
            "--format",
            "json",
        ],
    )))
    .unwrap();
    assert_eq!(
        recovered["rewrapped"].as_array().map(Vec::len),
        Some(1),
        "{recovered}"
    );

    // The new key reads her record, decrypted with her new X25519 key.
    let after = work.join("after.json");
    ok(get(&c, &phone, &mother.archive, &after));
    assert_eq!(
        std::fs::read(&after).unwrap(),
        std::fs::read(&record).unwrap()
    );

    // The lost key is refused: by the API, and by the ledger for anything it signs.
    let lost = work.join("lost.json");
    let out = get(&c, &mother.key, &mother.archive, &lost);
    assert!(!out.status.success(), "the lost key still reads");
    assert!(!lost.exists());
    let out = cradle(
        &c.nodes[1].api,
        &mother.key,
        &[
            "consent",
            "grant",
            "--grantee",
            "County Hospital 2",
            "--purpose",
            "TREAT",
            "--scope",
            "all",
            "--expires",
            "30d",
        ],
    );
    assert!(!out.status.success(), "the lost key still grants");

    // The recovery is in her history for her to see, and in the regulators' view.
    let regulator = c.dir.path().join("net/regulator/regulator.key");
    let key = mother.public.to_str().unwrap();
    let id = serde_json::from_str::<Value>(&std::fs::read_to_string(&mother.public).unwrap())
        .unwrap()["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    for (who, by) in [(&phone, 1), (&regulator, 2)] {
        let v = c
            .anonymous(by)
            .signed_by(
                &cradle_genesis::keyfile::read_key_file(who).unwrap(),
                c.genesis.chain_id(),
            )
            .get_json(&format!("/v1/patients/{id}/keys"))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let changes = v["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{v}");
        assert!(changes[0]["recovered_by"].is_string(), "{v}");
    }

    // Later she moves to a tablet herself, signing with the phone's key; the hospital's node
    // sees the rotation committed and wraps her archive key again for the tablet by itself, and
    // the tablet reads her record while the phone cannot.
    let tablet = work.join("tablet.key");
    keygen(&c.nodes[0].home.join("genesis.json"), &tablet);
    let rotated: Value = serde_json::from_str(&ok(cradle(
        &c.nodes[2].api,
        &phone,
        &[
            "patient",
            "rotate-key",
            &format!("{}.pub", tablet.display()),
            "--format",
            "json",
        ],
    )))
    .unwrap();
    assert_eq!(rotated["patient"].as_str(), Some(id.as_str()), "{rotated}");
    let on_tablet = work.join("tablet.json");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let out = get(&c, &tablet, &mother.archive, &on_tablet);
        if out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the custodian never re-wrapped for the tablet: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        std::fs::read(&on_tablet).unwrap(),
        std::fs::read(&record).unwrap()
    );
    assert!(
        c.log(0)
            .contains("re-wrapped archive keys for a patient's new key"),
        "{}",
        c.log_tail(0, 30)
    );
    // The command that does it by hand (for key changes a node missed) still works.
    let rewrapped: Value = serde_json::from_str(&ok(cradle(
        &c.nodes[0].api,
        &hospital,
        &["patient", "rewrap", &id, "--format", "json"],
    )))
    .unwrap();
    assert_eq!(rewrapped["rewrapped"].as_array().map(Vec::len), Some(1));
    let out = get(&c, &phone, &mother.archive, &work.join("phone-again.json"));
    assert!(
        !out.status.success(),
        "the phone's key still reads after the rotation"
    );

    // Both changes are entries of her verified history, proven from genesis: a node cannot
    // hide that a member bound her identity to a new key. The commission's verified log holds
    // the recovery (not her own rotation).
    let genesis = c.dir.path().join("net/genesis.json");
    let verified = |key: &Path, subject: &[&str], by: usize| -> Vec<Value> {
        let mut args = vec!["audit"];
        args.extend_from_slice(subject);
        let checkpoint = work.join(format!("checkpoint-{by}.json"));
        args.extend_from_slice(&[
            "--verify",
            "--genesis",
            genesis.to_str().unwrap(),
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--format",
            "json",
        ]);
        let v: Value = serde_json::from_str(&ok(cradle(&c.nodes[by].api, key, &args))).unwrap();
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| !e["key_change"].is_null())
            .map(|e| e["key_change"].clone())
            .collect()
    };
    let pub_key = |file: &Path| {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        v["public_key"].as_str().unwrap().to_string()
    };
    let phone_pub = pub_key(&phone.with_extension("key.pub"));
    let tablet_pub = pub_key(&tablet.with_extension("key.pub"));
    let hers = verified(&tablet, &["--patient", key], 3);
    assert_eq!(
        hers,
        vec![
            serde_json::json!({ "by": "member", "new_key": phone_pub }),
            serde_json::json!({ "by": "patient", "new_key": tablet_pub }),
        ],
        "her verified history"
    );
    let commission = verified(&regulator, &["--break-glass"], 2);
    assert_eq!(
        commission,
        vec![serde_json::json!({ "by": "member", "new_key": phone_pub })],
        "the commission's verified log"
    );
}
