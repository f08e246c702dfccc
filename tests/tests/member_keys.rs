//! A member's key rotated by a vote, with real processes on a running 4-member localnet (issue
//! #14's test (d)): its old key's votes, transactions and signed API requests are refused, the
//! new key works once its node restarts with it, and the archives the member held before the
//! rotation stay readable. A thief of the old server's key, answering at the member's address
//! and refusing to show the member sets, is refused by every command.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cradle_tests::Cluster;
use cradle_tests::cli::{clinician, cradle, keygen, mother_with_archive, ok, shared_record};
use cradle_tests::cluster::bin;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const RECORD: &str = "Nona_Kris_5f72d2e8-c56b-4288-a829-c1c1ebfad423.json";

/// `cradle governance ARGS --format json` with `key` at `node`; the parsed answer.
fn governance(c: &Cluster, node: usize, key: &Path, args: &[&str]) -> Value {
    let mut all = vec!["governance"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = ok(cradle(&c.nodes[node].api, key, &all));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The clinician reads the archive from its custodian's node into `out`; the CLI's output.
fn read(c: &Cluster, node: usize, key: &Path, archive: &str, out: &Path) -> std::process::Output {
    cradle(
        &c.nodes[node].api,
        key,
        &[
            "archive",
            "get",
            archive,
            "--purpose",
            "TREAT",
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
        ],
    )
}

/// `cradle ARGS` at `node`, trusting `genesis`, with `state` as its state directory (what it
/// verified before), signed by `key` if given.
fn cradle_in(
    state: &Path,
    genesis: &Path,
    node: &str,
    key: Option<&Path>,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new(bin("cradle").unwrap());
    cmd.env("XDG_STATE_HOME", state)
        .env_remove("CRADLE_SETS_MAX_AGE")
        .arg("--genesis")
        .arg(genesis)
        .arg("--node")
        .arg(node);
    if let Some(key) = key {
        cmd.arg("--key").arg(key);
    }
    cmd.args(args).output().unwrap()
}

/// A server at a member's API address holding the member's old key (its TLS certificate is
/// the one the node made with it): it refuses the member sets to every key, 403 as an honest
/// node refuses a key it does not know, answers a status as a node would, and records the path
/// of every request that reached it.
struct Impostor {
    stop: Arc<AtomicBool>,
    paths: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Impostor {
    fn start(api: &str, member: &str, key: &Path) -> Self {
        let key = cradle_genesis::keyfile::read_key_file(key).unwrap();
        let config =
            cradle_node::http::tls::server_config(member, &key.ed25519_seed(), vec![], None, None)
                .unwrap();
        let listener = TcpListener::bind(cradle_tests::tls::addr_of(api)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let node_key = key.public_key().to_hex();
        let (stop2, paths2) = (stop.clone(), paths.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((tcp, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                tcp.set_nonblocking(false).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                // A client that refuses the certificate ends the handshake here.
                while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match tls.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let Some(path) = head.split(' ').nth(1).map(str::to_string) else {
                    continue;
                };
                paths2.lock().unwrap().push(path.clone());
                let (status, body) = if path.starts_with("/v1/governance/sets") {
                    (
                        "403 Forbidden",
                        r#"{"error":"this is answered only to anyone the ledger knows","code":"forbidden"}"#.to_string(),
                    )
                } else {
                    (
                        "200 OK",
                        format!(
                            r#"{{"node_key":"{node_key}","member":"impostor","height":99,"block_hash":"00"}}"#
                        ),
                    )
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes());
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        Self {
            stop,
            paths,
            thread: Some(thread),
        }
    }

    /// Stops it and frees its address; the paths of the requests that reached it.
    fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.paths.lock().unwrap().clone()
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `GET /v1/status` at member 2's members-only node, with a client certificate of `key`.
fn members_only(c: &Cluster, key: &Path) -> Result<Value, cradle_client::api::ApiError> {
    let key = cradle_genesis::keyfile::read_key_file(key).unwrap();
    c.anonymous(2)
        .signed_by(&key, c.genesis.chain_id())
        .status()
}

fn refused(out: std::process::Output) -> String {
    assert!(
        !out.status.success(),
        "accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn a_rotated_members_old_key_is_refused_and_its_new_key_votes_and_reads_its_archives() {
    // Member 2's node serves member institutions only (mutual TLS with the keys that sign for
    // members now): it must follow the rotation without a restart.
    let mut c = Cluster::write(4, &[]).unwrap();
    let config_path = c.nodes[2].home.join("config.toml");
    let mut config = cradle_genesis::config::NodeConfig::load(&config_path).unwrap();
    config.api.member_tls = true;
    config.save(&config_path).unwrap();
    for i in 0..4 {
        c.start_node(i).unwrap();
    }
    c.wait_height(0, 2, WAIT).unwrap();
    let work = c.dir.path().join("work");
    let genesis = c.nodes[0].home.join("genesis.json");
    let record = shared_record(RECORD);

    // Before the rotation: City's node (member 1) holds a mother's record; she grants it
    // treatment access, and its obstetrician reads it.
    let mother = mother_with_archive(&c, &work, 1, &record);
    let doc = clinician(&c, &work, 1, "obstetrician", "obstetrics", "Zhang Wei");
    ok(cradle(
        &c.nodes[1].api,
        &mother.key,
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
    let before = work.join("before.json");
    ok(read(&c, 1, &doc.key, &mother.archive, &before));
    assert_eq!(
        std::fs::read(&before).unwrap(),
        std::fs::read(&record).unwrap()
    );

    // Its server is deemed compromised: a new key is made where it will stay, and three of the
    // four members vote the rotation through.
    let old = work.join("old.key");
    std::fs::copy(c.nodes[1].home.join("node.key"), &old).unwrap();
    assert!(
        members_only(&c, &old).is_ok(),
        "the members-only node refused a member's key"
    );
    let new = work.join("new.key");
    keygen(&genesis, &new);
    let pubkey = format!("{}.pub", new.display());
    let proposed = governance(
        &c,
        0,
        &c.nodes[0].home.join("node.key"),
        &[
            "propose",
            "rotate-key",
            "County Hospital 2",
            "--pubkey",
            &pubkey,
        ],
    );
    let id = proposed["proposal"].as_str().unwrap().to_string();
    governance(&c, 1, &old, &["approve", &id]);
    let adopted = governance(&c, 2, &c.nodes[2].home.join("node.key"), &["approve", &id]);
    assert_eq!(adopted["now"]["status"], "adopted", "{adopted}");
    let activation = adopted["now"]["activation_height"].as_u64().unwrap();
    c.wait_height(0, activation + 1, WAIT).unwrap();
    // The others close the old key's connections (its PeerId is no member's now).
    let deadline = std::time::Instant::now() + WAIT;
    while !c
        .metrics(1)
        .is_ok_and(|m| m.contains("cradle_peers_connected 0\n"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the old key's node is still connected"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // From the activation on, the old key's votes do not count: with member 3 stopped, the
    // old-keyed node and two others cannot commit (2 of 4 votes, below the quorum of 3).
    c.kill(3);
    let stalled = c.height(0).unwrap();
    std::thread::sleep(Duration::from_secs(6));
    let h = c.height(0).unwrap();
    assert!(
        h <= stalled + 1,
        "the chain went from {stalled} to {h} on a rotated-out key's votes"
    );
    // Its signed requests and its transactions are refused.
    let said = refused(cradle(
        &c.nodes[0].api,
        &old,
        &["governance", "list", "--format", "json"],
    ));
    assert!(said.contains("403"), "{said}");
    // The members-only node, which admitted the old key before, now ends its handshake, and
    // admits the new one, both without a restart.
    match members_only(&c, &old) {
        Err(cradle_client::api::ApiError::Transport(_)) => {}
        other => panic!("the members-only node served a rotated-out key: {other:?}"),
    }
    assert!(
        members_only(&c, &new).is_ok(),
        "the members-only node refused the member's new key"
    );
    let said = refused(cradle(
        &c.nodes[0].api,
        &old,
        &[
            "governance",
            "propose",
            "set-power",
            "County Hospital 1",
            "2",
        ],
    ));
    assert!(said.contains("403"), "{said}");

    // The old-keyed node is no member's node now: a client that reaches it (as a thief of the
    // old server's key would be reached) refuses it, though genesis pinned that key.
    let said = refused(cradle(
        &c.nodes[1].api,
        &c.nodes[0].home.join("node.key"),
        &["governance", "list", "--format", "json"],
    ));
    assert!(said.contains("signs for no member now"), "{said}");

    // The operator stops the old server. A thief of its key answers at its address, and
    // refuses to show the member sets to anyone (an honest node refuses a key it does not
    // know): every command, each from a machine that verified nothing before, asks another
    // member's node instead, learns the rotation and refuses it, with a session or without.
    c.kill(1);
    let impostor = Impostor::start(&c.nodes[1].api, &c.genesis.members[1].name, &old);
    let member0 = c.nodes[0].home.join("node.key");
    let regulator = c.dir.path().join("net/regulator/regulator.key");
    let commands: [(&Path, &[&str]); 4] = [
        (&member0, &["governance", "list", "--format", "json"]),
        (&member0, &["status", "--format", "json"]),
        (&member0, &["block", "1", "--format", "json"]),
        (
            &regulator,
            &["audit", "--break-glass", "--verify", "--format", "json"],
        ),
    ];
    for (i, (key, args)) in commands.iter().enumerate() {
        let state = work.join(format!("state-{i}"));
        let said = refused(cradle_in(
            &state,
            &genesis,
            &c.nodes[1].api,
            Some(key),
            args,
        ));
        assert!(said.contains("signs for no member now"), "{args:?}: {said}");
    }
    // A machine that verified the rotation refuses the old key in the handshake, even to a
    // call without a key (which cannot ask for the sets at all).
    let said = refused(cradle_in(
        &work.join("state-0"),
        &genesis,
        &c.nodes[1].api,
        None,
        &["status"],
    ));
    assert!(said.contains("signs for no member now"), "{said}");
    // Nothing but the four requests for the sets reached it: no signed read, no transaction.
    let paths = impostor.stop();
    assert_eq!(paths, vec!["/v1/governance/sets"; 4], "{paths:?}");

    // The operator installs the new key (the old one moves to the home's key ring) and restarts
    // the node: the chain goes on with its votes under the new key.
    let out = Command::new(bin("cradle-genesis").unwrap())
        .args(["rotate-key", "--home"])
        .arg(&c.nodes[1].home)
        .arg("--key")
        .arg(&new)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let ring = std::fs::read_dir(c.nodes[1].home.join("keyring"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "key")
        })
        .count();
    assert_eq!(ring, 1);
    c.start_node(1).unwrap();
    c.wait_height(0, h + 3, WAIT).unwrap();
    // (Its API now proves the new key, which the harness's genesis-pinned client refuses: its
    // height is read from its operator metrics.)
    let deadline = std::time::Instant::now() + WAIT;
    while c.metric_height(1).is_none_or(|m| m < h + 3) {
        assert!(
            std::time::Instant::now() < deadline,
            "node 1 did not catch up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    c.start_node(3).unwrap();

    // The new key signs for the member: at its own node (whose TLS key is now the new one,
    // pinned through the sets the client verified) and at another.
    let new_home_key = c.nodes[1].home.join("node.key");
    let list = governance(&c, 1, &new_home_key, &["list"]);
    // Its directory is still its own: a clinician it adds now gets her name there.
    clinician(&c, &work, 1, "midwife", "midwifery", "Li Na");
    assert_eq!(list["epoch"], 1, "{list}");
    governance(
        &c,
        2,
        &new_home_key,
        &["propose", "set-power", "County Hospital 1", "2"],
    );

    // The record registered before the rotation, its key wrapped for the old X25519 key, is
    // still read through the custodian; one uploaded after is wrapped for the new key.
    let after = work.join("after.json");
    ok(read(&c, 1, &doc.key, &mother.archive, &after));
    assert_eq!(
        std::fs::read(&after).unwrap(),
        std::fs::read(&record).unwrap()
    );
    let put: Value = serde_json::from_str(&ok(cradle(
        &c.nodes[1].api,
        &new_home_key,
        &[
            "archive",
            "put",
            record.to_str().unwrap(),
            "--patient",
            mother.public.to_str().unwrap(),
            "--category",
            "ultrasound",
            "--format",
            "json",
        ],
    )))
    .unwrap();
    let second = work.join("second.json");
    ok(read(
        &c,
        1,
        &doc.key,
        put["archive"].as_str().unwrap(),
        &second,
    ));
    assert_eq!(
        std::fs::read(&second).unwrap(),
        std::fs::read(&record).unwrap()
    );
}
