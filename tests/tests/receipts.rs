//! Commit receipts on real processes: a fetch whose access record the ledger refuses answers
//! at once with the ledger's reason, and nothing is released without a committed record.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cradle_tests::Cluster;
use cradle_tests::cli::{committed_tx, cradle, mother_with_archive, ok, shared_record};

const WAIT: Duration = Duration::from_secs(60);
/// The promise under test: every racing fetch ends within this, released or refused.
const FETCH_BOUND: Duration = Duration::from_secs(5);

/// The committed access record's outcome, read from another member's node.
fn recorded_outcome(c: &Cluster, tx: &str) -> String {
    let v = committed_tx(c, 2, tx, WAIT);
    assert_eq!(v["kind"], "record_access", "{v}");
    v["tx"]["tx"]["body"]["outcome"]["outcome"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn fetches_racing_a_revocation_each_end_within_5s_released_only_when_logged() {
    let c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    let work = c.dir.path().join("work");
    let a_url = c.nodes[0].api.clone();
    let rec = shared_record("Karla_Kessler_eb2955c7-1c46-47bd-bffc-bae94824b629.json");
    let mother = mother_with_archive(&c, &work, 0, &rec);
    // Hospital B's obstetrician reads, with her own key.
    let b_key =
        cradle_tests::cli::clinician(&c, &work, 1, "obstetrician", "obstetrics", "Zhang Wei").key;
    let (p_key, archive) = (mother.key, mother.archive);
    let grant = ok(cradle(
        &a_url,
        &p_key,
        &[
            "consent",
            "grant",
            "--grantee",
            "County Hospital 2",
            "--purpose",
            "TREAT",
            "--expires",
            "30d",
        ],
    ));

    // Hospital B fetches over and over from several threads while the patient revokes, each
    // thread until two of its fetches began after the revocation committed (commits take tens
    // of milliseconds, so a fixed number of rounds could all end before it).
    let fetchers = 6;
    let rounds_max = 200;
    let revoked = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..fetchers)
        .map(|f| {
            let (a_url, b_key, archive, work) =
                (a_url.clone(), b_key.clone(), archive.clone(), work.clone());
            let revoked = revoked.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(97 * f));
                let mut after = 0;
                (0..rounds_max)
                    .take_while(|_| {
                        after += usize::from(revoked.load(Ordering::Acquire));
                        after <= 2
                    })
                    .map(|r| {
                        let out = work.join(format!("got-{f}-{r}.json"));
                        let started = Instant::now();
                        let o = cradle(
                            &a_url,
                            &b_key,
                            &[
                                "archive",
                                "get",
                                &archive,
                                "--purpose",
                                "TREAT",
                                "--out",
                                out.to_str().unwrap(),
                                "--format",
                                "json",
                            ],
                        );
                        (out, started, started.elapsed(), o)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    ok(cradle(&a_url, &p_key, &["consent", "revoke", &grant]));
    let revoked_at = Instant::now();
    revoked.store(true, Ordering::Release);

    let mut released = 0;
    let mut refused = 0;
    let mut refused_after_revoke = 0;
    for h in handles {
        for (out, started, took, o) in h.join().unwrap() {
            let stdout = String::from_utf8_lossy(&o.stdout).to_string();
            let stderr = String::from_utf8_lossy(&o.stderr).to_string();
            assert!(
                took <= FETCH_BOUND,
                "a fetch took {took:?} (bound {FETCH_BOUND:?}): stdout {stdout:?} stderr {stderr:?}"
            );
            if o.status.success() {
                assert!(
                    started < revoked_at,
                    "a fetch begun after the revocation committed was released"
                );
                // Released: the file is the record, and its access record is committed.
                let got: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
                assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&rec).unwrap());
                assert_eq!(
                    recorded_outcome(&c, got["access_tx"].as_str().unwrap()),
                    "permitted"
                );
                released += 1;
            } else {
                // Refused: denied on the ledger (403) or the record refused by it (409); either
                // way nothing was written.
                assert_eq!(o.status.code(), Some(1), "stderr {stderr:?}");
                assert!(
                    stderr.contains("denied") || stderr.contains("refused the access record"),
                    "unexpected refusal: {stderr:?}"
                );
                assert!(!out.exists(), "{} written on a refusal", out.display());
                refused += 1;
                if started > revoked_at {
                    refused_after_revoke += 1;
                }
            }
        }
    }
    eprintln!("released {released}, refused {refused}");
    assert!(released > 0, "no fetch got through before the revocation");
    assert!(refused_after_revoke > 0, "no fetch was refused after it");

    // After the revocation every fetch is refused at once, and recorded as a denial.
    let out = work.join("after.json");
    let started = Instant::now();
    let o = cradle(
        &a_url,
        &b_key,
        &[
            "archive",
            "get",
            &archive,
            "--purpose",
            "TREAT",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(started.elapsed() <= FETCH_BOUND);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("denied"));
    assert!(!out.exists());
}
