//! The audit client against a node that lies: a tiny HTTP server answers like a node from a
//! ledger built in-process, honestly or with one lie per mode, and `audit_verified` accepts the
//! honest answers and refuses every lie with the error that names it.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

#[path = "../../ledger/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::audit_world::{Snapshot, scenario};
use cradle_client::api::ApiClient;
use cradle_client::audit::{
    AuditClientError, audit_verified, load_checkpoint, render_json, render_table,
};
use cradle_ledger::audit::{
    AuditError, AuditEvents, AuditSubject, build_answer, build_consistency,
};
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::{ArchiveId, Keypair, PublicKey};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Honest,
    DropOne,
    AlterOne,
    ReorderTwo,
    BadCertificate,
}

/// An audit query: its subject and optional time range.
type Query = (AuditSubject, Option<(u64, u64)>);

/// Which error a lie must meet.
type Expect = fn(&AuditError) -> bool;

/// Parses an audit URL exactly as the node must (see `cradle_client::audit`).
fn parse(path: &str) -> (String, Option<Query>, Option<u64>) {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let params: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap())
        .collect();
    let param = |k: &str| {
        params
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.parse::<u64>().unwrap())
    };
    let range = param("from_ms").zip(param("to_ms"));
    let parts: Vec<&str> = route.trim_start_matches("/v1/audit/").split('/').collect();
    let subject = match parts.as_slice() {
        ["patient", k] => Some(AuditSubject::Patient(PublicKey::from_hex(k).unwrap())),
        ["archive", a] => Some(AuditSubject::Archive(ArchiveId::from_hex(a).unwrap())),
        ["accessor", k] => Some(AuditSubject::Accessor(PublicKey::from_hex(k).unwrap())),
        ["break-glass"] => Some(AuditSubject::BreakGlass),
        _ => None,
    };
    (
        route.to_string(),
        subject.map(|s| (s, range)),
        param("from"),
    )
}

fn answer(snap: &Snapshot, mode: Mode, path: &str) -> (u16, Vec<u8>) {
    let (route, query, from) = parse(path);
    if route == "/v1/audit/consistency" {
        let from = from.unwrap();
        return match build_consistency(snap, &snap.global_log(), from) {
            Ok(a) => (200, a.encode()),
            Err(e) => (400, format!("{{\"error\":\"{e}\"}}").into_bytes()),
        };
    }
    let Some((subject, range)) = query else {
        return (404, b"{\"error\":\"no such route\"}".to_vec());
    };
    let mut a = build_answer(snap, subject, range).unwrap();
    if let AuditEvents::Whole(events) = &a.events {
        let mut events = events.to_vec();
        match mode {
            Mode::Honest | Mode::BadCertificate => {}
            Mode::DropOne => {
                events.remove(1);
            }
            Mode::AlterOne => events[1].purpose = cradle_ledger::tx::Purpose::Research,
            Mode::ReorderTwo => events.swap(0, 2),
        }
        a.events = AuditEvents::Whole(BoundedVec::new(events).unwrap());
    }
    if mode == Mode::BadCertificate {
        a.certificate.signatures.truncate(1);
    }
    (200, a.encode())
}

/// Serves at most `requests` requests, then stops; stops anyway after ten seconds.
fn serve(snap: Snapshot, mode: Mode, requests: usize) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let snap = Arc::new(snap);
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut served = 0;
        while served < requests && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    handle_one(stream, &snap, mode);
                    served += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    });
    (base, handle)
}

fn handle_one(stream: TcpStream, snap: &Snapshot, mode: Mode) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = answer(snap, mode, path);
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    stream.flush().unwrap();
}

/// Who asks: this test server, like a node, answers from the same snapshot whoever signs.
fn auditor() -> Keypair {
    cradle_testkit::outsider_key()
}

fn checkpoint_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cradle-lying-node-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("checkpoint.json")
}

#[test]
fn honest_answers_are_accepted_and_move_the_checkpoint() {
    let s = scenario();
    let c = s.world.consortium.clone();
    let p = AuditSubject::Patient(s.p.public_key());
    let cp = checkpoint_path("honest");

    let (base, server) = serve(Snapshot::of(&s.world), Mode::Honest, 3);
    let api = ApiClient::plaintext(&base);
    let v = audit_verified(&api, &s.p, &c, &cp, &p, None).unwrap();
    assert_eq!(v.events.len(), 6);
    assert_eq!(
        load_checkpoint(&cp).unwrap().unwrap().height,
        s.world.tip.height
    );
    let times: Vec<u64> = s.world.events.iter().map(|e| e.time_ms).collect();
    let v = audit_verified(&api, &s.p, &c, &cp, &p, Some((times[1], times[4]))).unwrap();
    assert_eq!(v.events.len(), 4);
    let table = render_table(&v.events, &c);
    assert!(table.contains("City Hospital"), "{table}");
    assert!(table.contains("BREAK-GLASS"), "{table}");
    assert!(render_json(&v, &c).contains("\"break_glass\": true"));
    let v = audit_verified(&api, &s.p, &c, &cp, &AuditSubject::BreakGlass, None).unwrap();
    assert_eq!(v.events.len(), 1);
    drop(api);
    server.join().unwrap();
}

#[test]
fn a_newer_honest_answer_moves_the_checkpoint_over_a_consistency_proof() {
    let mut s = scenario();
    let c = s.world.consortium.clone();
    let cp = checkpoint_path("forward");
    let subject = AuditSubject::Archive(s.a2);
    let (base, server) = serve(Snapshot::of(&s.world), Mode::Honest, 1);
    audit_verified(
        &ApiClient::plaintext(&base),
        &auditor(),
        &c,
        &cp,
        &subject,
        None,
    )
    .unwrap();
    server.join().unwrap();
    let before = load_checkpoint(&cp).unwrap().unwrap();

    s.b_reads(s.a2, None, 60);
    // The answer, then the consistency proof from the remembered log size.
    let (base, server) = serve(Snapshot::of(&s.world), Mode::Honest, 2);
    let v = audit_verified(
        &ApiClient::plaintext(&base),
        &auditor(),
        &c,
        &cp,
        &subject,
        None,
    )
    .unwrap();
    server.join().unwrap();
    assert_eq!(v.log_size, 4);
    let after = load_checkpoint(&cp).unwrap().unwrap();
    assert_eq!(after.height, before.height + 1);
    assert_eq!(after.access_log_size, before.access_log_size + 1);
}

#[test]
fn every_lie_is_refused_with_its_own_error() {
    let s = scenario();
    let c = s.world.consortium.clone();
    let p = AuditSubject::Patient(s.p.public_key());
    let cases: [(Mode, Expect); 4] = [
        (Mode::DropOne, |e| {
            matches!(
                e,
                AuditError::IncompleteHistory {
                    expected: 6,
                    got: 5
                }
            )
        }),
        (Mode::AlterOne, |e| matches!(e, AuditError::RootMismatch)),
        (Mode::ReorderTwo, |e| {
            matches!(e, AuditError::OutOfOrder { .. })
        }),
        (Mode::BadCertificate, |e| {
            matches!(e, AuditError::BadCertificate(_))
        }),
    ];
    for (mode, want) in cases {
        let cp = checkpoint_path(&format!("{mode:?}"));
        let (base, server) = serve(Snapshot::of(&s.world), mode, 1);
        let got = audit_verified(&ApiClient::plaintext(&base), &auditor(), &c, &cp, &p, None);
        server.join().unwrap();
        match got {
            Err(AuditClientError::Verify(e)) if want(&e) => {}
            other => panic!("{mode:?}: got {other:?}"),
        }
        assert!(
            load_checkpoint(&cp).unwrap().is_none(),
            "{mode:?} moved the checkpoint"
        );
    }
}

#[test]
fn a_history_inconsistent_with_the_checkpoint_is_refused() {
    // The client has seen the honest chain with an eighth event...
    let mut honest = scenario();
    honest.b_reads(honest.a2, None, 50);
    let c = honest.world.consortium.clone();
    let subject = AuditSubject::Accessor(honest.world.hospital_b.public_key());
    let cp = checkpoint_path("fork");
    let (base, server) = serve(Snapshot::of(&honest.world), Mode::Honest, 1);
    audit_verified(
        &ApiClient::plaintext(&base),
        &auditor(),
        &c,
        &cp,
        &subject,
        None,
    )
    .unwrap();
    server.join().unwrap();
    let remembered = load_checkpoint(&cp).unwrap().unwrap();

    // ...then a node serves a fork, certified by the same validators, whose eighth event
    // differs. Its answer verifies on its own; its log does not extend what the client saw.
    let mut fork = scenario();
    fork.b_reads(fork.a2, None, 42);
    fork.b_reads(fork.a2, None, 43);
    let (base, server) = serve(Snapshot::of(&fork.world), Mode::Honest, 2);
    let got = audit_verified(
        &ApiClient::plaintext(&base),
        &auditor(),
        &c,
        &cp,
        &subject,
        None,
    );
    server.join().unwrap();
    assert!(
        matches!(
            got,
            Err(AuditClientError::Verify(
                AuditError::InconsistentCheckpoint(_)
            ))
        ),
        "got {got:?}"
    );
    assert_eq!(load_checkpoint(&cp).unwrap().unwrap(), remembered);

    // A node that is behind the checkpoint is refused as stale.
    let behind = scenario();
    let (base, server) = serve(Snapshot::of(&behind.world), Mode::Honest, 1);
    let got = audit_verified(
        &ApiClient::plaintext(&base),
        &auditor(),
        &c,
        &cp,
        &subject,
        None,
    );
    server.join().unwrap();
    assert!(
        matches!(
            got,
            Err(AuditClientError::Verify(AuditError::StaleAnswer { .. }))
        ),
        "got {got:?}"
    );
}
