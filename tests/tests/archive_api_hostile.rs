//! Hostile requests to a custodian's archive endpoints on a real four-member localnet.
//!
//! One patient and one archive are set up the normal way, through the client library. Then
//! the upload (`PUT /v1/archives/{sha256}`) and fetch (`POST /v1/archives/{id}/fetch`)
//! endpoints are hit with hand-built HTTP/1.1 requests: missing, malformed, misdirected,
//! stale, replayed and forged signatures, wrong bodies, oversize and unframed bodies, unknown
//! archives and the wrong custodian. Each must be answered with its 4xx status and a one-line
//! JSON reason, and must change nothing: no object or temporary file in the store, no access
//! record on the ledger. The only access recorded is the one permitted fetch, and the node still
//! serves the archive to its patient afterwards.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cradle_client::session::{Quiet, Session};
use cradle_genesis::clock::now_ms;
use cradle_genesis::config::NodeConfig;
use cradle_ledger::access::{AccessRequest, SignedAccessRequest};
use cradle_ledger::api_request::{AUTH_HEADER, ApiRequest};
use cradle_ledger::crypto::{TAG_ACCESS_REQUEST, sha256};
use cradle_ledger::tx::{Category, EnrolPatient, Purpose};
use cradle_ledger::{ArchiveId, Hash, Keypair};
use cradle_tests::Cluster;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
/// Longest wait for one answer: above the node's own 30 s wait for a commit.
const ANSWER_WAIT: Duration = Duration::from_secs(40);
/// The custodian's lowered limit on one archive, so that an oversize upload is cheap to send.
const ARCHIVE_BYTES_MAX: u64 = 64 * 1024;
/// The patient's key, made twice: once to sign by hand, once for her client session.
const PATIENT_SEED: [u8; 32] = [0x42; 32];

/// What a node answered: status, headers (lowercased names) and body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one raw HTTP/1.1 request and reads the whole answer. `head` is the request line and
/// headers without the final blank line; `Host` and `Connection: close` are added. A write that
/// fails (the node may answer and close before reading an unwanted body) is not an error: the
/// answer is what matters. `half_close` ends the write side after `body`, as a client that
/// hangs up mid-upload would.
fn send(api: &str, head: &str, body: &[u8], half_close: bool) -> Reply {
    send_within(api, head, body, half_close, ANSWER_WAIT)
}

/// [`send`], failing when no complete answer arrives within `wait`.
fn send_within(api: &str, head: &str, body: &[u8], half_close: bool, wait: Duration) -> Reply {
    let addr = cradle_tests::tls::addr_of(api);
    let mut conn = cradle_tests::tls::connect(api, wait).unwrap();
    let mut request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    let _ = conn.write_all(&request);
    if half_close {
        cradle_tests::tls::half_close(&mut conn);
    }
    let raw = cradle_tests::tls::read_answer(&mut conn)
        .unwrap_or_else(|e| panic!("no answer to {head:?} within {wait:?}: {e}"));
    parse_reply(&raw, head)
}

fn parse_reply(raw: &[u8], head: &str) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no HTTP answer to {head:?}: {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || data.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[(eol + 4 + size).min(data.len())..];
    }
}

/// A refusal: `status`, and a body that is one line of JSON whose `error` names `reason`.
fn refused(r: &Reply, status: u16, reason: &str, case: &str) -> String {
    let text = r.text();
    assert_eq!(
        r.status, status,
        "{case}: wanted HTTP {status} ({reason}), got {} with {text:?}",
        r.status
    );
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "{case}: the reason is not one line: {text:?}"
    );
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{case}: the reason is not JSON ({e}): {text:?}"));
    let error = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{case}: no \"error\" in {text:?}"));
    assert!(
        error.contains(reason),
        "{case}: wanted {reason:?} in the reason, got {error:?}"
    );
    error.to_string()
}

/// Access request ids: unique within the test, so no two requests collide by accident.
fn request_id() -> [u8; 16] {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&NEXT.fetch_add(1, Ordering::SeqCst).to_le_bytes());
    id[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    id
}

/// `who`'s own signed request to read `archive` for `purpose`, encoded as a fetch body.
fn access_body(chain: &Hash, who: &Keypair, archive: ArchiveId, purpose: Purpose) -> Vec<u8> {
    let request = AccessRequest {
        accessor: who.public_key(),
        archive,
        purpose,
        justification: None,
        requested_at_ms: now_ms(),
        request_id: request_id(),
    };
    let signature = who.sign(TAG_ACCESS_REQUEST, chain, &request);
    cradle_ledger::codec::encode(&SignedAccessRequest { request, signature })
}

/// The `x-cradle-auth` value: `key` signs `method path`, a body hashing to `body_sha256`, at
/// `time_ms`, with a fresh nonce.
/// The member key of node 0, whom every request here is for (the localnet's keys are
/// deterministic, so every scene's node 0 has the same).
static NODE0: std::sync::OnceLock<cradle_ledger::PublicKey> = std::sync::OnceLock::new();

fn auth(
    chain: &Hash,
    key: &Keypair,
    method: &str,
    path: &str,
    body_sha256: Hash,
    time_ms: u64,
) -> String {
    let node = *NODE0.get().expect("a scene was set up");
    auth_to(&node, chain, key, method, path, body_sha256, time_ms)
}

/// [`auth`] for the node of member key `node`.
fn auth_to(
    node: &cradle_ledger::PublicKey,
    chain: &Hash,
    key: &Keypair,
    method: &str,
    path: &str,
    body_sha256: Hash,
    time_ms: u64,
) -> String {
    ApiRequest::new(key.public_key(), *node, method, path, body_sha256, time_ms)
        .unwrap()
        .sign(key, chain)
        .to_header()
}

fn fetch_path(archive: &ArchiveId) -> String {
    format!("/v1/archives/{}/fetch", archive.to_hex())
}

/// `POST path` with `body`, its length, and `auth` if any.
fn post(api: &str, path: &str, auth: Option<&str>, body: &[u8]) -> Reply {
    post_within(api, path, auth, body, ANSWER_WAIT)
}

fn post_within(api: &str, path: &str, auth: Option<&str>, body: &[u8], wait: Duration) -> Reply {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {}",
        body.len()
    );
    if let Some(a) = auth {
        head.push_str(&format!("\r\n{AUTH_HEADER}: {a}"));
    }
    send_within(api, &head, body, false, wait)
}

/// `PUT path` with `auth`, a `Content-Length` of `declared` (none when `None`) and `body`.
fn put(api: &str, path: &str, auth: &str, declared: Option<u64>, body: &[u8]) -> Reply {
    let mut head = format!(
        "PUT {path} HTTP/1.1\r\nContent-Type: application/octet-stream\r\n{AUTH_HEADER}: {auth}"
    );
    if let Some(n) = declared {
        head.push_str(&format!("\r\nContent-Length: {n}"));
    }
    send(api, &head, body, false)
}

fn access_log_size(c: &Cluster, node: usize) -> u64 {
    c.status(node).unwrap()["access_log_size"].as_u64().unwrap()
}

/// Waits until node `node`'s access log holds exactly `want` records; more is a failure at
/// once, as is still fewer after a few seconds.
fn wait_access_log(c: &Cluster, node: usize, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = access_log_size(c, node);
        assert!(
            got <= want,
            "node {node} holds {got} access records, wanted {want}: a refused request was recorded"
        );
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {node} holds {got} access records, wanted {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A running localnet with one enrolled patient and one archive held by node 0.
struct Scene {
    c: Cluster,
    chain: Hash,
    /// Node 0's API: County Hospital 1, the custodian.
    api: String,
    patient: Keypair,
    archive: ArchiveId,
    plaintext: Vec<u8>,
    /// The stored ciphertext, as the custodian's store holds it.
    ciphertext: Vec<u8>,
    work: std::path::PathBuf,
}

/// Writes a four-member localnet with node 0's `archives.archive_bytes_max` lowered, starts
/// it, and sets up the patient and her archive the normal way, through the client library.
fn scene() -> Scene {
    let mut c = Cluster::write(4, &[]).unwrap();
    let config_path = c.nodes[0].home.join("config.toml");
    let mut config = NodeConfig::load(&config_path).unwrap();
    config.archives.archive_bytes_max = ARCHIVE_BYTES_MAX;
    config.save(&config_path).unwrap();
    for i in 0..4 {
        c.start_node(i).unwrap();
    }
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    let api = c.nodes[0].api.clone();
    NODE0.get_or_init(|| c.genesis.members[0].public_key);
    let patient = Keypair::from_seed(&PATIENT_SEED);
    let work = c.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let record = work.join("visit.txt");
    let plaintext: Vec<u8> = (0..3000u32)
        .map(|i| b"prenatal visit "[i as usize % 15])
        .collect();
    std::fs::write(&record, &plaintext).unwrap();
    let hospital = Session::connect(&api, c.genesis.clone(), c.member_key(0).unwrap()).unwrap();
    hospital
        .enrol_patient(EnrolPatient::prove(&patient, &c.chain_id()))
        .unwrap();
    let put = hospital
        .put_archive(
            &record,
            patient.public_key(),
            Category::PrenatalVisit,
            &Quiet,
        )
        .unwrap();
    let stored = c.nodes[0]
        .home
        .join("data/archives/objects")
        .join(hex::encode(put.ciphertext_sha256));
    let ciphertext = std::fs::read(&stored).unwrap();
    // Every node knows the archive before any of them is asked for it.
    for i in 0..4 {
        c.wait_height(i, put.tx.height, WAIT).unwrap();
    }
    Scene {
        chain: c.chain_id(),
        c,
        api,
        patient,
        archive: put.archive,
        plaintext,
        ciphertext,
        work,
    }
}

#[test]
fn hostile_archive_requests_are_refused_with_a_reason_and_change_nothing() {
    let started = Instant::now();
    let Scene {
        c,
        chain,
        api,
        patient,
        archive,
        plaintext,
        ciphertext,
        work,
    } = scene();
    let other_api = c.nodes[1].api.clone();
    let custodian_key = c.member_key(0).unwrap();
    let other_member = c.member_key(1).unwrap();
    let stranger = Keypair::from_seed(&[0x77; 32]);
    let objects = c.nodes[0].home.join("data/archives/objects");
    let tmp = c.nodes[0].home.join("data/archives/tmp");
    let log_before = access_log_size(&c, 0);
    let objects_before = names_in(&objects);
    let path = fetch_path(&archive);
    let good = |body: &[u8]| auth(&chain, &patient, "POST", &path, sha256(body), now_ms());

    // --- fetch: the signed-request header ---
    let body = access_body(&chain, &patient, archive, Purpose::PatientRequest);
    refused(
        &post(&api, &path, None, &body),
        401,
        "the request is not signed",
        "fetch without a signature",
    );
    refused(
        &post(&api, &path, Some("zz-not-hex"), &body),
        401,
        "malformed x-cradle-auth header",
        "fetch with a header that is not hex",
    );
    refused(
        &post(&api, &path, Some("01deadbeef"), &body),
        401,
        "malformed x-cradle-auth header",
        "fetch with a header that does not decode",
    );
    let elsewhere = fetch_path(&ArchiveId([0xab; 32]));
    let misdirected = auth(
        &chain,
        &patient,
        "POST",
        &elsewhere,
        sha256(&body),
        now_ms(),
    );
    refused(
        &post(&api, &path, Some(&misdirected), &body),
        401,
        "the signature is for another method or path",
        "fetch signed for another archive's path",
    );
    let with_query = auth(&chain, &patient, "POST", &path, sha256(&body), now_ms());
    refused(
        &post(&api, &format!("{path}?x=1"), Some(&with_query), &body),
        401,
        "the signature is for another method or path",
        "fetch sent with a query the signature does not cover",
    );
    let as_put = auth(&chain, &patient, "PUT", &path, sha256(&body), now_ms());
    refused(
        &post(&api, &path, Some(&as_put), &body),
        401,
        "the signature is for another method or path",
        "fetch signed as another method",
    );
    let other_body = access_body(&chain, &patient, archive, Purpose::PatientRequest);
    refused(
        &post(&api, &path, Some(&good(&other_body)), &body),
        401,
        "the body is not the one that was signed",
        "fetch whose body is not the signed one",
    );
    let ten_minutes_ago = now_ms() - 10 * 60 * 1000;
    let stale = auth(
        &chain,
        &patient,
        "POST",
        &path,
        sha256(&body),
        ten_minutes_ago,
    );
    refused(
        &post(&api, &path, Some(&stale), &body),
        401,
        "the request was signed at",
        "fetch signed ten minutes ago",
    );
    let mut forged = hex::decode(good(&body)).unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 0x01; // the last byte of the signature
    refused(
        &post(&api, &path, Some(&hex::encode(forged)), &body),
        401,
        "bad request signature",
        "fetch with an altered request signature",
    );

    // --- fetch: the access request in the body ---
    refused(
        &post(
            &api,
            &path,
            Some(&auth(
                &chain,
                &other_member,
                "POST",
                &path,
                sha256(&body),
                now_ms(),
            )),
            &body,
        ),
        403,
        "the access request is not the signer's own",
        "another member sends the patient's access request",
    );
    let for_other = access_body(
        &chain,
        &patient,
        ArchiveId([0xcd; 32]),
        Purpose::PatientRequest,
    );
    refused(
        &post(&api, &path, Some(&good(&for_other)), &for_other),
        400,
        "the access request names another archive",
        "access request for another archive than the path",
    );
    let mut bad_sig = body.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x01; // the last byte of the access request's signature
    refused(
        &post(&api, &path, Some(&good(&bad_sig)), &bad_sig),
        401,
        "bad access request signature",
        "access request with an altered signature",
    );
    let garbage = vec![0x01, 0xff, 0x00, 0x13];
    refused(
        &post(&api, &path, Some(&good(&garbage)), &garbage),
        400,
        "invalid access request",
        "a body that is not an access request",
    );
    let mut trailing = body.clone();
    trailing.push(0);
    refused(
        &post(&api, &path, Some(&good(&trailing)), &trailing),
        400,
        "invalid access request",
        "an access request with a trailing byte",
    );
    let oversize = vec![0u8; 5000];
    refused(
        &post(&api, &path, Some(&good(&oversize)), &oversize),
        413,
        "an access request is at most 4096 bytes",
        "a 5000-byte fetch body",
    );

    // --- fetch: which archive, and which node ---
    let unknown = ArchiveId([0x5e; 32]);
    let unknown_path = fetch_path(&unknown);
    // A member learns that the archive does not exist; a patient, for whom it is not hers,
    // gets the refusal a stranger gets.
    let unknown_body = access_body(&chain, &other_member, unknown, Purpose::Treat);
    refused(
        &post(
            &api,
            &unknown_path,
            Some(&auth(
                &chain,
                &other_member,
                "POST",
                &unknown_path,
                sha256(&unknown_body),
                now_ms(),
            )),
            &unknown_body,
        ),
        404,
        "no such archive on the ledger",
        "a member's fetch of an archive the ledger does not know",
    );
    let unknown_body = access_body(&chain, &patient, unknown, Purpose::PatientRequest);
    refused(
        &post(
            &api,
            &unknown_path,
            Some(&auth(
                &chain,
                &patient,
                "POST",
                &unknown_path,
                sha256(&unknown_body),
                now_ms(),
            )),
            &unknown_body,
        ),
        403,
        "only clinicians, member institutions and the archive's patient may ask for an archive",
        "a patient's fetch of an archive the ledger does not know",
    );
    refused(
        &post(
            &api,
            "/v1/archives/not-an-id/fetch",
            Some(&good(&body)),
            &body,
        ),
        400,
        "archive id must be 64 hex digits",
        "fetch with an archive id that is not hex",
    );
    // A request signed for the custodian cannot be replayed to another node.
    refused(
        &post(&other_api, &path, Some(&good(&body)), &body),
        421,
        "the request was signed for another node",
        "a fetch signed for node 0 replayed to node 1",
    );
    let custodian_name = c.genesis.members[0].name.clone();
    let for_other = auth_to(
        &c.genesis.members[1].public_key,
        &chain,
        &patient,
        "POST",
        &path,
        sha256(&body),
        now_ms(),
    );
    let reason = refused(
        &post(&other_api, &path, Some(&for_other), &body),
        421,
        "this node does not hold the archive",
        "fetch sent to a node that is not the custodian",
    );
    assert!(
        reason.contains(&custodian_name),
        "the refusal should name the custodian {custodian_name:?}: {reason:?}"
    );

    // Nothing so far reached the ledger.
    wait_access_log(&c, 0, log_before);

    // --- fetch: the patient reads her own archive once; the same request again is a replay ---
    let signed = good(&body);
    let first = post(&api, &path, Some(&signed), &body);
    assert_eq!(
        first.status,
        200,
        "the patient's own PATRQT fetch was refused: {}",
        first.text()
    );
    assert_eq!(first.header("x-cradle-outcome"), Some("permitted"));
    assert!(
        first.body == ciphertext,
        "served {} bytes that are not the stored ciphertext ({} bytes)",
        first.body.len(),
        ciphertext.len()
    );
    let access_tx = first.header("x-cradle-access-tx").unwrap().to_string();
    refused(
        &post(&api, &path, Some(&signed), &body),
        401,
        "the request was already used (replay)",
        "the same signed fetch sent twice",
    );
    let recorded = c
        .client(0)
        .get_json(&format!("/v1/txs/{access_tx}"))
        .unwrap();
    assert_eq!(recorded["kind"], "record_access", "{recorded}");
    assert_eq!(
        recorded["tx"]["tx"]["body"]["outcome"]["outcome"], "permitted",
        "{recorded}"
    );

    // --- upload ---
    let blob: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 251) as u8).collect();
    let blob_hash = sha256(&blob);
    let blob_path = format!("/v1/archives/{}", hex::encode(blob_hash));
    let upload_auth = |key: &Keypair| auth(&chain, key, "PUT", &blob_path, blob_hash, now_ms());
    let mut altered = blob.clone();
    altered[100] ^= 0x01;
    refused(
        &put(
            &api,
            &blob_path,
            &upload_auth(&custodian_key),
            Some(altered.len() as u64),
            &altered,
        ),
        400,
        "not the signed",
        "an upload whose bytes do not hash to the signed hash",
    );
    refused(
        &send(
            &api,
            &format!(
                "PUT {blob_path} HTTP/1.1\r\n{AUTH_HEADER}: {}\r\nContent-Length: {}",
                upload_auth(&custodian_key),
                blob.len()
            ),
            &blob[..1000],
            true,
        ),
        400,
        "interrupted",
        "an upload cut off half way",
    );
    let mut chunked = format!("{:x}\r\n", blob.len()).into_bytes();
    chunked.extend_from_slice(&blob);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    refused(
        &send(
            &api,
            &format!(
                "PUT {blob_path} HTTP/1.1\r\n{AUTH_HEADER}: {}\r\nTransfer-Encoding: chunked",
                upload_auth(&custodian_key)
            ),
            &chunked,
            false,
        ),
        411,
        "an archive upload needs a Content-Length",
        "a chunked upload without a Content-Length",
    );
    refused(
        &put(
            &api,
            &blob_path,
            &upload_auth(&custodian_key),
            Some(ARCHIVE_BYTES_MAX + 1),
            &[],
        ),
        413,
        &format!("above the limit of {ARCHIVE_BYTES_MAX}"),
        "an upload declared above archives.archive_bytes_max",
    );
    refused(
        &put(
            &api,
            &blob_path,
            &upload_auth(&stranger),
            Some(blob.len() as u64),
            &blob,
        ),
        403,
        "neither a member, a clinician nor an enrolled patient",
        "an upload signed by a key that is not a member",
    );
    refused(
        &put(
            &api,
            &blob_path,
            &upload_auth(&other_member),
            Some(blob.len() as u64),
            &blob,
        ),
        403,
        "is not this node's member",
        "an upload signed by another member",
    );
    let wrong_target = auth(
        &chain,
        &custodian_key,
        "PUT",
        &blob_path,
        sha256(b"other"),
        now_ms(),
    );
    refused(
        &put(
            &api,
            &blob_path,
            &wrong_target,
            Some(blob.len() as u64),
            &blob,
        ),
        401,
        "the body is not the one that was signed",
        "an upload signed for another hash",
    );
    refused(
        &send(
            &api,
            &format!("PUT {blob_path} HTTP/1.1\r\nContent-Length: {}", blob.len()),
            &blob,
            false,
        ),
        401,
        "the request is not signed",
        "an upload without a signature",
    );
    assert_eq!(
        names_in(&objects),
        objects_before,
        "a refused upload left an object in the store"
    );
    assert!(
        names_in(&tmp).is_empty(),
        "a refused upload left temporary files: {:?}",
        names_in(&tmp)
    );

    // The same upload, well formed, is stored: the refusals above were for their defects.
    let accepted = put(
        &api,
        &blob_path,
        &upload_auth(&custodian_key),
        Some(blob.len() as u64),
        &blob,
    );
    assert_eq!(accepted.status, 201, "{}", accepted.text());
    assert_eq!(
        std::fs::read(objects.join(hex::encode(blob_hash))).unwrap(),
        blob
    );

    // A key that is neither a member nor the archive's patient is refused off the ledger, with
    // the same answer whether or not the archive exists: no denial lands in her history.
    let unknown = ArchiveId([0x5a; 32]);
    for (target, case) in [
        (archive, "a stranger's fetch of her archive"),
        (
            unknown,
            "a stranger's fetch of an archive that does not exist",
        ),
    ] {
        let path = fetch_path(&target);
        let body = access_body(&chain, &stranger, target, Purpose::Treat);
        let signed = auth(&chain, &stranger, "POST", &path, sha256(&body), now_ms());
        refused(
            &post(&api, &path, Some(&signed), &body),
            403,
            "neither a member, a clinician nor an enrolled patient",
            case,
        );
    }
    let metrics = c.metrics(0).unwrap();
    assert!(
        // The patient's fetch of an archive that is not hers, above: she is known, so the
        // custodian refuses it; the strangers are refused before the replay cache.
        metrics.contains("cradle_fetches_refused_strangers_total 1\n")
            && metrics.contains("cradle_requests_refused_unknown_total 3\n"),
        "strangers' refusals are counted: {metrics}"
    );

    // Only the permitted fetch was recorded, and the patient still gets her record.
    wait_access_log(&c, 0, log_before + 1);
    let mine =
        Session::connect(&api, c.genesis.clone(), Keypair::from_seed(&PATIENT_SEED)).unwrap();
    let out = work.join("mine.txt");
    let got = mine
        .get_archive(archive, Purpose::PatientRequest, None, &out, &Quiet)
        .unwrap();
    assert_eq!(got.outcome, "permitted");
    assert_eq!(std::fs::read(&out).unwrap(), plaintext);
    wait_access_log(&c, 0, log_before + 2);
    for i in 1..4 {
        let h = c.height(0).unwrap();
        c.wait_height(i, h, WAIT).unwrap();
        wait_access_log(&c, i, log_before + 2);
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

/// An access request the ledger would refuse to record (its request id already recorded, or
/// made longer ago than the genesis `access_request_ttl_ms`) is refused by the custodian at
/// once with a reason, not submitted and waited on; a fetch body far above the bound gets the
/// same JSON refusal as one just above it.
#[test]
fn access_requests_the_ledger_refuses_are_answered_at_once_with_a_reason() {
    let Scene {
        c,
        chain,
        api,
        patient,
        archive,
        ..
    } = scene();
    let path = fetch_path(&archive);
    let good = |body: &[u8]| auth(&chain, &patient, "POST", &path, sha256(body), now_ms());
    let quick = Duration::from_secs(5);
    let body = access_body(&chain, &patient, archive, Purpose::PatientRequest);
    let first = post(&api, &path, Some(&good(&body)), &body);
    assert_eq!(first.status, 200, "{}", first.text());
    wait_access_log(&c, 0, 1);

    // The recorded access request again, under a fresh signed-request header.
    let again = post_within(&api, &path, Some(&good(&body)), &body, quick);
    let status = again.status;
    assert!(
        (400..500).contains(&status),
        "a recorded access request sent again: HTTP {status} {}",
        again.text()
    );
    refused(&again, status, "", "a recorded access request sent again");

    // An access request made eleven minutes ago, under a fresh signed-request header.
    let request = AccessRequest {
        accessor: patient.public_key(),
        archive,
        purpose: Purpose::PatientRequest,
        justification: None,
        requested_at_ms: now_ms() - 11 * 60 * 1000,
        request_id: request_id(),
    };
    let signature = patient.sign(TAG_ACCESS_REQUEST, &chain, &request);
    let old = cradle_ledger::codec::encode(&SignedAccessRequest { request, signature });
    let stale = post_within(&api, &path, Some(&good(&old)), &old, quick);
    let status = stale.status;
    assert!(
        (400..500).contains(&status),
        "an access request made eleven minutes ago: HTTP {status} {}",
        stale.text()
    );
    refused(
        &stale,
        status,
        "",
        "an access request made eleven minutes ago",
    );

    // A fetch body far above the access request bound.
    let huge = vec![0u8; 70_000];
    refused(
        &post(&api, &path, Some(&good(&huge)), &huge),
        413,
        "at most 4096 bytes",
        "a 70000-byte fetch body",
    );
    wait_access_log(&c, 0, 1);
}

#[test]
fn one_members_denials_cannot_flood_a_mothers_history() {
    let Scene {
        c,
        chain,
        api,
        archive,
        ..
    } = scene();
    // County Hospital 2 (member 1) has no grant of hers: each fetch it asks for is denied, and
    // each denial is an entry in her history, until its denials of her reach their bound
    // (`api.rate.denial_per_patient_burst`, 12 by default); the next is refused with 429 and
    // Retry-After, and nothing more is recorded.
    let member = c.member_key(1).unwrap();
    let path = fetch_path(&archive);
    for i in 1..=12u64 {
        let body = access_body(&chain, &member, archive, Purpose::Treat);
        let header = auth(&chain, &member, "POST", &path, sha256(&body), now_ms());
        let denied = post(&api, &path, Some(&header), &body);
        assert_eq!(denied.status, 403, "denial {i}: {}", denied.text());
        assert!(denied.text().contains("access_denied"), "{}", denied.text());
        wait_access_log(&c, 0, i);
    }
    let body = access_body(&chain, &member, archive, Purpose::Treat);
    let header = auth(&chain, &member, "POST", &path, sha256(&body), now_ms());
    let limited = post(&api, &path, Some(&header), &body);
    refused(
        &limited,
        429,
        "too many denied requests from this key for this patient's records",
        "a 13th denial within the minute",
    );
    assert!(
        limited.header("retry-after").is_some(),
        "{}",
        limited.text()
    );
    std::thread::sleep(Duration::from_secs(2));
    wait_access_log(&c, 0, 12);
}
