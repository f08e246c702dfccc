//! The daemon as an operator runs it, on a real four-member localnet: `cradle-node check`,
//! JSON log lines, `/healthz` and `/readyz`, a backup while the node serves, a SIGTERM that lets
//! a download in flight finish, and a restore onto a fresh folder from which the node catches up
//! with the others and serves its archives again.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::io::Read;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cradle_tests::Cluster;
use cradle_tests::cli::{cradle, member_upload, ok};
use cradle_tests::cluster::bin;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
/// Larger than what loopback sockets and the node's read-ahead hold, so the download is still
/// in flight when the node is told to stop.
const ARCHIVE_BYTES: usize = 48 << 20;

fn node_cmd(args: &[&str]) -> Output {
    Command::new(bin("cradle-node").unwrap())
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// `GET path` on the operator's address of member `i`: status and body.
fn operator_get(c: &Cluster, i: usize, path: &str) -> (u16, String) {
    let config =
        cradle_genesis::config::NodeConfig::load(c.nodes[i].home.join("config.toml")).unwrap();
    let addr = config.api.metrics_listen.unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut answer = agent.get(&format!("http://{addr}{path}")).call().unwrap();
    (
        answer.status().as_u16(),
        answer.body_mut().read_to_string().unwrap(),
    )
}

#[test]
fn an_operator_checks_backs_up_stops_and_restores_a_node() {
    let mut c = Cluster::write(4, &[]).unwrap();
    let home = c.nodes[2].home.clone();
    // Node 2 writes JSON log lines.
    let config_path = home.join("config.toml");
    let mut config = cradle_genesis::config::NodeConfig::load(&config_path).unwrap();
    config.log_format = cradle_genesis::config::LogFormat::Json;
    config.save(&config_path).unwrap();

    // `check` says what the node would run with, and why a broken home would not start.
    let checked = node_cmd(&["check", "--home", home.to_str().unwrap()]);
    assert!(checked.status.success(), "{}", text(&checked.stderr));
    let report = text(&checked.stdout);
    for expected in [
        "Township Clinic 1",
        "api.listen",
        "shutdown_grace_ms",
        "ok: the node would start",
    ] {
        assert!(
            report.contains(expected),
            "{expected} missing from {report}"
        );
    }
    let broken = c.dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    for f in ["genesis.json", "node.key"] {
        std::fs::copy(home.join(f), broken.join(f)).unwrap();
    }
    let mut bad = config.clone();
    bad.shutdown_grace_ms = 5;
    bad.save(broken.join("config.toml")).unwrap();
    let refused = node_cmd(&["check", "--home", broken.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("shutdown_grace_ms"),
        "{}",
        text(&refused.stderr)
    );

    for i in 0..4 {
        c.start_node(i).unwrap();
    }
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    // Health, then readiness once connected and synced, on the API and the operator address.
    assert_eq!(operator_get(&c, 2, "/healthz"), (200, "ok\n".into()));
    let until = Instant::now() + WAIT;
    while operator_get(&c, 2, "/readyz").0 != 200 {
        assert!(Instant::now() < until, "node 2 never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        text(&c.anonymous(2).get_bytes("/readyz").unwrap()),
        "ready\n"
    );
    let log = std::fs::read_to_string(home.join("node.log")).unwrap();
    let lines: Vec<&str> = log.lines().take(10).collect();
    assert!(lines.len() >= 5, "{log}");
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{v}");
    }

    // A mother's large record held by node 2 (Township Clinic 1).
    let work = c.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let record = work.join("scan.bin");
    let mut bytes = vec![0u8; ARCHIVE_BYTES];
    getrandom::fill(&mut bytes).unwrap();
    std::fs::write(&record, &bytes).unwrap();
    let mother = cradle_tests::cli::mother_with_archive(&c, &work, 2, &record);

    // A backup while it serves.
    let backup = c.dir.path().join("backup");
    let out = node_cmd(&[
        "backup",
        "--home",
        home.to_str().unwrap(),
        "--out",
        backup.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest["member"], "Township Clinic 1");
    assert_eq!(
        manifest["archives"].as_array().unwrap().len(),
        1,
        "{manifest}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["node.key", "MANIFEST.json", "config.toml"] {
            let mode = std::fs::metadata(backup.join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f} is readable by others");
        }
    }

    // SIGTERM while the mother's download is in flight: the node takes no new connection,
    // finishes the download, then stops between blocks and exits 0.
    let mut download = cradle_tests::fetch::download(&c, 2, &mother.key, &mother.archive);
    let mut first = vec![0u8; 64 * 1024];
    download.read_exact(&mut first).unwrap();
    let pid = c.pid(2).unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        c.is_running(2),
        "the node stopped with a download in flight"
    );
    assert!(
        c.anonymous(2).get_bytes("/healthz").is_err(),
        "a stopping node took a new connection"
    );
    let mut rest = Vec::new();
    download.read_to_end(&mut rest).unwrap();
    let size = committed_size(&c, &mother.archive);
    assert_eq!(
        (first.len() + rest.len()) as u64,
        size,
        "the download was cut"
    );
    let status = c
        .terminate(2, Duration::from_secs(20))
        .expect("node 2 exits");
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(home.join("node.log")).unwrap();
    assert!(log.contains("shut down cleanly"), "{log}");

    // A fresh machine folder: the old home is gone; the backup is restored and the node
    // catches up with the others, which went on committing, and serves the archive again.
    let old = c.dir.path().join("node2-old");
    std::fs::rename(&home, &old).unwrap();
    let out = node_cmd(&[
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--home",
        home.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A restore never overwrites a ledger.
    let again = node_cmd(&[
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--home",
        home.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("exists"),
        "{}",
        text(&again.stderr)
    );
    c.start_node(2).unwrap();
    let others = c.height(0).unwrap();
    c.wait_height(2, others + 2, WAIT).unwrap();
    let restored = work.join("restored.bin");
    ok(cradle(
        &c.nodes[2].api,
        &mother.key,
        &[
            "archive",
            "get",
            &mother.archive,
            "--purpose",
            "PATRQT",
            "--out",
            restored.to_str().unwrap(),
        ],
    ));
    assert!(
        std::fs::read(&restored).unwrap() == bytes,
        "the restored archive differs"
    );
}

/// The archive's ciphertext size as the ledger has it.
fn committed_size(c: &Cluster, archive: &str) -> u64 {
    c.client(0)
        .get_json(&format!("/v1/archives/{archive}"))
        .unwrap()["record"]["size_bytes"]
        .as_u64()
        .unwrap()
}

/// Resource limits refuse clearly, before anything is read or recorded, and are counted: a
/// node serving as many transfers as `api.transfers_max` answers 503 `busy` with `Retry-After`
/// (and records no access), and one whose disk would fall under `archives.disk_reserve_bytes`
/// refuses an upload with 507.
#[test]
fn transfer_and_disk_limits_refuse_clearly_and_are_counted() {
    let mut c = Cluster::write(4, &[]).unwrap();
    let edit = |i: usize, f: &dyn Fn(&mut cradle_genesis::config::NodeConfig)| {
        let path = c.nodes[i].home.join("config.toml");
        let mut config = cradle_genesis::config::NodeConfig::load(&path).unwrap();
        f(&mut config);
        config.save(&path).unwrap();
    };
    edit(0, &|c| {
        c.api.transfers_max = 2;
        c.api.transfers_per_key_max = 1;
    });
    edit(1, &|c| c.archives.disk_reserve_bytes = 1 << 62);
    for i in 0..4 {
        c.start_node(i).unwrap();
    }
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    let work = c.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let record = work.join("scan.bin");
    let mut bytes = vec![0u8; ARCHIVE_BYTES];
    getrandom::fill(&mut bytes).unwrap();
    std::fs::write(&record, &bytes).unwrap();
    let mother = cradle_tests::cli::mother_with_archive(&c, &work, 0, &record);
    let second = cradle_tests::cli::mother_with_archive(&c, &work.join("second"), 0, &record);
    let third = cradle_tests::cli::mother_with_archive(&c, &work.join("third"), 0, &record);
    let try_fetch = |m: &cradle_tests::cli::Mother| match cradle_tests::fetch::signed_fetch(
        &c,
        0,
        &m.key,
        &m.archive,
        cradle_ledger::tx::Purpose::PatientRequest,
    ) {
        cradle_client::api::Fetched::Stream(_) => (200, String::new()),
        cradle_client::api::Fetched::Refused { status, reason, .. } => (status, reason),
    };

    // A download in flight, not read: the mother's one place is taken, not the node's two.
    let mut first = cradle_tests::fetch::download(&c, 0, &mother.key, &mother.archive);
    let mut some = vec![0u8; 4096];
    first.read_exact(&mut some).unwrap();
    let own = try_fetch(&mother);
    assert_eq!(own.0, 503, "{own:?}");
    assert!(own.1.contains("as one key may"), "{own:?}");
    // Another mother takes the node's second place; a third finds none.
    let mut held = cradle_tests::fetch::download(&c, 0, &second.key, &second.archive);
    let mut head = vec![0u8; 4096];
    held.read_exact(&mut head).unwrap();
    let history = |c: &Cluster, m: &cradle_tests::cli::Mother| -> usize {
        let out = ok(cradle(
            &c.nodes[0].api,
            &m.key,
            &[
                "audit",
                "--patient",
                m.public.to_str().unwrap(),
                "--format",
                "json",
            ],
        ));
        serde_json::from_str::<Value>(&out).unwrap()["events"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = history(&c, &third);
    let busy = try_fetch(&third);
    assert_eq!(busy.0, 503, "{busy:?}");
    assert!(busy.1.contains("serves at once"), "{busy:?}");
    assert_eq!(
        history(&c, &third),
        before,
        "a refused transfer was recorded"
    );
    let metrics = c.metrics(0).unwrap();
    assert!(
        metrics.contains("cradle_api_transfers_refused_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cradle_api_transfers_active 2"),
        "{metrics}"
    );
    drop(held);
    // Once it ends, the place is free again.
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).unwrap();
    drop(first);
    std::thread::sleep(Duration::from_millis(200));
    let mut again = cradle_tests::fetch::download(&c, 0, &mother.key, &mother.archive);
    let mut all = Vec::new();
    again.read_to_end(&mut all).unwrap();
    assert_eq!(all.len(), some.len() + rest.len());

    // Node 1 keeps more free space than its disk has: an upload is refused, counted, stored
    // nowhere.
    let out = member_upload(&c, 1, &record, &mother.public);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("kept in reserve") && stderr.contains("507"),
        "{stderr}"
    );
    let metrics = c.metrics(1).unwrap();
    assert!(
        metrics.contains("cradle_uploads_refused_disk_total 1"),
        "{metrics}"
    );
    let objects = c.nodes[1].home.join("data/archives/objects");
    assert_eq!(std::fs::read_dir(objects).unwrap().count(), 0);
}
