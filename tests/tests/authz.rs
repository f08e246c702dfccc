//! Every route of the API, asked by someone it does not concern: an anonymous caller gets 401,
//! an enrolled patient asking about another mother gets 403, and neither learns anything about
//! her. The routes come from the node's own route table, so a new route without a policy
//! fails here.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::time::Duration;

use cradle_client::api::{ApiClient, ApiError};
use cradle_ledger::Keypair;
use cradle_tests::Cluster;
use cradle_tests::cli::{cradle, mother_with_archive, ok, shared_record};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Anyone: health, and the status as height and block hash.
    Open,
    /// Anyone the ledger knows (a member or an enrolled patient): nothing about a patient.
    Known,
    /// Authorized by the signed transaction in the body and the ledger's rules.
    TxSigned,
    /// Only the parties a record concerns, members or regulators as the policy says.
    Restricted,
}

fn class(path: &str) -> Class {
    match path {
        "/healthz" | "/readyz" | "/v1/status" => Class::Open,
        // The browser portal's static files: the page and its verification library, no data.
        "/portal" | "/portal/" | "/portal/{*path}" => Class::Open,
        // A clinician's ledger record is pseudonymous (id, institution, role, status).
        // The member sets are as public to the consortium's parties as genesis is: every
        // client follows them to check certificates.
        "/v1/genesis"
        | "/v1/members"
        | "/v1/audit/consistency"
        | "/v1/staff/{key}"
        | "/v1/governance/sets" => Class::Known,
        "/v1/txs" | "/v1/txs/batch" => Class::TxSigned,
        _ => Class::Restricted,
    }
}

/// The route's path with real identifiers of the mother's records.
struct Ids {
    mother: String,
    /// The key of a clinician who read the mother's record.
    staff: String,
    archive: String,
    grant: String,
    tx: String,
}

fn fill(path: &str, ids: &Ids) -> String {
    let id = if path.starts_with("/v1/grants/") {
        &ids.grant
    } else {
        &ids.archive
    };
    let key = if path.starts_with("/v1/staff/") {
        &ids.staff
    } else {
        &ids.mother
    };
    let filled = path
        .replace("{height}", "1")
        .replace("{hash}", &ids.tx)
        .replace("{key}", key)
        .replace("{archive}", &ids.archive)
        .replace("{id}", id)
        .replace("{*path}", "js/history.js");
    if filled == "/v1/audit/consistency" {
        format!("{filled}?from=0")
    } else {
        filled
    }
}

/// The status and body of a call, whatever it answered.
fn call(api: &ApiClient, method: &str, path: &str) -> (u16, String) {
    let got = match method {
        "GET" => api
            .get_bytes(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        "POST" => api
            .post_bytes(path, b"not a transaction")
            .map(|v| v.to_string()),
        "PUT" => {
            let mut body: &[u8] = b"ciphertext";
            api.put_reader(path, "", "x-not-signed", 10, &mut body)
                .map(|v| v.to_string())
        }
        other => panic!("no test for method {other}"),
    };
    match got {
        Ok(body) => (200, body),
        Err(ApiError::Refused { status, reason, .. }) => (status, reason),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

#[test]
fn every_route_refuses_whom_it_does_not_concern_and_tells_them_nothing() {
    // Node 3 serves member institutions only: mutual TLS with the keys that sign for members now.
    let mut c = Cluster::write(4, &[]).unwrap();
    let config_path = c.nodes[3].home.join("config.toml");
    let mut config = cradle_genesis::config::NodeConfig::load(&config_path).unwrap();
    config.api.member_tls = true;
    config.save(&config_path).unwrap();
    for i in 0..4 {
        c.start_node(i).unwrap();
    }
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    let work = c.dir.path().join("work");
    let record = shared_record("Karla_Kessler_eb2955c7-1c46-47bd-bffc-bae94824b629.json");
    let mother = mother_with_archive(&c, &work.join("mother"), 0, &record);
    let other = mother_with_archive(&c, &work.join("other"), 1, &record);
    let grantee = c.genesis.members[1].name.clone();
    let granted: Value = serde_json::from_str(&ok(cradle(
        &c.nodes[0].api,
        &mother.key,
        &[
            "consent",
            "grant",
            "--grantee",
            &grantee,
            "--purpose",
            "TREAT",
            "--expires",
            "30d",
            "--format",
            "json",
        ],
    )))
    .unwrap();
    // The grantee's midwife reads the mother's record: the mother may then learn her name.
    let midwife = cradle_tests::cli::clinician(&c, &work, 1, "midwife", "midwifery", "Wang Fang");
    let read_out = work.join("read.json");
    ok(cradle(
        &c.nodes[0].api,
        &midwife.key,
        &[
            "archive",
            "get",
            &mother.archive,
            "--purpose",
            "TREAT",
            "--out",
            read_out.to_str().unwrap(),
        ],
    ));
    let midwife_key = cradle_genesis::keyfile::read_key_file(&midwife.key).unwrap();
    let mother_key = cradle_genesis::keyfile::read_key_file(&mother.key).unwrap();
    let other_key = cradle_genesis::keyfile::read_key_file(&other.key).unwrap();
    let ids = Ids {
        mother: mother_key.public_key().to_hex(),
        staff: midwife_key.public_key().to_hex(),
        archive: mother.archive.clone(),
        grant: granted["grant"].as_str().unwrap().to_string(),
        tx: granted["tx"].as_str().unwrap().to_string(),
    };
    let height = granted["height"].as_u64().unwrap();
    c.wait_height(0, height, WAIT).unwrap();
    let chain = c.genesis.chain_id();
    let anonymous = c.anonymous(0);
    let stranger = c.anonymous(0).signed_by(&other_key, chain);
    let secrets = [&ids.mother, &ids.archive, &ids.grant];

    let routes = cradle_node::http::routes();
    assert!(routes.len() >= 20, "the route table lost routes");
    for route in &routes {
        let path = fill(route.path, &ids);
        for method in route.methods {
            let class = class(route.path);
            let (status, body) = call(&anonymous, method, &path);
            let expected: &[u16] = match (class, *method) {
                // Ready or not, /readyz names nothing but the node's own state.
                (Class::Open, _) if route.path == "/readyz" => &[200, 503],
                // `/portal` sends the browser to `/portal/` (or the client followed it there).
                (Class::Open, _) if route.path == "/portal" => &[200, 308],
                (Class::Open, _) => &[200],
                (Class::TxSigned, _) => &[400],
                _ => &[401],
            };
            assert!(
                expected.contains(&status),
                "anonymous {method} {path}: {status} {body}"
            );
            for s in secrets {
                assert!(
                    !body.contains(s.as_str()),
                    "anonymous {method} {path} learnt {s}: {body}"
                );
            }
            if class == Class::Restricted && *method == "GET" {
                let (status, body) = call(&stranger, method, &path);
                assert_eq!(status, 403, "another patient {method} {path}: {body}");
                for s in secrets {
                    assert!(
                        !body.contains(s.as_str()),
                        "another patient learnt {s} from {path}"
                    );
                }
            }
        }
    }
    // A well-formed transaction from a key that is no one is refused before it takes space.
    let nobody = Keypair::generate().unwrap();
    let (status, body) = match anonymous.post_bytes(
        "/v1/txs",
        &cradle_tests::txs::enrol(chain, &nobody, &nobody),
    ) {
        Ok(v) => (200, v.to_string()),
        Err(ApiError::Refused { status, reason, .. }) => (status, reason),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status, 403, "a stranger's transaction: {body}");

    // The anonymous status says how far the chain is, nothing more.
    let status = anonymous.status().unwrap();
    let mut fields: Vec<&str> = status
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(fields, ["block_hash", "height", "node_key"]);

    // The parties it concerns are answered: the refusals above are the policy, not an outage.
    let mother_api = c.anonymous(0).signed_by(&mother_key, chain);
    for path in [
        format!("/v1/patients/{}", ids.mother),
        format!("/v1/patients/{}/archives", ids.mother),
        format!("/v1/patients/{}/grants", ids.mother),
        format!("/v1/archives/{}", ids.archive),
        format!("/v1/grants/{}", ids.grant),
        format!("/v1/nonce/{}", ids.mother),
        format!("/v1/audit/patient/{}", ids.mother),
        "/v1/governance/sets".to_string(),
        format!("/v1/patients/{}/keys", ids.mother),
        format!("/v1/patients/{}/identity/proof", ids.mother),
    ] {
        assert_eq!(
            call(&mother_api, "GET", &path).0,
            200,
            "the mother reading {path}"
        );
    }
    let grantee_api = c.client(1);
    for path in [
        format!("/v1/grants/{}", ids.grant),
        format!("/v1/patients/{}/archives", ids.mother),
        format!("/v1/blocks/{height}"),
        format!("/v1/txs/{}", ids.tx),
    ] {
        assert_eq!(
            call(&grantee_api, "GET", &path).0,
            200,
            "the grantee reading {path}"
        );
    }
    // A member she never granted and whose care she is not in does not get her list.
    assert_eq!(
        call(
            &c.client(2),
            "GET",
            &format!("/v1/patients/{}/archives", ids.mother)
        )
        .0,
        403
    );
    let regulator =
        cradle_genesis::keyfile::read_key_file(c.dir.path().join("net/regulator/regulator.key"))
            .unwrap();
    let regulator_api = c.anonymous(0).signed_by(&regulator, chain);
    for path in [
        "/v1/audit/break-glass",
        "/v1/audit/evidence",
        "/v1/audit/recoveries",
        "/v1/governance/proposals",
    ] {
        assert_eq!(
            call(&regulator_api, "GET", path).0,
            200,
            "the regulator reading {path}"
        );
    }
    assert_eq!(call(&c.client(2), "GET", "/v1/governance/proposals").0, 200);
    assert_eq!(call(&mother_api, "GET", "/v1/audit/break-glass").0, 403);
    assert_eq!(call(&mother_api, "GET", "/v1/governance/proposals").0, 403);
    assert_eq!(call(&mother_api, "GET", "/v1/audit/recoveries").0, 403);

    // The midwife's name: to the mother whose record she read, from the midwife's own
    // institution's node; to her institution; never to another mother or another institution.
    let directory = format!("/v1/staff/{}/directory", ids.staff);
    let mother_at_b = c.anonymous(1).signed_by(&mother_key, chain);
    let (status, body) = call(&mother_at_b, "GET", &directory);
    assert_eq!(status, 200, "the mother asking her reader's name: {body}");
    assert!(body.contains("Wang Fang"), "{body}");
    assert_eq!(call(&c.client(1), "GET", &directory).0, 200);
    let other_at_b = c.anonymous(1).signed_by(&other_key, chain);
    assert_eq!(call(&other_at_b, "GET", &directory).0, 403);
    assert_eq!(call(&c.client(2), "GET", &directory).0, 403);
    // Another node than hers keeps no names: it says whose node to ask.
    assert_eq!(call(&mother_api, "GET", &directory).0, 421);
    // Only her institution writes its directory; the midwife herself does not.
    let staff_list = format!(
        "/v1/members/{}/staff",
        c.genesis.members[1].public_key.to_hex()
    );
    assert_eq!(call(&c.client(1), "GET", &staff_list).0, 200);
    assert_eq!(call(&c.client(2), "GET", &staff_list).0, 403);
    assert_eq!(call(&mother_at_b, "GET", &staff_list).0, 403);
    let midwife_api = c.anonymous(1).signed_by(&midwife_key, chain);
    assert_eq!(call(&midwife_api, "GET", &staff_list).0, 403);
    for (who, key) in [
        ("another institution", c.member_key(2).unwrap()),
        ("the midwife", midwife_key),
    ] {
        let s =
            cradle_client::session::Session::over(c.anonymous(1), c.genesis.clone(), key).unwrap();
        let entry = cradle_client::session::staff::DirectoryEntry {
            name: "Someone Else".into(),
            staff_number: "X-1".into(),
        };
        let refused = s.set_directory(&midwife_key_public(&midwife.key), &entry);
        assert!(
            matches!(
                &refused,
                Err(cradle_client::session::ClientError::Api(
                    ApiError::Refused { status: 403, .. }
                ))
            ),
            "{who} rewrote the directory: {refused:?}"
        );
    }

    // The members-only node: a member's client presents its certificate and is served; a
    // patient's, or no certificate at all, does not get past the handshake.
    assert!(c.client(3).status().unwrap()["peers"].as_u64().is_some());
    for (who, api) in [
        ("a patient", c.anonymous(3).signed_by(&mother_key, chain)),
        ("an anonymous caller", c.anonymous(3)),
    ] {
        match api.status() {
            Err(ApiError::Transport(_)) => {}
            other => panic!("{who} reached the members-only node: {other:?}"),
        }
    }

    // A man in the middle without a member's key: the client refuses in the handshake, before
    // it sends anything, and no grant is made.
    let impostor = Impostor::start();
    let out = cradle(
        &impostor.url,
        &mother.key,
        &[
            "--genesis",
            c.dir.path().join("net/genesis.json").to_str().unwrap(),
            "consent",
            "grant",
            "--grantee",
            &c.genesis.members[2].name,
            "--purpose",
            "TREAT",
            "--expires",
            "30d",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not the key the genesis file gives it"),
        "{stderr}"
    );
    assert_eq!(
        impostor.bytes_after_handshake(),
        0,
        "the client sent data to an impostor"
    );
    let grants = mother_api
        .get_json(&format!("/v1/patients/{}/grants", ids.mother))
        .unwrap();
    assert_eq!(
        grants["grants"].as_array().unwrap().len(),
        1,
        "a grant went through"
    );
    framework_refusals_are_json(&c.nodes[0].api);
}

/// What the web framework refuses by itself (a method a route does not take, a body declared
/// over its limit) comes in the API's one error shape too.
fn framework_refusals_are_json(api: &str) {
    let mut conn = cradle_tests::tls::connect(api, WAIT).unwrap();
    let cases: [(&str, &str, u16, &str); 3] = [
        ("DELETE /v1/status", "Content-Length: 0", 405, "bad_request"),
        (
            "GET /v1/no-such-thing",
            "Content-Length: 0",
            404,
            "not_found",
        ),
        // Declared over the limit: refused before a byte of it is read.
        (
            "POST /v1/txs",
            "Content-Length: 100000000",
            413,
            "payload_too_large",
        ),
    ];
    for (line, length, status, code) in cases {
        let request = format!("{line} HTTP/1.1\r\nHost: cradle\r\n{length}\r\n\r\n");
        let (got, body) = cradle_tests::tls::exchange(&mut conn, request.as_bytes()).unwrap();
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(got, status, "{line}: {body}");
        let answer: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{line}: not JSON ({e}): {body}"));
        assert_eq!(answer["code"], code, "{line}: {body}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
}

/// A TLS server with a certificate of its own key (no member's): it completes the handshake if
/// the client lets it, and counts what the client sends after.
struct Impostor {
    url: String,
    received: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Impostor {
    fn start() -> Self {
        use std::io::Read;
        let key = cradle_ledger::Keypair::generate().unwrap();
        let tls = cradle_node::http::tls::member_server_config(
            "Impostor",
            &key.ed25519_seed(),
            vec!["127.0.0.1".into()],
        )
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = received.clone();
        std::thread::spawn(move || {
            // One connection is all a refusing client makes; bounded by the read timeout.
            if let Ok((sock, _)) = listener.accept() {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
                let conn = rustls::ServerConnection::new(tls).unwrap();
                let mut stream = rustls::StreamOwned::new(conn, sock);
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    counter.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        Self { url, received }
    }

    fn bytes_after_handshake(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn midwife_key_public(path: &std::path::Path) -> cradle_ledger::PublicKey {
    cradle_genesis::keyfile::read_key_file(path)
        .unwrap()
        .public_key()
}
