//! Attacks on real processes, each with the promise it must not break
//! ([`cradle_tests::promise`]): while the attack runs, the mother's fetch, a break-glass fetch
//! and the regulator's review each complete within 2 s, and her history holds nothing else.
//! The floods are in `floods.rs`.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use cradle_tests::Cluster;
use cradle_tests::cli::{cradle, ok};
use cradle_tests::cluster::bin;
use cradle_tests::promise::{PROMISE, Promise};
use tokio::net::TcpSocket;

const WAIT: Duration = Duration::from_secs(60);
/// Half-sent requests the attacker opens: above a common 1,024 open-file limit, 64 from each of
/// 18 addresses.
const HALF_SENT: usize = 1_152;

/// A connection from `source` that starts a TLS handshake and never finishes it: the header of
/// a ClientHello record announcing 512 bytes, and nothing more. `None` when the node closed it
/// on accept.
async fn half_sent(source: &str, node: std::net::SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(format!("{source}:0").parse().ok()?).ok()?;
    let stream = socket.connect(node).await.ok()?.into_std().ok()?;
    stream.set_nonblocking(false).ok()?;
    (&stream).write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).ok()?;
    Some(stream)
}

#[test]
fn half_sent_requests_above_the_file_limit_do_not_stop_a_fetch() {
    let c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    let url = c.nodes[0].api.clone();
    let mut promise = Promise::new(&c);

    let node: std::net::SocketAddr = url.trim_start_matches("https://").parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The attacker opens its half-sent requests and keeps them.
    let held: Vec<TcpStream> = runtime.block_on(async {
        let mut held = Vec::new();
        // From the address the mother and the hospitals use too (a shared NAT), and from
        // enough others to fill every slot of the node (512 by default) twice over.
        for i in 0..HALF_SENT {
            let source = format!("127.0.0.{}", 1 + i / 64);
            if let Some(s) = half_sent(&source, node).await {
                held.push(s);
            }
        }
        held
    });
    eprintln!("attacker holds {} connections", held.len());

    // Meanwhile the node answers its status, and the mother, the hospital breaking the glass
    // and the regulator are served promptly.
    let started = Instant::now();
    let status = c.client(0).status().unwrap();
    assert!(status["height"].as_u64().unwrap() >= 1);
    assert!(
        started.elapsed() <= PROMISE,
        "status took {:?}",
        started.elapsed()
    );
    promise.keep("half-sent-requests");
    promise.history_is_only_ours();
    // Every slot was taken: the people above got theirs from connections that had done nothing.
    let metrics = c.metrics(0).unwrap();
    let evicted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cradle_api_connections_evicted_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(evicted > 0, "no connection was evicted");

    // The node keeps none of them past its header deadline (10 s by default).
    let deadline = Instant::now() + Duration::from_secs(20);
    for mut s in held {
        let mut buf = [0u8; 256];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "a half-sent request was kept open past the deadline"
            );
            s.set_read_timeout(Some(left)).unwrap();
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    panic!("a half-sent request was kept open past the deadline")
                }
                Err(_) => break,
            }
        }
    }
    assert!(c.client(0).status().is_ok());
}

/// A member's transaction with nonce 2^64 − 1 would lock the institution out for good (no nonce
/// above it): it is refused at once, and the institution keeps working.
#[test]
fn a_nonce_at_the_top_of_the_range_is_refused_and_the_institution_keeps_working() {
    use cradle_ledger::tx::{EnrolPatient, Transaction, TxBody};
    let c = Cluster::start(4, &[]).unwrap();
    c.wait_height(0, 1, WAIT).unwrap();
    let key = c.member_key(0).unwrap();
    let patient = cradle_tests::txs::patient(4242);
    let tx = Transaction {
        chain_id: c.chain_id(),
        signer: key.public_key(),
        nonce: u64::MAX,
        body: TxBody::EnrolPatient(EnrolPatient::prove(&patient, &c.chain_id())),
    }
    .sign(&key);
    match c.client(0).submit(&tx.encode(), true) {
        Err(cradle_client::api::ApiError::Refused { status, reason, .. }) => {
            assert_eq!(status, 400, "{reason}");
            assert!(reason.contains("nonce"), "{reason}");
        }
        other => panic!("a nonce of 2^64 - 1 was not refused: {other:?}"),
    }
    let last = c.client(0).last_nonce(&key.public_key().to_hex()).unwrap();
    assert!(last.unwrap_or(0) < u64::MAX, "committed nonce {last:?}");
    // The institution still enrols a patient, with an ordinary nonce.
    let work = c.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let p_key = work.join("patient.key");
    ok(Command::new(bin("cradle").unwrap())
        .args(["keygen", "--out"])
        .arg(&p_key)
        .arg("--genesis")
        .arg(c.nodes[0].home.join("genesis.json"))
        .output()
        .unwrap());
    let p_pub = work.join("patient.key.pub");
    ok(cradle(
        &c.nodes[0].api,
        &c.nodes[0].home.join("node.key"),
        &["patient", "enrol", p_pub.to_str().unwrap()],
    ));
}

/// Transactions signed by throwaway keys fill nothing: each is refused on arrival, so a flood
/// of them leaves the pool empty and a patient's fetch on time; and a request body trickled a
/// byte at a time loses its connection instead of holding it.
#[test]
fn junk_from_unknown_keys_and_trickled_bodies_do_not_delay_a_fetch() {
    let c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    let url = c.nodes[0].api.clone();
    let mut promise = Promise::new(&c);
    let chain = c.genesis.chain_id();

    // The flood: batches of transactions, each from a key of its own that is no one.
    let flood = {
        let api = c.anonymous(0);
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(8);
            let (mut sent, mut admitted) = (0usize, 0usize);
            let mut round = 0u64;
            while Instant::now() < until {
                let txs: Vec<Vec<u8>> = (0..256u64)
                    .map(|i| {
                        let nobody = cradle_tests::txs::patient(1_000_000 + round * 256 + i);
                        cradle_tests::txs::enrol(chain, &nobody, &nobody)
                    })
                    .collect();
                round += 1;
                sent += txs.len();
                let batch = cradle_ledger::codec::BoundedVec::<Vec<u8>, 4096>::new(txs).unwrap();
                let answer = api
                    .post_bytes("/v1/txs/batch", &cradle_ledger::codec::encode(&batch))
                    .unwrap();
                admitted += answer["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| r.get("hash").is_some())
                    .count();
            }
            (sent, admitted)
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    promise.keep("unknown-key-tx-flood");
    let (sent, admitted) = flood.join().unwrap();
    eprintln!("flood: {sent} transactions from unknown keys, {admitted} admitted");
    assert!(sent > 0);
    assert_eq!(admitted, 0, "transactions from unknown keys took space");
    promise.history_is_only_ours();
    assert_eq!(c.client(0).status().unwrap()["mempool_txs"], 0);

    // A body trickled after its headers: cut within the stall deadline (10 s), not held.
    let mut conn = cradle_tests::tls::connect(&url, Duration::from_secs(30)).unwrap();
    let started = Instant::now();
    conn.write_all(
        b"POST /v1/txs HTTP/1.1\r\nHost: cradle\r\nContent-Type: application/octet-stream\r\n\
          Content-Length: 65000\r\n\r\nslow",
    )
    .unwrap();
    conn.flush().unwrap();
    let _ = cradle_tests::tls::read_answer(&mut conn);
    let held = started.elapsed();
    assert!(
        held < Duration::from_secs(15),
        "a trickled body held its connection for {held:?}"
    );
}

/// A signed request captured on the way cannot be used again: not at the same node, not at
/// another, and not at the same node after it restarted with an empty replay cache, even when
/// it was dated as far ahead as the node allows.
#[test]
fn a_captured_request_is_refused_again_even_across_a_restart() {
    use cradle_ledger::api_request::{AUTH_HEADER, ApiRequest};
    use cradle_ledger::contract::ErrorCode;

    let mut c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    let member = c.member_key(1).unwrap();
    let chain = c.genesis.chain_id();
    let node0 = c.genesis.members[0].public_key;
    let path = "/v1/status";
    // Dated 1.5 s ahead: as far as a node takes, so it outlives a quick restart.
    let captured = ApiRequest::new(
        member.public_key(),
        node0,
        "GET",
        path,
        cradle_ledger::crypto::sha256(b""),
        cradle_genesis::clock::now_ms() + 1_500,
    )
    .unwrap()
    .sign(&member, &chain)
    .to_header();
    let code = |c: &Cluster, node: usize| match c.anonymous(node).get_bytes_signed(
        path,
        AUTH_HEADER,
        &captured,
    ) {
        Ok(_) => None,
        Err(cradle_client::api::ApiError::Refused { code, .. }) => code,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(code(&c, 0), None, "the genuine request is served");
    assert_eq!(code(&c, 0), Some(ErrorCode::Replayed));
    assert_eq!(code(&c, 1), Some(ErrorCode::Misdirected));
    c.kill(0);
    c.start_node(0).unwrap();
    let deadline = Instant::now() + WAIT;
    while c.anonymous(0).status().is_err() {
        assert!(Instant::now() < deadline, "node 0 did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        code(&c, 0),
        Some(ErrorCode::StaleRequest),
        "a request the node served before its restart was served again"
    );
    // Freshly signed requests are served again once the node has been up a moment.
    std::thread::sleep(Duration::from_millis(2_100));
    assert!(c.client(0).status().is_ok());
}
