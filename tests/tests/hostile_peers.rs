//! Peers that should not be trusted: a process whose key is not in genesis, a member's key used
//! to send malformed, oversized and badly signed messages, one used to equivocate, and one used
//! to announce heights it does not serve.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cradle_client::api::ApiError;
use cradle_consensus::{ValueId, Vote, VoteKind};
use cradle_ledger::Keypair;
use cradle_ledger::contract::ErrorCode;
use cradle_node::network::{self, NetworkConfig, Peer};
use cradle_node::wire::NetMessage;
use cradle_tests::Cluster;
use cradle_tests::cluster::bin;

const WAIT: Duration = Duration::from_secs(60);

fn keeps_committing(c: &Cluster, nodes: &[usize]) {
    let start: Vec<u64> = nodes.iter().map(|&i| c.height(i).unwrap()).collect();
    for (k, &i) in nodes.iter().enumerate() {
        c.wait_height(i, start[k] + 2, WAIT).unwrap();
    }
}

#[test]
fn a_node_whose_key_is_not_in_genesis_cannot_join() {
    let c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    // The intruder writes its own genesis naming itself and the real members, with their real
    // addresses, and dials them.
    let dir = c.dir.path().join("intruder");
    std::fs::create_dir_all(&dir).unwrap();
    let key_path = dir.join("node.key");
    let status = Command::new(bin("cradle-genesis").unwrap())
        .args(["keygen", "--out"])
        .arg(&key_path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let port = 20_000 + (std::process::id() % 120) as u16 * 100 + 90;
    let p2p = format!("/ip4/127.0.0.1/tcp/{port}");
    let api = format!("127.0.0.1:{}", port + 1);
    let mut args = vec![
        "new".to_string(),
        "--chain-name".into(),
        "intruders".into(),
        "--out".into(),
        dir.join("genesis.json").to_string_lossy().into(),
        "--member".into(),
        format!(
            "name=Intruder,role=hospital,key={},p2p={p2p},api={api}",
            key_path.display()
        ),
    ];
    for m in &c.genesis.members {
        if let Some(addr) = &m.p2p_addr {
            args.push("--member".into());
            args.push(format!(
                "name={},role={},pubkey={},x25519={},p2p={addr}",
                m.name,
                m.role.as_str(),
                m.public_key,
                m.x25519
            ));
        }
    }
    let status = Command::new(bin("cradle-genesis").unwrap())
        .args(&args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "cradle-genesis new failed: {args:?}");
    let config = cradle_genesis::config::NodeConfig {
        member: "Intruder".into(),
        p2p: cradle_genesis::config::P2pConfig {
            listen: p2p.clone(),
        },
        api: cradle_genesis::config::ApiConfig::new(api.clone()),
        ..Default::default()
    };
    config.save(dir.join("config.toml")).unwrap();
    let log = std::fs::File::create(dir.join("node.log")).unwrap();
    // Killed when the test ends, also when an assertion fails first.
    let _intruder = KillOnDrop(
        Command::new(bin("cradle-node").unwrap())
            .args(["run", "--home"])
            .arg(&dir)
            .stderr(log)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(6));
    keeps_committing(&c, &[0, 1, 2, 3]);
    for i in 0..4 {
        assert_eq!(
            c.status(i).unwrap()["peers"].as_u64(),
            Some(3),
            "node {i} peers"
        );
    }
    // Its API is pinned from its own genesis, which the real consortium's clients never trust.
    let intruder_genesis = cradle_genesis::GenesisDoc::load(dir.join("genesis.json")).unwrap();
    let intruder_key = cradle_genesis::keyfile::read_key_file(&key_path).unwrap();
    let intruder_status =
        cradle_client::api::ApiClient::new(&format!("https://{api}"), &intruder_genesis)
            .unwrap()
            .signed_by(&intruder_key, intruder_genesis.chain_id())
            .status()
            .unwrap();
    assert!(
        c.client(0).status().is_ok()
            && cradle_client::api::ApiClient::new(&format!("https://{api}"), &c.genesis)
                .unwrap()
                .status()
                .is_err(),
        "a client trusting the consortium's genesis must refuse the intruder's node"
    );
    assert_eq!(
        intruder_status["peers"].as_u64(),
        Some(0),
        "the intruder must have no peer"
    );
    assert_eq!(
        intruder_status["height"].as_u64(),
        Some(0),
        "the intruder must learn no block"
    );
    let refused = (0..4).any(|i| c.log(i).to_lowercase().contains("refus"));
    assert!(refused, "members log the refused connection");
}

/// A child process killed when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn malformed_oversized_and_badly_signed_peer_messages_change_nothing() {
    let mut c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    // Node 3's key, used by a hostile program instead of node 3.
    c.kill(3);
    let key: Keypair = c.member_key(3).unwrap();
    let chain = c.chain_id();
    let genesis = c.genesis.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listen = genesis.members[3].p2p_addr.clone().unwrap();
        let mut config = NetworkConfig::from_genesis(&genesis, &key, &listen).unwrap();
        config
            .peers
            .retain(|p: &Peer| p.public_key != key.public_key());
        let (net, _events) = network::start(config).await.unwrap();
        let deadline = Instant::now() + WAIT;
        while net.connected_peers().len() < 3 {
            assert!(Instant::now() < deadline, "hostile program never connected");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        net.broadcast(b"\x01garbage that is no message".to_vec().into());
        net.broadcast(vec![0xff; 64].into());
        // A vote with a forged signature, for the current height.
        let height = 1 + c.height(0).unwrap();
        let other = cradle_testkit::outsider_key();
        let vote = Vote {
            kind: VoteKind::Prevote,
            height,
            round: 0,
            value: None,
            validator: 0,
        }
        .sign(&chain, other.signing_key());
        net.broadcast(NetMessage::Vote(vote).encode().into());
        // A transaction batch holding a badly signed transaction.
        let mut tx = cradle_tests::txs::enrol(chain, &key, &cradle_tests::txs::patient(77));
        let last = tx.len() - 1;
        tx[last] ^= 0x10;
        let batch = cradle_ledger::codec::BoundedVec::new(vec![tx]).unwrap();
        net.broadcast(NetMessage::Txs(batch).encode().into());
        tokio::time::sleep(Duration::from_secs(2)).await;
        net.shutdown().await;
    });
    keeps_committing(&c, &[0, 1, 2]);
    let metrics = c.metrics(0).unwrap();
    let invalid: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cradle_messages_invalid_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(invalid >= 2, "node 0 counted {invalid} invalid messages");
    assert_eq!(
        c.client(0).status().unwrap()["mempool_txs"].as_u64(),
        Some(0),
        "no bad tx admitted"
    );
    // The real node 3 comes back and catches up.
    c.start_node(3).unwrap();
    let target = c.height(0).unwrap();
    c.wait_height(3, target, WAIT).unwrap();
    assert_eq!(
        c.block_at(3, target).unwrap(),
        c.block_at(0, target).unwrap()
    );
}

/// `cradle --node NODE --key KEY ARGS`: exit code, stdout, stderr.
fn cradle(node: &str, key: &Path, args: &[&str]) -> (i32, String, String) {
    let out = cradle_tests::cli::cradle(node, key, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The evidence a regulator sees on `node`, checked from genesis by the CLI.
fn regulator_evidence(c: &Cluster, node: usize) -> Vec<serde_json::Value> {
    let net = c.dir.path().join("net");
    let genesis = net.join("genesis.json");
    let (code, stdout, stderr) = cradle(
        &c.nodes[node].api,
        &net.join("regulator/regulator.key"),
        &[
            "audit",
            "--evidence",
            "--verify",
            "--genesis",
            genesis.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "regulator's audit --evidence: {stdout} {stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["verified"], true, "{doc}");
    doc["evidence"].as_array().unwrap().clone()
}

#[test]
fn an_equivocating_validator_is_caught_and_regulators_see_the_evidence_across_restarts() {
    let mut c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    // Node 3's key, used by a hostile program that prevotes twice for different blocks.
    c.kill(3);
    let key: Keypair = c.member_key(3).unwrap();
    let chain = c.chain_id();
    let genesis = c.genesis.clone();
    let offender = genesis
        .consortium()
        .unwrap()
        .validators()
        .index_of(&key.public_key().0)
        .unwrap();
    let (one, two) = (ValueId([0xa1; 32]), ValueId([0xb2; 32]));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let caught = runtime.block_on(async {
        let listen = genesis.members[3].p2p_addr.clone().unwrap();
        let mut config = NetworkConfig::from_genesis(&genesis, &key, &listen).unwrap();
        config
            .peers
            .retain(|p: &Peer| p.public_key != key.public_key());
        let (net, _events) = network::start(config).await.unwrap();
        let deadline = Instant::now() + WAIT;
        while net.connected_peers().len() < 3 {
            assert!(Instant::now() < deadline, "hostile program never connected");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The nodes move on every second: sign for the height they work on and the next one
        // (which they hold until they get there), until node 0 has the evidence.
        let mut caught = Vec::new();
        while caught.is_empty() && Instant::now() < deadline {
            let next = 1 + c.height(0).unwrap();
            for height in [next, next + 1] {
                for value in [one, two] {
                    let vote = Vote {
                        kind: VoteKind::Prevote,
                        height,
                        round: 0,
                        value: Some(value),
                        validator: offender,
                    }
                    .sign(&chain, key.signing_key());
                    net.broadcast(NetMessage::Vote(vote).encode().into());
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            caught = regulator_evidence(&c, 0);
        }
        net.shutdown().await;
        caught
    });
    let name = &genesis.members[3].name;
    let hex = |v: ValueId| hex::encode(v.0);
    let check = |items: &[serde_json::Value]| {
        assert!(!items.is_empty(), "no evidence within {WAIT:?}");
        for item in items {
            assert_eq!(item["validator"], offender, "{item}");
            assert_eq!(item["member"], name.as_str(), "{item}");
            assert_eq!(item["kind"], "prevote", "{item}");
            assert_eq!(item["round"], 0, "{item}");
            let mut values = [
                item["first_value"].as_str().unwrap().to_string(),
                item["second_value"].as_str().unwrap().to_string(),
            ];
            values.sort();
            assert_eq!(values, [hex(one), hex(two)], "{item}");
        }
    };
    check(&caught);

    // Evidence is for regulators: a hospital's signed request is refused, an unsigned one too.
    let (code, stdout, stderr) = cradle(
        &c.nodes[0].api,
        &c.nodes[1].home.join("node.key"),
        &["audit", "--evidence"],
    );
    assert_eq!(code, 1, "a hospital got the evidence: {stdout}");
    assert!(
        stderr.contains("answered only to regulators") && stderr.contains("HTTP 403"),
        "{stderr}"
    );
    match c.anonymous(0).get_bytes("/v1/audit/evidence") {
        Err(ApiError::Refused { status, code, .. }) => {
            assert_eq!((status, code), (401, Some(ErrorCode::Unauthorized)));
        }
        other => panic!("an unsigned request got {:?}", other.map(|b| b.len())),
    }

    // Node 0 restarts and still serves what it stored; the others kept it too.
    let height = c.height(0).unwrap();
    c.kill(0);
    c.start_node(0).unwrap();
    c.wait_height(0, height + 1, WAIT).unwrap();
    let after = regulator_evidence(&c, 0);
    check(&after);
    assert!(
        caught.iter().all(|e| after.contains(e)),
        "before {caught:?}, after the restart {after:?}"
    );
    check(&regulator_evidence(&c, 1));
    keeps_committing(&c, &[0, 1, 2]);
}

#[test]
fn a_peer_announcing_heights_it_does_not_serve_does_not_hold_catch_up() {
    let mut c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    // Node 2 stops; the other three commit a dozen blocks without it.
    c.kill(2);
    let ahead = c.height(0).unwrap() + 12;
    c.wait_height(0, ahead, WAIT).unwrap();
    // Node 3 stops too, which halts nodes 0 and 1 (two of four); then they stop as well, so
    // that when node 2 comes back the only peer it finds is a liar with node 3's key.
    c.kill(3);
    std::thread::sleep(Duration::from_secs(2));
    let target = c.height(0).unwrap().min(c.height(1).unwrap());
    c.kill(0);
    c.kill(1);
    let key: Keypair = c.member_key(3).unwrap();
    let genesis = c.genesis.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let net = runtime.block_on(async {
        let listen = genesis.members[3].p2p_addr.clone().unwrap();
        let mut config = NetworkConfig::from_genesis(&genesis, &key, &listen).unwrap();
        config
            .peers
            .retain(|p: &Peer| p.public_key != key.public_key());
        network::start(config).await.unwrap()
    });
    let (net, mut events) = net;
    // The liar claims a height of 10^12 fifty times a second and never answers a request for
    // blocks (holding each request until the asker gives up on it).
    let liar = net.clone();
    let counter = asked.clone();
    runtime.spawn(async move {
        let claim = NetMessage::Status {
            height: 1_000_000_000_000,
        }
        .encode();
        let mut held = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(network::NetEvent::Request { reply, .. }) => {
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        held.push(reply);
                    }
                    Some(_) => {}
                    None => return,
                },
                _ = tick.tick() => liar.broadcast(claim.clone().into()),
            }
        }
    });
    c.start_node(2).unwrap();
    let deadline = Instant::now() + WAIT;
    while asked.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "node 2 never asked the liar for blocks"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Honest peers come back while node 2 waits on the liar: node 2 must turn to them.
    c.start_node(0).unwrap();
    c.start_node(1).unwrap();
    c.wait_height(2, target, WAIT).unwrap();
    keeps_committing(&c, &[0, 1, 2]);
    let log = c.log(2);
    assert!(
        log.contains("block sync failed") || log.contains("did not serve the blocks"),
        "node 2 never logged the liar's failure:\n{}",
        c.log_tail(2, 30)
    );
    runtime.block_on(net.shutdown());
}
