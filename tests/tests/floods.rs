//! Floods on real processes, from another loopback address than the people they must not
//! disturb: a byzantine member's transactions, a known key's signed requests, strangers asking
//! for archives, and one address's anonymous requests. During each, the [`Promise`] holds: the
//! mother's fetch, another hospital's break-glass fetch and the regulator's review each within
//! 2 s, and her history holds nothing the attacker made.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cradle_ledger::access::{AccessRequest, SignedAccessRequest};
use cradle_ledger::codec::{BoundedVec, encode};
use cradle_ledger::crypto::{TAG_ACCESS_REQUEST, sha256};
use cradle_ledger::tx::Purpose;
use cradle_ledger::{ArchiveId, Keypair};
use cradle_tests::Cluster;
use cradle_tests::promise::Promise;
use cradle_tests::tls::{connect_from, exchange};

const WAIT: Duration = Duration::from_secs(60);
/// Where the attackers send from.
const ATTACKER: &str = "127.0.0.2";
/// The address the mother, the hospitals and the regulator use: a flood from it is a flood
/// from behind the same NAT.
const SHARED: &str = "127.0.0.1";
/// Longest any flood runs: each stops by itself.
const FLOOD_MAX: Duration = Duration::from_secs(40);

fn ready() -> Cluster {
    let c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    c
}

/// Answers by status (`"429"`), and the transactions of batch answers by outcome
/// (`"tx admitted"`, `"tx busy"`), from `threads` connections each sending `request(i)` until `stop`.
fn flood(
    api: &str,
    source: &'static str,
    threads: usize,
    stop: &Arc<AtomicBool>,
    request: impl Fn(u64) -> Vec<u8> + Send + Sync + 'static,
) -> std::thread::JoinHandle<BTreeMap<String, u64>> {
    let api = api.to_string();
    let stop = stop.clone();
    let request = Arc::new(request);
    std::thread::spawn(move || {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (api, stop, request) = (api.clone(), stop.clone(), request.clone());
                std::thread::spawn(move || {
                    let mut seen = BTreeMap::new();
                    let until = Instant::now() + FLOOD_MAX;
                    let mut i = t as u64 * 1_000_000_000;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        let Ok(mut conn) = connect_from(&api, source, Duration::from_secs(30))
                        else {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        };
                        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                            i += 1;
                            match exchange(&mut conn, &request(i)) {
                                Ok((status, body)) => {
                                    let n = seen.entry(status.to_string()).or_insert(0);
                                    if *n == 0 {
                                        let shown = &body[..body.len().min(300)];
                                        eprintln!(
                                            "flood: first {status}: {}",
                                            String::from_utf8_lossy(shown)
                                        );
                                    }
                                    *n += 1;
                                    for item in batch_items(&body) {
                                        *seen.entry(format!("tx {item}")).or_insert(0) += 1;
                                    }
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    seen
                })
            })
            .collect();
        let mut all = BTreeMap::new();
        for w in workers {
            for (status, n) in w.join().unwrap() {
                *all.entry(status).or_insert(0) += n;
            }
        }
        all
    })
}

/// The outcome of each transaction in a batch answer: `admitted` or its error code.
fn batch_items(body: &[u8]) -> Vec<String> {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    answer["results"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| match r.get("hash") {
                    Some(_) => "admitted".to_string(),
                    None => r["code"].as_str().unwrap_or("no code").to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn http(method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: cradle\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// A fetch of `archive` by `who` for `purpose`, its access request and header properly signed
/// (request id from `i`), as raw HTTP for `api`'s node.
fn fetch_request(
    api: &cradle_client::api::ApiClient,
    chain: cradle_ledger::Hash,
    who: &Keypair,
    archive: ArchiveId,
    purpose: Purpose,
    i: u64,
) -> Vec<u8> {
    let request = AccessRequest {
        accessor: who.public_key(),
        archive,
        purpose,
        justification: None,
        requested_at_ms: cradle_genesis::clock::now_ms(),
        request_id: sha256(&i.to_be_bytes())[..16].try_into().unwrap(),
    };
    let signature = who.sign(TAG_ACCESS_REQUEST, &chain, &request);
    let body = SignedAccessRequest { request, signature }.encode();
    let path = format!("/v1/archives/{}/fetch", archive.to_hex());
    let auth = api
        .auth_with(who, &chain, "POST", &path, sha256(&body))
        .unwrap();
    http("POST", &path, &[("x-cradle-auth", auth)], &body)
}

fn counter(c: &Cluster, name: &str) -> u64 {
    let metrics = c.metrics(0).unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the metrics"))
}

/// A member that turned hostile signs as many valid transactions as it can and sends them to
/// member 0. It is held to a quarter of the ordinary lane, its excess is refused 503 with
/// `Retry-After`, and the access records the promise waits on go in their own lane.
#[test]
fn a_members_transaction_flood_is_held_to_its_share() {
    let c = ready();
    let mut promise = Promise::new(&c);
    let chain = c.chain_id();
    let hostile = Arc::new(c.member_key(3).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let answers = flood(&c.nodes[0].api, ATTACKER, 2, &stop, move |i| {
        let txs: Vec<Vec<u8>> = (0..512u64)
            .map(|j| {
                let p = cradle_tests::txs::patient(i.wrapping_mul(512).wrapping_add(j));
                cradle_tests::txs::enrol(chain, &hostile, &p)
            })
            .collect();
        let batch = BoundedVec::<Vec<u8>, 4096>::new(txs).unwrap();
        http(
            "POST",
            "/v1/txs/batch",
            &[("Content-Type", "application/octet-stream".into())],
            &encode(&batch),
        )
    });
    std::thread::sleep(Duration::from_secs(3));
    promise.keep("member-tx-flood");
    promise.keep("member-tx-flood");
    stop.store(true, Ordering::Relaxed);
    let answers = answers.join().unwrap();
    eprintln!("member flood: batches answered {answers:?}");
    let n = |k: &str| answers.get(k).copied().unwrap_or(0);
    assert!(n("tx admitted") > 0, "{answers:?}");
    // Past its share of the pool, the member is told to come back later. The flood's two
    // threads sign with one key, so once one thread's later nonces commit the other's earlier
    // ones are stale (409): blocks commit within milliseconds, so that happens too. Nothing else.
    assert!(n("tx busy") > 0, "{answers:?}");
    assert_eq!(
        n("tx admitted") + n("tx busy") + n("tx tx_conflict"),
        n("202") * 512,
        "{answers:?}"
    );
    promise.history_is_only_ours();
}

/// An enrolled patient's key (a squatter's) sends signed reads as fast as it can: past its
/// rate it gets 429, counted, and no one else's requests wait.
#[test]
fn a_known_keys_request_flood_is_held_to_its_rate() {
    let c = ready();
    let mut promise = Promise::new(&c);
    let chain = c.chain_id();
    let squatter = cradle_tests::txs::patient(77);
    let tx = cradle_tests::txs::enrol(chain, &c.member_key(0).unwrap(), &squatter);
    c.client(0).post_bytes("/v1/txs", &tx).unwrap();
    let path = format!("/v1/patients/{}", squatter.public_key());
    let deadline = Instant::now() + WAIT;
    while c.client(0).get_json(&path).is_err() {
        assert!(Instant::now() < deadline, "the squatter was never enrolled");
        std::thread::sleep(Duration::from_millis(100));
    }
    let api = c.anonymous(0);
    let squatter = Arc::new(squatter);
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = squatter.clone();
    let answers = flood(&c.nodes[0].api, ATTACKER, 4, &stop, move |_| {
        let auth = api
            .auth_with(&flooder, &chain, "GET", &path, sha256(b""))
            .unwrap();
        http("GET", &path, &[("x-cradle-auth", auth)], b"")
    });
    std::thread::sleep(Duration::from_secs(2));
    promise.keep("known-key-request-flood");
    promise.keep("known-key-request-flood");
    stop.store(true, Ordering::Relaxed);
    let answers = answers.join().unwrap();
    eprintln!("signed-request flood: {answers:?}");
    assert!(answers.get("429").copied().unwrap_or(0) > 0, "{answers:?}");
    assert!(counter(&c, "cradle_requests_rate_limited_key_total") > 0);

    // Fetches, which write access records, have a slower rate of their own for a patient's
    // key: past its burst of 20 the squatter is refused before the custodian looks.
    let archive = ArchiveId::from_hex(&promise.mother.archive).unwrap();
    let api = c.anonymous(0);
    let mut fetch = |i: u64| {
        let request = fetch_request(&api, chain, &squatter, archive, Purpose::PatientRequest, i);
        let mut conn = connect_from(&c.nodes[0].api, ATTACKER, WAIT).unwrap();
        exchange(&mut conn, &request).unwrap().0
    };
    let statuses: Vec<u16> = (0..30).map(&mut fetch).collect();
    assert!(statuses[..20].iter().all(|s| *s == 403), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    promise.history_is_only_ours();
}

/// Keys that are no one ask for the mother's archive, each request properly signed: every one
/// is refused 403 before it reaches the custodian, counted, and her history stays hers.
#[test]
fn strangers_asking_for_an_archive_write_nothing_into_her_history() {
    let c = ready();
    let mut promise = Promise::new(&c);
    let chain = c.chain_id();
    let archive = ArchiveId::from_hex(&promise.mother.archive).unwrap();
    let api = c.anonymous(0);
    let stop = Arc::new(AtomicBool::new(false));
    let answers = flood(&c.nodes[0].api, ATTACKER, 2, &stop, move |i| {
        let stranger = Keypair::from_seed(&sha256(&i.to_le_bytes()));
        fetch_request(&api, chain, &stranger, archive, Purpose::Treat, i)
    });
    std::thread::sleep(Duration::from_secs(2));
    promise.keep("stranger-fetch-flood");
    stop.store(true, Ordering::Relaxed);
    let answers = answers.join().unwrap();
    eprintln!("stranger fetches: {answers:?}");
    let refused = answers.get("403").copied().unwrap_or(0);
    assert!(refused > 0, "{answers:?}");
    assert!(
        answers.keys().all(|s| s == "403" || s == "429"),
        "a stranger's fetch got something else than a refusal: {answers:?}"
    );
    assert!(counter(&c, "cradle_requests_refused_unknown_total") >= refused);
    promise.history_is_only_ours();
}

/// Someone behind the address everyone else uses too sends anonymous requests as fast as it
/// can: past the address's rate it gets 429, and the signed requests of the people who share
/// the address, charged to their own keys, are served as before. Then it holds request bodies
/// half sent: past the node's budget for buffered bodies the next is refused 503 at once
/// rather than held in memory, and reads still go through.
#[test]
fn an_anonymous_flood_from_a_shared_address_does_not_shut_its_users_out() {
    let c = ready();
    let mut promise = Promise::new(&c);
    let stop = Arc::new(AtomicBool::new(false));
    let answers = flood(&c.nodes[0].api, SHARED, 4, &stop, |_| {
        http("GET", "/v1/status", &[], b"")
    });
    std::thread::sleep(Duration::from_secs(2));
    promise.keep("shared-address-flood");
    promise.keep("shared-address-flood");
    stop.store(true, Ordering::Relaxed);
    let answers = answers.join().unwrap();
    eprintln!("anonymous flood: {answers:?}");
    assert!(answers.get("429").copied().unwrap_or(0) > 0, "{answers:?}");
    assert!(counter(&c, "cradle_requests_rate_limited_ip_total") > 0);

    // Batch bodies of nearly 8 MB, each sent but for its last kilobyte and then held: eight
    // nearly spend the 64 MiB budget, booked as the bytes arrived.
    let api = c.nodes[0].api.clone();
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut conn = connect_from(&api, ATTACKER, Duration::from_secs(30)).unwrap();
        let head = "POST /v1/txs/batch HTTP/1.1\r\nHost: cradle\r\n\
                    Content-Length: 8000000\r\n\r\n";
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&vec![0u8; 7_999_000]).unwrap();
        conn.flush().unwrap();
        held.push(conn);
    }
    std::thread::sleep(Duration::from_millis(500));
    // A ninth whole batch does not fit: refused 503 busy at once, not held in memory.
    let mut conn = connect_from(&api, ATTACKER, Duration::from_secs(5)).unwrap();
    let started = Instant::now();
    conn.write_all(
        b"POST /v1/txs/batch HTTP/1.1\r\nHost: cradle\r\nContent-Length: 8000000\r\n\r\n",
    )
    .unwrap();
    let _ = conn.write_all(&vec![0u8; 8_000_000]);
    let _ = conn.flush();
    let raw = cradle_tests::tls::read_answer(&mut conn).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    assert!(raw.starts_with("HTTP/1.1 503"), "{raw}");
    assert!(raw.contains("\"busy\""), "{raw}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The fetch a clinician waits on is outside that budget.
    promise.keep("held-request-bodies");
    drop(held);

    // Then 64 uploads from the users' own address, each trickling: every slot of the address
    // taken by a request in flight. A newcomer takes the slot of the slowest.
    let mut trickling = Vec::new();
    for _ in 0..64 {
        let Ok(mut conn) = connect_from(&api, SHARED, Duration::from_secs(30)) else {
            continue;
        };
        let head = "POST /v1/txs HTTP/1.1\r\nHost: cradle\r\nContent-Length: 60000\r\n\r\n";
        if conn.write_all(head.as_bytes()).is_ok() && conn.write_all(&[0u8; 1300]).is_ok() {
            let _ = conn.flush();
            trickling.push(conn);
        }
    }
    std::thread::sleep(Duration::from_millis(1_500));
    promise.keep("trickled-uploads-from-the-shared-address");
    drop(trickling);

    // And 64 connections from the users' own address that each make one anonymous request,
    // idle, and come straight back when cut: a newcomer takes an idle one's slot, and the
    // attacker's return does not take the newcomer's while it is getting started.
    let stop = Arc::new(AtomicBool::new(false));
    let returning: Vec<_> = (0..64)
        .map(|_| {
            let (api, stop) = (api.clone(), stop.clone());
            std::thread::spawn(move || {
                let until = Instant::now() + FLOOD_MAX;
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    let Ok(mut conn) = connect_from(&api, SHARED, Duration::from_secs(1)) else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    if exchange(&mut conn, &http("GET", "/healthz", &[], b"")).is_err() {
                        continue;
                    }
                    // Idle until the node cuts it (or the flood ends).
                    let mut byte = [0u8; 1];
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        match std::io::Read::read(&mut conn, &mut byte) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) => {}
                            Err(_) => break,
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1_500));
    promise.keep("returning-idlers-from-the-shared-address");
    stop.store(true, Ordering::Relaxed);
    for t in returning {
        t.join().unwrap();
    }
    promise.history_is_only_ours();
}

/// A client that asks for a large archive and never reads the answer loses its connection once
/// the answer has made no progress for `api.answer_stall_ms` (2 s here), rather than holding a
/// slot that, being busy, no newcomer may take.
#[test]
fn a_client_that_never_reads_its_answer_loses_the_connection() {
    let mut c = Cluster::write(4, &[]).unwrap();
    let config_path = c.nodes[0].home.join("config.toml");
    let mut config = cradle_genesis::config::NodeConfig::load(&config_path).unwrap();
    config.api.answer_stall_ms = 2_000;
    config.save(&config_path).unwrap();
    for i in 0..4 {
        c.start_node(i).unwrap();
    }
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    // 32 MB that does not compress: far more than the sockets between them buffer.
    let work = c.dir.path().join("stall");
    std::fs::create_dir_all(&work).unwrap();
    let big = work.join("ultrasound.bin");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..32 * 1024 * 1024 / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    std::fs::write(&big, &bytes).unwrap();
    let mother = cradle_tests::cli::mother_with_archive(&c, &work, 0, &big);
    let key = cradle_genesis::keyfile::read_key_file(&mother.key).unwrap();
    let archive = ArchiveId::from_hex(&mother.archive).unwrap();
    let request = fetch_request(
        &c.anonymous(0),
        c.chain_id(),
        &key,
        archive,
        Purpose::PatientRequest,
        1,
    );
    let mut conn = connect_from(&c.nodes[0].api, ATTACKER, WAIT).unwrap();
    conn.write_all(&request).unwrap();
    conn.flush().unwrap();
    // Take the first bytes of the answer, then stop reading.
    let mut first = [0u8; 1024];
    let n = std::io::Read::read(&mut conn, &mut first).unwrap();
    assert!(
        String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first[..n])
    );
    std::thread::sleep(Duration::from_secs(8));
    // What the sockets held arrives, then the end (the node closed the connection, with no
    // more to say): far less than the archive. A read that waits instead means it kept it.
    conn.sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = n;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match std::io::Read::read(&mut conn, &mut buf) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) => {
                assert!(
                    !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "the node kept the stalled connection open ({got} bytes so far)"
                );
                break;
            }
        }
    }
    assert!(
        got < bytes.len(),
        "the node kept sending to a client that stopped reading ({got} bytes)"
    );
    // And the node serves the mother as ever.
    assert!(c.status(0).is_ok());
}
