//! The browser portal's vectors, made by the Rust implementation: the block header, its hash,
//! precommit signing bytes and commit certificates (`chain-next-members.json`), audit answers
//! honest and lying with what a verifier must conclude (`history-next-members.json`), and the
//! transactions and key wraps a patient's page builds (`tx.json`, see [`tx`]), and the member
//! sets it follows after genesis (`sets.json`, see [`sets`]), in
//! `node/portal/test/vectors/`. The portal's JavaScript (`node/portal/js/`) is tested on the
//! same files by `node --test node/portal/test/`, so both implementations read the same bytes.
//!
//! By default this test builds the vectors and checks that the files in the repository hold the
//! same JSON (the `source` field aside): a change to an encoding, a tag or a hashing rule fails
//! here until the files are rewritten, and then fails the portal's tests until the JavaScript
//! follows. With `CRADLE_WRITE_PORTAL_VECTORS=1` it writes the files instead.
//!
//! It also checks every case with the Rust verifier (`verify_answer`, `advance_checkpoint` and
//! the client's subject, range, age and consistency checks, as `client/src/audit.rs` makes
//! them), so the `want` of each case is the Rust verdict too.
//!
//! The scenario mirrors `node/portal/tools/make_vectors.mjs` step for step: the testkit
//! consortium (chain id `sha256("test chain")`, validators of seeds 1, 2, 3), six synthetic
//! access events (`testkit::access_event`), patients 1 and 2, a state tree holding four logs,
//! a checkpoint header at height 10 (three events) and the tip at height 12 (six). Ed25519
//! signatures are deterministic, so both sides produce the same bytes.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

/// The access request a patient's page signs to fetch her own record (`access.json`).
#[path = "portal_vectors/access.rs"]
mod access;
/// The member sets a page follows after genesis (`sets.json`).
#[path = "portal_vectors/sets.rs"]
mod sets;
/// The transactions and key wraps the page builds (`tx.json`), and the page's own
/// (`tx-from-js.json`).
#[path = "portal_vectors/tx.rs"]
mod tx;
/// Reading, checking and writing the files.
mod vector_file;
/// The keys and key wraps of `tx.json`.
#[path = "portal_vectors/wraps.rs"]
mod wraps;

use std::path::PathBuf;

use cradle_consensus::{CommitCertificate, CommitSig, Vote, VoteKind};
use cradle_ledger::access::{AccessEvent, DenialReason, EventOutcome};
use cradle_ledger::audit::{
    AuditAnswer, AuditError, AuditEvents, AuditSubject, Checkpoint, ConsistencyAnswer,
    IndexedEvent, advance_checkpoint, verify_answer,
};
use cradle_ledger::block::BlockHeader;
use cradle_ledger::codec::{self, BoundedVec};
use cradle_ledger::crypto::sha256;
use cradle_ledger::merkle::log::{Frontier, MemoryLog, consistency_proof, leaf_hash, root_of};
use cradle_ledger::merkle::smt::{self, MemoryTree};
use cradle_ledger::state::{LogState, keys};
use cradle_ledger::tx::Purpose;
use cradle_ledger::{Digest32, Hash, Policy};
use cradle_testkit::{GENESIS_MS, TestConsortium, access_event, patient_key};
use serde_json::{Value, json};

const FORMAT: &str = "cradle-portal-vectors/1";
const SOURCE: &str = "ledger/tests/portal_vectors.rs";
/// The JavaScript name of the header layout with `next_members_hash` (`HEADER_LAYOUT`).
const LAYOUT: &str = "with-next-members-hash";

fn vectors_dir() -> PathBuf {
    vector_file::path("")
}

fn dec(v: u64) -> Value {
    Value::String(v.to_string())
}

fn header(
    t: &TestConsortium,
    height: u64,
    time_ms: u64,
    state_root: Hash,
    size: u64,
    root: Hash,
) -> BlockHeader {
    BlockHeader {
        chain_id: Digest32(t.chain_id()),
        height,
        time_ms,
        prev_hash: Digest32([0x11; 32]),
        proposer: t.hospital_a.public_key(),
        tx_count: 1,
        tx_root: Digest32([0x22; 32]),
        state_root: Digest32(state_root),
        access_log_size: size,
        access_log_root: Digest32(root),
        // The genesis set is in force at every height of the scenario.
        next_members_hash: Digest32(t.consortium.members_hash()),
    }
}

/// Precommits for `header` at round 0 from the validators at `signers`.
fn certify(t: &TestConsortium, header: &BlockHeader, signers: &[u16]) -> CommitCertificate {
    let keys = t.validators();
    let votes: Vec<_> = signers
        .iter()
        .map(|&i| {
            Vote {
                kind: VoteKind::Precommit,
                height: header.height,
                round: 0,
                value: Some(header.value_id()),
                validator: i,
            }
            .sign(&t.chain_id(), keys[usize::from(i)].signing_key())
        })
        .collect();
    CommitCertificate::from_precommits(header.height, 0, header.value_id(), &votes)
}

fn header_json(h: &BlockHeader) -> Value {
    json!({
        "chain_id": hex::encode(h.chain_id.0),
        "height": dec(h.height),
        "time_ms": dec(h.time_ms),
        "prev_hash": hex::encode(h.prev_hash.0),
        "proposer": hex::encode(h.proposer.0),
        "tx_count": h.tx_count,
        "tx_root": hex::encode(h.tx_root.0),
        "state_root": hex::encode(h.state_root.0),
        "access_log_size": dec(h.access_log_size),
        "access_log_root": hex::encode(h.access_log_root.0),
        "next_members_hash": hex::encode(h.next_members_hash.0),
    })
}

/// The members in genesis order; the validators are those with power.
fn members_json(t: &TestConsortium) -> Value {
    t.consortium
        .members
        .iter()
        .map(|m| json!({ "name": m.name, "public_key": hex::encode(m.public_key.0), "voting_power": m.voting_power }))
        .collect()
}

fn borsh_hex<T: borsh::BorshSerialize>(value: &T) -> String {
    hex::encode(borsh::to_vec(value).unwrap())
}

fn chain_vectors(t: &TestConsortium) -> Value {
    let h = header(t, 7, GENESIS_MS + 7000, [0x33; 32], 2, [0x44; 32]);
    let good = certify(t, &h, &[0, 1, 2]);
    let with = |f: &dyn Fn(&mut CommitCertificate)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let certs: Vec<(&str, CommitCertificate, Option<&str>)> = vec![
        ("all-three-validators", good.clone(), None),
        (
            "two-of-three-is-not-more-than-two-thirds",
            certify(t, &h, &[0, 1]),
            Some("insufficient-power"),
        ),
        (
            "duplicate-signer",
            with(&|c| {
                c.signatures.truncate(2);
                c.signatures.push(good.signatures[0]);
            }),
            Some("duplicate-signature"),
        ),
        (
            "unknown-validator-index",
            with(&|c| {
                c.signatures[2] = CommitSig {
                    validator: 3,
                    signature: good.signatures[2].signature,
                };
            }),
            Some("unknown-validator"),
        ),
        (
            "forged-signature",
            with(&|c| c.signatures[1].signature[0] ^= 1),
            Some("bad-signature"),
        ),
        ("wrong-round", with(&|c| c.round = 1), Some("bad-signature")),
        (
            "wrong-height",
            with(&|c| c.height = 8),
            Some("wrong-height"),
        ),
        (
            "wrong-value",
            with(&|c| c.value = cradle_consensus::ValueId([0x99; 32])),
            Some("wrong-value"),
        ),
    ];
    // The Rust verdict of each certificate is the one the vector states.
    for (name, cert, error) in &certs {
        let got = cradle_ledger::block::verify_header_certificate(&h, cert, &t.consortium);
        assert_eq!(got.is_ok(), error.is_none(), "{name}: {got:?}");
    }
    let mut other = h.clone();
    other.chain_id = Digest32([0x01; 32]);
    json!({
        "members": members_json(t),
        "headers": [{
            "name": "height-7",
            "fields": header_json(&h),
            "borsh": borsh_hex(&h),
            "hash": hex::encode(h.hash()),
        }],
        "precommits": (0u16..3).map(|i| {
            let vote = Vote { kind: VoteKind::Precommit, height: 7, round: 0, value: Some(h.value_id()), validator: i };
            json!({
                "height": "7", "round": 0, "value": hex::encode(h.hash()), "validator": i,
                "sign_bytes": hex::encode(vote.sign_bytes(&t.chain_id())),
            })
        }).collect::<Vec<_>>(),
        "certificates": certs.iter().map(|(name, c, error)| json!({
            "name": name, "header": "height-7", "borsh": borsh_hex(c), "error": error,
        })).collect::<Vec<_>>(),
        "wrong_chain": { "header": borsh_hex(&other), "certificate": borsh_hex(&good), "error": "wrong-chain" },
    })
}

fn log_value(events: &[&AccessEvent]) -> Vec<u8> {
    let mut frontier = Frontier::new();
    for e in events {
        frontier.append(e.leaf_hash());
    }
    codec::encode(&LogState { frontier })
}

/// What a verifier concludes, as the JavaScript `verifyHistory` names it.
fn code(e: &AuditError) -> &'static str {
    match e {
        AuditError::Malformed(_) => "malformed",
        AuditError::WrongChain => "wrong-chain",
        AuditError::BadCertificate(_) => "uncertified-header",
        AuditError::StateProof(_) => "state-proof",
        AuditError::IncompleteHistory { .. } => "dropped-entry",
        AuditError::RootMismatch | AuditError::AlteredEvent { .. } => "altered-entry",
        AuditError::OutOfOrder { .. } => "reordered-entry",
        AuditError::WrongSubject { .. } => "wrong-subject",
        AuditError::RangeBoundary(_) => "range-gap",
        AuditError::StaleAnswer { .. } => "stale-answer",
        AuditError::MissingConsistencyProof { .. } => "missing-consistency-proof",
        AuditError::InconsistentCheckpoint(_) => "inconsistent-checkpoint",
        AuditError::BadEvidence { .. } => "malformed",
    }
}

struct Case {
    name: &'static str,
    answer: AuditAnswer,
    subject: AuditSubject,
    range: Option<(u64, u64)>,
    checkpoint: Option<Checkpoint>,
    consistency: Option<ConsistencyAnswer>,
    age: Option<(u64, u64)>,
}

/// The Rust verdict on a case, as `client::audit::audit_verified` reaches it.
fn verdict(t: &TestConsortium, c: &Case) -> Value {
    let refused = |code: &str| json!({ "verified": false, "code": code });
    let a = AuditAnswer::decode(&c.answer.encode()).unwrap();
    if a.subject != c.subject || a.range() != c.range {
        return refused("not-asked");
    }
    let v = match verify_answer(&t.consortium, &a) {
        Ok(v) => v,
        Err(e) => return refused(code(&e)),
    };
    if let Some((now_ms, max_age_ms)) = c.age
        && now_ms.saturating_sub(a.header.time_ms) > max_age_ms
    {
        return refused("stale-node");
    }
    let old = c.checkpoint.as_ref();
    let needs_proof = old.is_some_and(|cp| {
        a.header.height > cp.height
            && cp.access_log_size > 0
            && a.header.access_log_size != cp.access_log_size
    });
    let new = match (old, &c.consistency) {
        (Some(_), None) if needs_proof => Err(AuditError::MissingConsistencyProof {
            from_size: 0,
            to_size: 0,
        }),
        (Some(cp), Some(proof)) if needs_proof => {
            if proof.header.height <= a.header.height && proof.header != a.header {
                Err(AuditError::InconsistentCheckpoint(
                    "not the answer's block".into(),
                ))
            } else {
                proof.advance(&t.consortium, Some(cp))
            }
        }
        _ => advance_checkpoint(&t.consortium, old, &a.header, &a.certificate, None),
    };
    match new {
        Err(e) => refused(code(&e)),
        Ok(cp) => {
            let mut want =
                json!({ "verified": true, "events": v.events.len(), "log_size": v.log_size });
            if c.checkpoint.is_some() {
                want["checkpoint_height"] = json!(cp.height);
            }
            want
        }
    }
}

fn history_vectors(t: &TestConsortium) -> Value {
    let (p, q, r) = (
        patient_key(1).public_key(),
        patient_key(2).public_key(),
        patient_key(3).public_key(),
    );
    let (a, b, c) = (
        t.hospital_a.public_key(),
        t.hospital_b.public_key(),
        t.clinic.public_key(),
    );
    let permitted = EventOutcome::Permitted;
    let events: Vec<AccessEvent> = vec![
        access_event(0, &p, &a, &p, Purpose::PatientRequest, permitted).event,
        access_event(1, &p, &a, &b, Purpose::Treat, permitted).event,
        access_event(2, &q, &c, &q, Purpose::PatientRequest, permitted).event,
        access_event(
            3,
            &p,
            &a,
            &b,
            Purpose::Treat,
            EventOutcome::Denied {
                reason: DenialReason::NoGrant,
            },
        )
        .event,
        access_event(
            4,
            &p,
            &a,
            &b,
            Purpose::EmergencyTreat,
            EventOutcome::BreakGlass,
        )
        .event,
        access_event(5, &p, &a, &c, Purpose::Treat, permitted).event,
    ];
    let leaves: Vec<Hash> = events.iter().map(AccessEvent::leaf_hash).collect();
    let of = |s: &AuditSubject| events.iter().filter(|e| s.matches(e)).collect::<Vec<_>>();
    let (s_p, s_q, s_r) = (
        AuditSubject::Patient(p),
        AuditSubject::Patient(q),
        AuditSubject::Patient(r),
    );
    let entries: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (keys::patient_log(&p), log_value(&of(&s_p))),
        (keys::patient_log(&q), log_value(&of(&s_q))),
        (
            keys::break_glass_log(),
            log_value(&of(&AuditSubject::BreakGlass)),
        ),
        (
            keys::access_log(),
            log_value(&events.iter().collect::<Vec<_>>()),
        ),
    ];
    let mut tree = MemoryTree::new();
    let changes: Vec<(Hash, Option<Hash>)> = entries
        .iter()
        .map(|(k, v)| (sha256(k), Some(sha256(v))))
        .collect();
    let update = smt::update(&tree, &changes).unwrap();
    tree.apply(&update);

    let tip = header(
        t,
        12,
        GENESIS_MS + 5 * 61_001 + 1000,
        update.root,
        6,
        root_of(&leaves),
    );
    let tip_cert = certify(t, &tip, &[0, 1, 2]);
    let old = header(
        t,
        10,
        GENESIS_MS + 2 * 61_001 + 500,
        [0x55; 32],
        3,
        root_of(&leaves[..3]),
    );
    let checkpoint = Checkpoint::of(&old);

    let answer = |subject: &AuditSubject, range: Option<(u64, u64)>| -> AuditAnswer {
        let key = subject.state_key();
        let value = entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| BoundedVec::new(v.clone()).unwrap());
        let mine: Vec<AccessEvent> = of(subject).into_iter().cloned().collect();
        let events = match range {
            None => AuditEvents::Whole(BoundedVec::new(mine).unwrap()),
            Some((from_ms, to_ms)) => {
                let first_in = mine.partition_point(|e| e.time_ms < from_ms);
                let first_after = mine.partition_point(|e| e.time_ms <= to_ms).max(first_in);
                let run = first_in.saturating_sub(1)..(first_after + 1).min(mine.len());
                AuditEvents::Range {
                    from_ms,
                    to_ms,
                    leaves: BoundedVec::new(mine.iter().map(AccessEvent::leaf_hash).collect())
                        .unwrap(),
                    events: BoundedVec::new(
                        run.map(|i| IndexedEvent {
                            index: i as u64,
                            event: mine[i].clone(),
                        })
                        .collect(),
                    )
                    .unwrap(),
                }
            }
        };
        AuditAnswer {
            header: tip.clone(),
            certificate: tip_cert.clone(),
            subject: subject.clone(),
            log_proof: smt::prove(&tree, &sha256(&key)).unwrap(),
            log_value: value,
            events,
        }
    };
    let whole_events = |a: &AuditAnswer| match &a.events {
        AuditEvents::Whole(e) => e.to_vec(),
        AuditEvents::Range { .. } => unreachable!(),
    };
    let range_events = |a: &AuditAnswer| match &a.events {
        AuditEvents::Range { events, .. } => events.to_vec(),
        AuditEvents::Whole(_) => unreachable!(),
    };
    let set_whole = |a: &mut AuditAnswer, e: Vec<AccessEvent>| {
        a.events = AuditEvents::Whole(BoundedVec::new(e).unwrap())
    };
    let set_range = |a: &mut AuditAnswer, new: Vec<IndexedEvent>| {
        if let AuditEvents::Range { events, .. } = &mut a.events {
            *events = BoundedVec::new(new).unwrap();
        }
    };
    let tampered = |a: &AuditAnswer, f: &dyn Fn(&mut AuditAnswer)| {
        let mut a = a.clone();
        f(&mut a);
        a
    };

    let whole = answer(&s_p, None);
    let range = (events[1].time_ms, events[3].time_ms);
    let ranged = answer(&s_p, Some(range));
    let mut global = MemoryLog::new();
    for leaf in &leaves {
        global.append(*leaf);
    }
    let consistency = ConsistencyAnswer {
        header: tip.clone(),
        certificate: tip_cert.clone(),
        from_size: 3,
        proof: BoundedVec::new(consistency_proof(&global, 3, 6).unwrap()).unwrap(),
    };
    let forked = Checkpoint {
        access_log_root: Digest32(root_of(&[leaves[0], leaves[1], leaf_hash(&[9])])),
        ..checkpoint.clone()
    };
    let newer = Checkpoint {
        height: 13,
        time_ms: tip.time_ms + 1,
        ..checkpoint.clone()
    };
    let case = |name, answer: AuditAnswer, subject: &AuditSubject, range| Case {
        name,
        answer,
        subject: subject.clone(),
        range,
        checkpoint: None,
        consistency: None,
        age: None,
    };
    let cases = vec![
        case("honest-whole", whole.clone(), &s_p, None),
        case("honest-range", ranged.clone(), &s_p, Some(range)),
        case("honest-absent-log", answer(&s_r, None), &s_r, None),
        case(
            "honest-break-glass",
            answer(&AuditSubject::BreakGlass, None),
            &AuditSubject::BreakGlass,
            None,
        ),
        case(
            "dropped-entry",
            tampered(&whole, &|a| {
                let mut e = whole_events(a);
                e.remove(1);
                set_whole(a, e);
            }),
            &s_p,
            None,
        ),
        case(
            "altered-entry",
            tampered(&whole, &|a| {
                let mut e = whole_events(a);
                e[2].outcome = EventOutcome::Permitted;
                set_whole(a, e);
            }),
            &s_p,
            None,
        ),
        case(
            "reordered-entry",
            tampered(&whole, &|a| {
                let mut e = whole_events(a);
                e.swap(1, 3);
                set_whole(a, e);
            }),
            &s_p,
            None,
        ),
        case(
            "altered-range-entry",
            tampered(&ranged, &|a| {
                let mut e = range_events(a);
                e[1].event.purpose = Purpose::EmergencyTreat;
                set_range(a, e);
            }),
            &s_p,
            Some(range),
        ),
        case(
            "range-gap",
            tampered(&ranged, &|a| {
                let mut e = range_events(a);
                e.remove(1);
                set_range(a, e);
            }),
            &s_p,
            Some(range),
        ),
        case(
            "wrong-subject",
            tampered(&answer(&s_q, None), &|a| {
                set_whole(a, vec![events[0].clone()])
            }),
            &s_q,
            None,
        ),
        case("not-asked", whole.clone(), &s_q, None),
        case(
            "wrong-chain",
            tampered(&whole, &|a| a.header.chain_id = Digest32([0x01; 32])),
            &s_p,
            None,
        ),
        case(
            "uncertified-too-few-signers",
            tampered(&whole, &|a| {
                a.certificate.signatures.remove(2);
            }),
            &s_p,
            None,
        ),
        case(
            "uncertified-forged-signature",
            tampered(&whole, &|a| a.certificate.signatures[0].signature[0] ^= 1),
            &s_p,
            None,
        ),
        case(
            "uncertified-rewritten-header",
            tampered(&whole, &|a| a.header.state_root = Digest32([0x09; 32])),
            &s_p,
            None,
        ),
        case(
            "state-proof-mismatch",
            tampered(&whole, &|a| {
                a.log_value = Some(BoundedVec::new(entries[1].1.clone()).unwrap())
            }),
            &s_p,
            None,
        ),
        Case {
            checkpoint: Some(checkpoint.clone()),
            consistency: Some(consistency.clone()),
            ..case(
                "checkpoint-advanced-over-consistency-proof",
                whole.clone(),
                &s_p,
                None,
            )
        },
        Case {
            checkpoint: Some(checkpoint.clone()),
            ..case(
                "checkpoint-without-consistency-proof",
                whole.clone(),
                &s_p,
                None,
            )
        },
        Case {
            checkpoint: Some(forked),
            consistency: Some(consistency.clone()),
            ..case("checkpoint-forked", whole.clone(), &s_p, None)
        },
        Case {
            checkpoint: Some(newer),
            ..case("checkpoint-newer-than-answer", whole.clone(), &s_p, None)
        },
        Case {
            age: Some((tip.time_ms + 5000, 1000)),
            ..case("stale-node", whole.clone(), &s_p, None)
        },
    ];
    let subject_json = |s: &AuditSubject| match s {
        AuditSubject::Patient(k) => json!({ "kind": "patient", "id": hex::encode(k.0) }),
        AuditSubject::Archive(id) => json!({ "kind": "archive", "id": hex::encode(id.0) }),
        AuditSubject::Accessor(k) => json!({ "kind": "accessor", "id": hex::encode(k.0) }),
        AuditSubject::BreakGlass => json!({ "kind": "break_glass" }),
    };
    json!({
        "members": members_json(t),
        "cases": cases.iter().map(|c| json!({
            "name": c.name,
            "subject": subject_json(&c.subject),
            "range": c.range.map(|(from, to)| vec![dec(from), dec(to)]),
            "answer": hex::encode(c.answer.encode()),
            "checkpoint": c.checkpoint.as_ref().map(|cp| serde_json::to_value(cp).unwrap()),
            "consistency": c.consistency.as_ref().map(|a| hex::encode(a.encode())),
            "now_ms": c.age.map(|(now, _)| dec(now)),
            "max_age_ms": c.age.map(|(_, max)| dec(max)),
            "want": verdict(t, c),
        })).collect::<Vec<_>>(),
    })
}

fn document(t: &TestConsortium, body: Value) -> Value {
    let mut doc = json!({
        "format": FORMAT, "source": SOURCE, "header_layout": LAYOUT, "chain_id": hex::encode(t.chain_id()),
    });
    for (k, v) in body.as_object().unwrap() {
        doc[k] = v.clone();
    }
    doc
}

#[test]
fn portal_vectors_match_the_rust_implementation() {
    let t = TestConsortium::new(Policy::default());
    let files = [
        ("chain-next-members.json", document(&t, chain_vectors(&t))),
        (
            "history-next-members.json",
            document(&t, history_vectors(&t)),
        ),
        ("tx.json", document(&t, tx::vectors(&t))),
        ("sets.json", document(&t, sets::vectors(&t))),
        ("access.json", document(&t, access::vectors(&t))),
    ];
    // Every file is checked, so one stale file does not hide a difference in another.
    let mut differ = Vec::new();
    for (name, doc) in files {
        if vector_file::writing() {
            vector_file::write(name, &doc);
        } else if !vector_file::same(vector_file::read(name), doc) {
            differ.push(name);
        }
    }
    assert!(differ.is_empty(), "{differ:?} {}", vector_file::STALE);
}
