//! The archive path end to end on a real four-member localnet, through the real `cradle` CLI,
//! with a real synthetic prenatal record as the archive: put, deny, grant, get, purpose not
//! covered, revoke, break-glass, altered ciphertext, non-member upload, expired grant, and
//! break-glass forbidden by policy. Every access is checked on the ledger with its outcome.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cradle_ledger::access::AccessEvent;
use cradle_ledger::audit::{AuditAnswer, AuditEvents, ConsistencyAnswer};
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::tx::Purpose;
use cradle_tests::Cluster;
use cradle_tests::cluster::bin;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// The prenatal record used as the archive: the largest of the shared samples (1.2 MB, so it
/// spans two encryption chunks).
fn prenatal_record() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../shared/testdata/fhir-prenatal/Nona_Kris_5f72d2e8-c56b-4288-a829-c1c1ebfad423.json",
    );
    assert!(
        p.is_file(),
        "{} is missing: the shared test data must sit beside the repository",
        p.display()
    );
    p
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Out {
    let out = cmd.output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

fn cradle(node: &str, key: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new(bin("cradle").unwrap());
    if !args.contains(&"--genesis")
        && let Some(genesis) = cradle_tests::cluster::genesis_for(node)
    {
        cmd.arg("--genesis").arg(genesis);
    }
    run(cmd.arg("--node").arg(node).arg("--key").arg(key).args(args))
}

/// `cradle audit ARGS --verify`, signed with `key`, trusting only `genesis`.
fn audit_verify(node: &str, key: &Path, genesis: &Path, checkpoint: &Path, args: &[&str]) -> Out {
    let mut full = vec!["audit"];
    full.extend_from_slice(args);
    full.push("--verify");
    let genesis = genesis.to_str().unwrap();
    let checkpoint = checkpoint.to_str().unwrap();
    full.extend_from_slice(&["--genesis", genesis, "--checkpoint", checkpoint]);
    cradle(node, key, &full)
}

fn ok(out: Out) -> String {
    assert_eq!(
        out.code, 0,
        "cradle failed: stdout {:?} stderr {:?}",
        out.stdout, out.stderr
    );
    out.stdout
}

fn json(out: Out) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

/// A refused command: exit 1, one line on stderr containing `reason`.
fn refused(out: Out, reason: &str) -> String {
    assert_eq!(
        out.code, 1,
        "expected a refusal ({reason}): stdout {:?} stderr {:?}",
        out.stdout, out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "stderr: {:?}", out.stderr);
    assert!(
        out.stderr.contains(reason),
        "expected {reason:?} in {:?}",
        out.stderr
    );
    out.stderr
}

/// The access record a denial names in its message.
fn access_tx_of(stderr: &str) -> String {
    let at = stderr
        .find("transaction ")
        .unwrap_or_else(|| panic!("no access record named in {stderr:?}"));
    stderr[at + "transaction ".len()..]
        .chars()
        .take(64)
        .collect()
}

/// The committed access record's outcome: `permitted`, `denied:<reason>` or `break_glass`, as
/// `node` has it. Another replica may be a block behind the custodian that answered, so it is
/// given until `WAIT` to commit the record.
fn recorded_outcome(c: &Cluster, node: usize, tx: &str) -> String {
    let v = cradle_tests::cli::committed_tx(c, node, tx, WAIT);
    assert_eq!(v["kind"], "record_access", "{v}");
    let outcome = &v["tx"]["tx"]["body"]["outcome"];
    match outcome["outcome"].as_str().unwrap() {
        "denied" => format!("denied:{}", outcome["reason"].as_str().unwrap()),
        other => other.to_string(),
    }
}

fn same_bytes(a: &Path, b: &Path) {
    let x = std::fs::read(a).unwrap();
    let y = std::fs::read(b).unwrap();
    assert!(x == y, "{} differs from {}", a.display(), b.display());
}

/// Changes a response body on its way back: the path asked for, and the body.
type Lie = fn(&str, &mut Vec<u8>);

/// What a proxy records and plays back instead of asking the node: the whole answer to the
/// first request whose path contains the pattern, replayed for later ones once `replaying`.
struct Tape {
    pattern: &'static str,
    replaying: bool,
    answer: Option<Vec<u8>>,
}

static TAPE: std::sync::Mutex<Option<Tape>> = std::sync::Mutex::new(None);

fn tape_record(pattern: &'static str) {
    *TAPE.lock().unwrap() = Some(Tape {
        pattern,
        replaying: false,
        answer: None,
    });
}

fn replay() {
    let mut tape = TAPE.lock().unwrap();
    let tape = tape.as_mut().unwrap();
    assert!(
        tape.answer.is_some(),
        "nothing was recorded for {}",
        tape.pattern
    );
    tape.replaying = true;
}

/// Passes every answer on unchanged.
fn honest(_: &str, _: &mut Vec<u8>) {}

/// A node that lies: a proxy holding the member's own key (so the client's TLS pin is
/// satisfied, as it is for a compromised custodian) in front of the real node, passing every
/// request on and telling one kind of lie in the answers: altered ciphertext, or doctored
/// audit answers. One request per connection; stops when told, and after a bounded number of
/// connections or two minutes.
struct LyingProxy {
    url: String,
    stop: Arc<AtomicBool>,
}

impl LyingProxy {
    /// In front of member `i` of `c`, with its key.
    fn start(c: &Cluster, i: usize, lie: Lie) -> Self {
        let upstream = c.nodes[i].api.clone();
        let key = c.member_key(i).unwrap();
        let tls = cradle_node::http::tls::member_server_config(
            &c.genesis.members[i].name,
            &key.ed25519_seed(),
            vec!["127.0.0.1".into()],
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        cradle_tests::cluster::remember_genesis(&url, &c.dir.path().join("net/genesis.json"));
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut served = 0;
            while !stop2.load(Ordering::Relaxed) && served < 64 && Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => {
                        served += 1;
                        let _ = conn.set_nonblocking(false);
                        let Ok(server) = rustls::ServerConnection::new(tls.clone()) else {
                            continue;
                        };
                        let conn = rustls::StreamOwned::new(server, conn);
                        let _ = Self::serve(conn, &upstream, lie);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self { url, stop }
    }

    fn serve(
        mut conn: rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
        upstream: &str,
        lie: Lie,
    ) -> std::io::Result<()> {
        conn.sock.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut req = Vec::new();
        let mut buf = [0u8; 8192];
        let head_end = loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            req.extend_from_slice(&buf[..n]);
            if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&req[..head_end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while req.len() < head_end + len {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        let path = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("")
            .to_string();
        let mut new_head = String::new();
        for line in head.trim_end().lines() {
            if !line.to_ascii_lowercase().starts_with("connection:") {
                new_head.push_str(line);
                new_head.push_str("\r\n");
            }
        }
        new_head.push_str("Connection: close\r\n\r\n");
        let taped = TAPE.lock().unwrap().as_ref().and_then(|t| {
            (t.replaying && path.contains(t.pattern))
                .then(|| t.answer.clone())
                .flatten()
        });
        if let Some(answer) = taped {
            conn.write_all(&answer)?;
            conn.conn.send_close_notify();
            return conn.flush();
        }
        let mut up = cradle_tests::tls::connect(upstream, Duration::from_secs(30))
            .map_err(std::io::Error::other)?;
        up.write_all(new_head.as_bytes())?;
        up.write_all(&req[head_end..])?;
        let mut resp = Vec::new();
        // The node closes after its answer, without a TLS close_notify.
        match up.read_to_end(&mut resp) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(e) => return Err(e),
        }
        if let Some(t) = TAPE.lock().unwrap().as_mut()
            && !t.replaying
            && t.answer.is_none()
            && path.contains(t.pattern)
        {
            t.answer = Some(resp.clone());
        }
        let Some(i) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
            return conn.write_all(&resp);
        };
        let (resp_head, body) = resp.split_at(i + 4);
        let resp_head = String::from_utf8_lossy(resp_head).to_string();
        let chunked = resp_head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let mut body = if chunked {
            dechunk(body)
        } else {
            body.to_vec()
        };
        if resp_head.starts_with("HTTP/1.1 200") {
            lie(&path, &mut body);
        }
        let mut out = String::new();
        for line in resp_head.trim_end().lines() {
            let lower = line.to_ascii_lowercase();
            if !lower.starts_with("content-length:") && !lower.starts_with("transfer-encoding:") {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        conn.write_all(out.as_bytes())?;
        conn.write_all(&body)?;
        conn.conn.send_close_notify();
        conn.flush()
    }
}

/// The body of a chunked HTTP/1.1 answer, without its framing.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..eol])
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        body.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
    body
}

/// Flips one ciphertext byte of a permitted fetch.
#[allow(clippy::ptr_arg)] // A `Lie`: others replace the whole body.
fn alter_ciphertext(path: &str, body: &mut Vec<u8>) {
    if path.contains("/fetch") && body.len() > 100_000 {
        body[100_000] ^= 0x01;
    }
}

/// Rewrites an audit answer's events or header.
fn doctor_answer(path: &str, body: &mut Vec<u8>, change: fn(&mut AuditAnswer)) {
    if !path.starts_with("/v1/audit/patient/") {
        return;
    }
    let mut answer = AuditAnswer::decode(body).unwrap();
    change(&mut answer);
    *body = answer.encode();
}

fn whole_events(answer: &mut AuditAnswer, change: fn(&mut Vec<AccessEvent>)) {
    if let AuditEvents::Whole(list) = &mut answer.events {
        let mut events = std::mem::replace(list, BoundedVec::new(Vec::new()).unwrap()).into_inner();
        change(&mut events);
        *list = BoundedVec::new(events).unwrap();
    }
}

impl Drop for LyingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn consent_governs_every_read_and_every_access_is_on_the_ledger() {
    let c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    let work = c.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let a_url = c.nodes[0].api.clone();
    let a_key = c.nodes[0].home.join("node.key"); // County Hospital 1, the custodian
    let b_key = c.nodes[1].home.join("node.key"); // County Hospital 2, the referral hospital
    // People read, with their own keys: an obstetrician at B, a midwife at the clinic.
    let b_doc =
        cradle_tests::cli::clinician(&c, &work, 1, "obstetrician", "obstetrics", "Zhang Wei").key;
    let clinic_midwife =
        cradle_tests::cli::clinician(&c, &work, 2, "midwife", "midwifery", "Li Mei").key;
    let record = prenatal_record();

    // The patient makes her key; hospital A enrols her and registers her prenatal file.
    let p_key = work.join("patient.key");
    let out = Command::new(bin("cradle").unwrap())
        .args(["keygen", "--out"])
        .arg(&p_key)
        .arg("--genesis")
        .arg(c.nodes[0].home.join("genesis.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let p_pub = work.join("patient.key.pub");
    let p_pub_s = p_pub.to_str().unwrap();
    ok(cradle(&a_url, &a_key, &["patient", "enrol", p_pub_s]));
    let put = json(cradle(
        &a_url,
        &a_key,
        &[
            "archive",
            "put",
            record.to_str().unwrap(),
            "--patient",
            p_pub_s,
            "--category",
            "prenatal-visit",
            "--format",
            "json",
        ],
    ));
    let archive = put["archive"].as_str().unwrap().to_string();
    assert_eq!(archive.len(), 64);
    assert_eq!(
        put["plaintext_bytes"].as_u64().unwrap(),
        std::fs::metadata(&record).unwrap().len()
    );
    // The ledger names hash and size of the ciphertext, not the plaintext.
    let on_ledger = c
        .client(3)
        .get_json(&format!("/v1/archives/{archive}"))
        .unwrap();
    assert_eq!(
        on_ledger["record"]["size_bytes"].as_u64(),
        put["ciphertext_bytes"].as_u64()
    );

    let get = |key: &Path, purpose: &str, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "archive",
            "get",
            &archive,
            "--purpose",
            purpose,
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        cradle(&a_url, key, &args)
    };

    // B has no grant: denied, logged, nothing written.
    let b_out = work.join("b.json");
    let err = refused(
        get(&b_doc, "TREAT", &b_out, &[]),
        "no grant covers this archive",
    );
    assert!(!b_out.exists());
    assert_eq!(
        recorded_outcome(&c, 2, &access_tx_of(&err)),
        "denied:no_grant"
    );

    // The patient grants B treatment access for 30 days; B reads the identical record.
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
    assert_eq!(grant.len(), 64, "grant id: {grant}");
    let got = json(get(&b_doc, "TREAT", &b_out, &[]));
    same_bytes(&record, &b_out);
    assert_eq!(got["outcome"], "permitted");
    assert_eq!(
        recorded_outcome(&c, 1, got["access_tx"].as_str().unwrap()),
        "permitted"
    );

    // An archive registered after the grant carries its key wrapped for the grant, so B reads
    // it too without the patient doing anything.
    let second_record =
        record.with_file_name("Karla_Kessler_eb2955c7-1c46-47bd-bffc-bae94824b629.json");
    let second = json(cradle(
        &a_url,
        &a_key,
        &[
            "archive",
            "put",
            second_record.to_str().unwrap(),
            "--patient",
            p_pub_s,
            "--category",
            "ultrasound",
            "--format",
            "json",
        ],
    ));
    assert_eq!(second["grants_covered"], 1);
    let second_out = work.join("second.json");
    let got = json(cradle(
        &a_url,
        &b_doc,
        &[
            "archive",
            "get",
            second["archive"].as_str().unwrap(),
            "--purpose",
            "TREAT",
            "--out",
            second_out.to_str().unwrap(),
            "--format",
            "json",
        ],
    ));
    assert_eq!(got["outcome"], "permitted");
    same_bytes(&second_record, &second_out);

    // The grant does not cover research.
    let research = work.join("research.json");
    let err = refused(
        get(&b_doc, "HRESCH", &research, &[]),
        "the grant does not cover this purpose",
    );
    assert!(!research.exists());
    assert_eq!(
        recorded_outcome(&c, 3, &access_tx_of(&err)),
        "denied:purpose_not_covered"
    );

    // The patient sees her grant, then revokes it; B is denied again.
    let list = json(cradle(
        &a_url,
        &p_key,
        &["consent", "list", "--format", "json"],
    ));
    assert_eq!(list["grants"].as_array().unwrap().len(), 1);
    assert_eq!(list["grants"][0]["status"], "active");
    ok(cradle(&a_url, &p_key, &["consent", "revoke", &grant]));
    let again = work.join("again.json");
    let err = refused(
        get(&b_doc, "TREAT", &again, &[]),
        "the patient revoked the grant",
    );
    assert!(!again.exists());
    assert_eq!(
        recorded_outcome(&c, 0, &access_tx_of(&err)),
        "denied:grant_revoked"
    );
    let list = json(cradle(
        &a_url,
        &p_key,
        &["consent", "list", "--format", "json"],
    ));
    assert_eq!(list["grants"][0]["status"], "revoked");

    // Emergency: B breaks the glass with a justification; permitted, flagged, decrypts.
    refused(
        get(&b_doc, "ETREAT", &again, &[]),
        "emergency access needs a justification",
    );
    let glass = work.join("glass.json");
    let got = json(get(
        &b_doc,
        "ETREAT",
        &glass,
        &[
            "--justification",
            "postpartum haemorrhage on arrival, patient unconscious",
        ],
    ));
    same_bytes(&record, &glass);
    assert_eq!(got["outcome"], "break_glass");
    assert_eq!(
        recorded_outcome(&c, 2, got["access_tx"].as_str().unwrap()),
        "break_glass"
    );
    // The justification is sealed on the ledger: the access record a node serves as JSON holds
    // only ciphertext and wrapped keys, and neither it, the block's header nor the raw block
    // that carries it holds the text.
    let committed =
        cradle_tests::cli::committed_tx(&c, 3, got["access_tx"].as_str().unwrap(), WAIT);
    let sealed = &committed["tx"]["tx"]["body"]["request"]["request"]["justification"];
    assert!(sealed["ciphertext"].is_string(), "{committed}");
    assert_eq!(
        sealed["wraps"].as_array().unwrap().len(),
        2,
        "patient and regulator"
    );
    let height = committed["height"].as_u64().unwrap();
    let raw = c
        .client(3)
        .get_bytes(&format!("/v1/blocks/{height}/raw"))
        .unwrap();
    let header = c
        .client(3)
        .get_json(&format!("/v1/blocks/{height}"))
        .unwrap();
    for text in ["haemorrhage", "unconscious"] {
        assert!(!committed.to_string().contains(text), "{committed}");
        assert!(!header.to_string().contains(text), "{header}");
        assert!(
            !raw.windows(text.len()).any(|w| w == text.as_bytes()),
            "{text:?} in the raw block"
        );
    }

    // A custodian that serves altered ciphertext is caught; nothing is written.
    let proxy = LyingProxy::start(&c, 0, alter_ciphertext);
    let altered = work.join("altered.json");
    let out = cradle(
        &a_url,
        &b_doc,
        &[
            "archive",
            "get",
            &archive,
            "--purpose",
            "ETREAT",
            "--justification",
            "eclampsia, transfer in progress",
            "--out",
            altered.to_str().unwrap(),
            "--custodian",
            &proxy.url,
        ],
    );
    assert_eq!(out.code, 1, "altered ciphertext accepted: {}", out.stderr);
    assert!(
        out.stderr.contains("damaged or altered") || out.stderr.contains("SHA-256"),
        "{}",
        out.stderr
    );
    assert!(!altered.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "partial plaintext left behind");
    drop(proxy);

    // A key that is not a member cannot upload; nor can another member to A's store.
    let stranger = work.join("stranger.key");
    assert!(
        Command::new(bin("cradle").unwrap())
            .args(["keygen", "--out"])
            .arg(&stranger)
            .output()
            .unwrap()
            .status
            .success()
    );
    let upload = |key: &Path| {
        cradle(
            &a_url,
            key,
            &[
                "archive",
                "put",
                record.to_str().unwrap(),
                "--patient",
                p_pub_s,
                "--category",
                "ultrasound",
            ],
        )
    };
    refused(
        upload(&stranger),
        "neither a member, a clinician nor an enrolled patient",
    );
    refused(upload(&b_key), "upload to your own institution's node");

    // A grant that has expired is denied.
    ok(cradle(
        &a_url,
        &p_key,
        &[
            "consent",
            "grant",
            "--grantee",
            "Township Clinic 1",
            "--purpose",
            "TREAT,COC",
            "--scope",
            "categories:prenatal-visit,labour-and-delivery",
            "--expires",
            "3s",
        ],
    ));
    std::thread::sleep(Duration::from_secs(4));
    let late = work.join("late.json");
    let err = refused(
        get(&clinic_midwife, "TREAT", &late, &[]),
        "the grant has expired",
    );
    assert!(!late.exists());
    assert_eq!(
        recorded_outcome(&c, 1, &access_tx_of(&err)),
        "denied:grant_expired"
    );

    // The patient herself may always read her own record.
    let mine = work.join("mine.json");
    let got = json(cradle(
        &a_url,
        &p_key,
        &[
            "archive",
            "get",
            &archive,
            "--purpose",
            "PATRQT",
            "--out",
            mine.to_str().unwrap(),
            "--format",
            "json",
        ],
    ));
    assert_eq!(got["outcome"], "permitted");
    same_bytes(&record, &mine);

    // A ciphertext damaged on the custodian's disk is never served as the archive.
    let sha = on_ledger["record"]["ciphertext_sha256"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| format!("{:02x}", b.as_u64().unwrap()))
                .collect::<String>()
        })
        .or_else(|| {
            on_ledger["record"]["ciphertext_sha256"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap();
    let object = c.nodes[0].home.join("data/archives/objects").join(&sha);
    let original = std::fs::read(&object).unwrap();
    let mut bytes = original.clone();
    bytes[10] ^= 0x80;
    std::fs::write(&object, bytes).unwrap();
    let damaged = work.join("damaged.json");
    let out = cradle(
        &a_url,
        &p_key,
        &[
            "archive",
            "get",
            &archive,
            "--purpose",
            "PATRQT",
            "--out",
            damaged.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 1, "damaged archive served: {}", out.stderr);
    assert!(!damaged.exists());

    // The patient's verified history, from another member's node, shows every access of the
    // scenario in order, each with its outcome, checked from genesis.
    let genesis = c.dir.path().join("net/genesis.json");
    let checkpoint = work.join("checkpoint.json");
    let audit = |node: usize, format: &str| {
        audit_verify(
            &c.nodes[node].api,
            &p_key,
            &genesis,
            &checkpoint,
            &["--patient", p_pub_s, "--format", format],
        )
    };
    let history = json(audit(3, "json"));
    let outcomes: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "denied: no grant covers this archive",
            "permitted",
            "permitted",
            "denied: the grant does not cover this purpose",
            "denied: the patient revoked the grant",
            "denied: emergency access needs a justification",
            "break-glass",
            "break-glass",
            "denied: the grant has expired",
            "permitted",
            "permitted",
        ]
    );
    let institutions: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["institution"].as_str().unwrap())
        .collect();
    assert_eq!(institutions[0], "County Hospital 2");
    assert_eq!(institutions[8], "Township Clinic 1");
    assert!(checkpoint.is_file(), "no checkpoint remembered");
    let table = ok(audit(2, "table"));
    assert!(table.contains("verified: 11 events"), "{table}");
    assert!(
        table.contains("County Hospital 2") && table.contains("prenatal-visit"),
        "{table}"
    );
    // She sees the people who read her records, by role and name: the names come from each
    // clinician's institution, which serves them to the patient whose records were read.
    assert!(
        table.contains("obstetrician Zhang Wei") && table.contains("midwife Li Mei"),
        "{table}"
    );

    // One more access; the next verified audit moves the checkpoint over a consistency proof.
    let once_more = work.join("once-more.json");
    refused(
        get(&b_doc, "HRESCH", &once_more, &[]),
        "the grant does not cover this purpose",
    );
    let history = json(audit(1, "json"));
    assert_eq!(history["events"].as_array().unwrap().len(), 12);

    // `cradle audit --verify` against a node that lies refuses every lie and keeps the
    // checkpoint it had.
    let remembered = std::fs::read(&checkpoint).unwrap();
    let lying_audit = |lie: Lie| {
        let proxy = LyingProxy::start(&c, 2, lie);
        audit_verify(
            &proxy.url,
            &p_key,
            &genesis,
            &checkpoint,
            &["--patient", p_pub_s],
        )
    };
    let cases: [(&str, Lie, &str); 4] = [
        (
            "drops one entry",
            |p, b| {
                doctor_answer(p, b, |a| {
                    whole_events(a, |e| {
                        e.remove(3);
                    })
                })
            },
            "incomplete history: the committed log holds 12 entries, the answer 11",
        ),
        (
            "alters one entry",
            |p, b| {
                doctor_answer(p, b, |a| {
                    whole_events(a, |e| e[1].purpose = Purpose::Research)
                })
            },
            "the events do not hash to the committed log root",
        ),
        (
            "reorders two entries",
            |p, b| doctor_answer(p, b, |a| whole_events(a, |e| e.swap(0, 2))),
            "out of log order",
        ),
        (
            "serves a header its certificate does not finalise",
            |p, b| doctor_answer(p, b, |a| a.header.time_ms += 1),
            "the header is not finalised by the genesis validators",
        ),
    ];
    for (what, lie, reason) in cases {
        let out = lying_audit(lie);
        assert_eq!(
            out.code, 1,
            "a node that {what} was believed: {}",
            out.stdout
        );
        assert!(
            out.stderr.contains(reason),
            "a node that {what}: {:?}",
            out.stderr
        );
        assert_eq!(std::fs::read(&checkpoint).unwrap(), remembered, "{what}");
    }
    // The log grows; a node whose log does not extend the remembered one is refused.
    refused(
        get(&b_doc, "HRESCH", &once_more, &[]),
        "the grant does not cover this purpose",
    );
    c.wait_height(2, c.height(0).unwrap(), WAIT).unwrap();
    let out = lying_audit(|path, body| {
        if path.starts_with("/v1/audit/consistency") {
            let mut answer = ConsistencyAnswer::decode(body).unwrap();
            let mut proof = answer.proof.clone().into_inner();
            proof[0][0] ^= 0x01;
            answer.proof = BoundedVec::new(proof).unwrap();
            *body = answer.encode();
        }
    });
    assert_eq!(
        out.code, 1,
        "an inconsistent log was believed: {}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("inconsistent with the remembered checkpoint"),
        "{:?}",
        out.stderr
    );
    assert_eq!(std::fs::read(&checkpoint).unwrap(), remembered);
    // The honest node's answer still verifies and moves the checkpoint on.
    let history = json(audit(2, "json"));
    assert_eq!(history["events"].as_array().unwrap().len(), 13);
    assert_ne!(std::fs::read(&checkpoint).unwrap(), remembered);

    // Who read whose records is answered only to whom it concerns, or to a regulator.
    let elsewhere = work.join("elsewhere-checkpoint.json");
    refused(
        audit_verify(
            &c.nodes[1].api,
            &b_key,
            &genesis,
            &elsewhere,
            &["--patient", p_pub_s],
        ),
        "answered only to the patient herself or a regulator",
    );
    refused(
        audit_verify(
            &c.nodes[1].api,
            &p_key,
            &genesis,
            &elsewhere,
            &["--break-glass"],
        ),
        "answered only to regulators",
    );
    let regulator = c.dir.path().join("net/regulator/regulator.key");
    let glass = json(audit_verify(
        &c.nodes[3].api,
        &regulator,
        &genesis,
        &elsewhere,
        &["--break-glass", "--format", "json"],
    ));
    let glass = glass["events"].as_array().unwrap();
    assert_eq!(glass.len(), 2, "{glass:?}");
    assert!(
        glass
            .iter()
            .all(|e| e["break_glass"] == true && e["institution"] == "County Hospital 2")
    );
    // The regulator reviews each emergency access by person: role, pseudonymous id, name.
    for e in glass {
        assert_eq!(e["staff"]["role"], "obstetrician", "{e}");
        assert_eq!(e["staff"]["name"], "Zhang Wei", "{e}");
    }
    // The patient and the regulator read each justification with their own key; the
    // institution that wrote it, and everyone else, see only that one exists.
    let texts = [
        "postpartum haemorrhage on arrival, patient unconscious",
        "eclampsia, transfer in progress",
    ];
    let read = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["break_glass"] == true)
            .map(|e| {
                assert_eq!(e["justification"]["status"], "read", "{e}");
                e["justification"]["text"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(read(glass), texts);
    assert_eq!(read(history["events"].as_array().unwrap()), texts);
    let patient_table = ok(audit(1, "table"));
    assert!(patient_table.contains(texts[0]), "{patient_table}");
    // Nor is it in any node's log.
    for i in 0..4 {
        let log = c.log(i);
        assert!(
            !log.contains("haemorrhage") && !log.contains("eclampsia"),
            "node {i} logged a justification"
        );
    }
    let own = json(audit_verify(
        &c.nodes[3].api,
        &b_key,
        &genesis,
        &elsewhere,
        &["--accessor", "County Hospital 2", "--format", "json"],
    ));
    let by_b = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["institution"] == "County Hospital 2")
        .count();
    assert_eq!(own["events"].as_array().unwrap().len(), by_b);
    assert_eq!(by_b, 10);
    for e in own["events"].as_array().unwrap() {
        if e["break_glass"] == true {
            assert_eq!(e["justification"]["status"], "sealed", "{e}");
        }
    }
    assert!(!own.to_string().contains("eclampsia"), "{own}");

    // The custodian's operator restores the damaged object from a backup.
    std::fs::write(&object, &original).unwrap();

    // A node that answers with a genuine but old certified history, after a newer access, is
    // refused as stale by a client that has never seen it before.
    let fresh = work.join("fresh-checkpoint.json");
    let stale_proxy = LyingProxy::start(&c, 3, honest);
    tape_record("/v1/audit/patient/");
    let before = json(audit_verify(
        &stale_proxy.url,
        &p_key,
        &genesis,
        &fresh,
        &["--patient", p_pub_s, "--format", "json"],
    ));
    let newer = work.join("newer.json");
    ok(get(
        &b_doc,
        "ETREAT",
        &newer,
        &["--justification", "cord prolapse"],
    ));
    std::thread::sleep(Duration::from_millis(2_500));
    replay();
    let _ = std::fs::remove_file(&fresh);
    let stale = audit_verify(
        &stale_proxy.url,
        &p_key,
        &genesis,
        &fresh,
        &["--patient", p_pub_s, "--max-age", "2"],
    );
    refused(stale, "stale node");
    assert!(!fresh.exists(), "a stale answer moved the checkpoint");
    let now = json(audit(3, "json"));
    assert_eq!(
        now["events"].as_array().unwrap().len(),
        before["events"].as_array().unwrap().len() + 1,
        "the honest node shows the newer access"
    );
    drop(stale_proxy);

    // A custodian that releases an archive without logging the access first: the proxy holds
    // the custodian's key and replays an earlier genuine release (real ciphertext, a key
    // wrapped for B) instead of passing the new request on. B decrypts it, but no committed
    // access record carries this request, so nothing is written.
    let custodian = LyingProxy::start(&c, 0, honest);
    tape_record("/fetch");
    let first = work.join("first.json");
    ok(get(
        &b_doc,
        "ETREAT",
        &first,
        &["--justification", "sepsis", "--custodian", &custodian.url],
    ));
    same_bytes(&record, &first);
    replay();
    let unlogged = work.join("unlogged.json");
    let out = get(
        &b_doc,
        "ETREAT",
        &unlogged,
        &["--justification", "sepsis", "--custodian", &custodian.url],
    );
    refused(out, "is not on the ledger; nothing was written");
    assert!(!unlogged.exists());
    *TAPE.lock().unwrap() = None;
    drop(custodian);

    // A record the node forges (its proof altered) is refused before anything is asked.
    let forging = LyingProxy::start(&c, 0, |path, body| {
        if path.ends_with("/proof") {
            let last = body.len() - 1;
            body[last] ^= 0x01;
        }
    });
    let forged = work.join("forged.json");
    let out = get(
        &b_doc,
        "ETREAT",
        &forged,
        &["--justification", "sepsis", "--custodian", &forging.url],
    );
    refused(out, "not proven");
    assert!(!forged.exists());
    drop(forging);

    // The FHIR exports of the audit and of the consents pass an independent R4 validator.
    let validator = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib/fhir_validate.py");
    let fhir = ok(audit(0, "fhir"));
    assert!(
        fhir.contains("cradle-justification") && fhir.contains(texts[0]),
        "{fhir}"
    );
    for (name, out) in [
        ("audit.fhir.json", audit(0, "fhir")),
        (
            "consents.fhir.json",
            cradle(&a_url, &p_key, &["consent", "list", "--format", "fhir"]),
        ),
    ] {
        let file = work.join(name);
        std::fs::write(&file, ok(out)).unwrap();
        let v = Command::new("python3")
            .arg(&validator)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            v.status.success(),
            "{name} rejected: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    }
}

#[test]
fn break_glass_is_denied_when_genesis_forbids_it() {
    let c = Cluster::start(4, &["--no-break-glass"]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    let work = c.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let a_url = c.nodes[0].api.clone();
    let a_key = c.nodes[0].home.join("node.key");
    let p_key = work.join("patient.key");
    assert!(
        Command::new(bin("cradle").unwrap())
            .args(["keygen", "--out"])
            .arg(&p_key)
            .arg("--genesis")
            .arg(c.nodes[0].home.join("genesis.json"))
            .output()
            .unwrap()
            .status
            .success()
    );
    let p_pub = work.join("patient.key.pub");
    ok(cradle(
        &a_url,
        &a_key,
        &["patient", "enrol", p_pub.to_str().unwrap()],
    ));
    let archive = ok(cradle(
        &a_url,
        &a_key,
        &[
            "archive",
            "put",
            prenatal_record().to_str().unwrap(),
            "--patient",
            p_pub.to_str().unwrap(),
            "--category",
            "labour-and-delivery",
        ],
    ));
    let b_doc = cradle_tests::cli::clinician(
        &c,
        &work,
        1,
        "emergency-physician",
        "emergency",
        "Chen Jing",
    )
    .key;
    let out = work.join("glass.json");
    let err = refused(
        cradle(
            &a_url,
            &b_doc,
            &[
                "archive",
                "get",
                &archive,
                "--purpose",
                "ETREAT",
                "--justification",
                "placental abruption",
                "--out",
                out.to_str().unwrap(),
            ],
        ),
        "break-glass access is not allowed by policy",
    );
    assert!(!out.exists());
    assert_eq!(
        recorded_outcome(&c, 3, &access_tx_of(&err)),
        "denied:break_glass_not_allowed"
    );
}
