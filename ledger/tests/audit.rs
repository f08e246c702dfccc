//! Audit answers: honest ones verify from genesis alone, for every kind of subject and for time
//! ranges; every way a node could lie about a history is refused with its own error; and a
//! checkpoint only moves forward over a consistent access log.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use common::audit_world::{Scenario, Snapshot, scenario};
use cradle_ledger::audit::*;
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::crypto::Digest32;

fn whole(s: &Snapshot, subject: AuditSubject) -> AuditAnswer {
    build_answer(s, subject, None).unwrap()
}

fn whole_events(a: &mut AuditAnswer) -> Vec<cradle_ledger::access::AccessEvent> {
    match &a.events {
        AuditEvents::Whole(e) => e.to_vec(),
        AuditEvents::Range { .. } => panic!("want a whole answer"),
    }
}

fn set_whole(a: &mut AuditAnswer, events: Vec<cradle_ledger::access::AccessEvent>) {
    a.events = AuditEvents::Whole(BoundedVec::new(events).unwrap());
}

fn range_parts(a: &AuditAnswer) -> (u64, u64, Vec<[u8; 32]>, Vec<IndexedEvent>) {
    match &a.events {
        AuditEvents::Range {
            from_ms,
            to_ms,
            leaves,
            events,
        } => (*from_ms, *to_ms, leaves.to_vec(), events.to_vec()),
        AuditEvents::Whole(_) => panic!("want a range answer"),
    }
}

fn set_range_events(a: &mut AuditAnswer, new: Vec<IndexedEvent>) {
    let (from_ms, to_ms, leaves, _) = range_parts(a);
    a.events = AuditEvents::Range {
        from_ms,
        to_ms,
        leaves: BoundedVec::new(leaves).unwrap(),
        events: BoundedVec::new(new).unwrap(),
    };
}

fn setup() -> (Scenario, Snapshot) {
    let s = scenario();
    let snap = Snapshot::of(&s.world);
    (s, snap)
}

#[test]
fn honest_whole_answers_verify_for_every_subject() {
    let (s, snap) = setup();
    let c = &s.world.consortium;
    let mut sizes = Vec::new();
    for subject in s.subjects() {
        let answer = whole(&snap, subject.clone());
        // It crosses the wire and back unchanged.
        let answer = AuditAnswer::decode(&answer.encode()).unwrap();
        let v = verify_answer(c, &answer).unwrap_or_else(|e| panic!("{subject:?}: {e}"));
        let want: Vec<_> = s
            .world
            .events
            .iter()
            .filter(|e| subject.matches(e))
            .collect();
        let got: Vec<_> = v.events.iter().map(|ie| &ie.event).collect();
        assert_eq!(got, want, "{subject:?}");
        assert_eq!(v.log_size, want.len() as u64);
        assert_eq!(v.height, s.world.tip.height);
        assert_eq!(v.access_log_size, 7);
        sizes.push(v.log_size);
    }
    // P, Q, archives 1..3, B and its obstetrician (whose accesses B answers for), the clinic,
    // the regulator (never asked: an absent log), break-glass.
    assert_eq!(sizes, vec![6, 1, 3, 3, 1, 4, 4, 1, 0, 1]);
}

#[test]
fn honest_range_answers_return_exactly_the_events_in_range() {
    let (s, snap) = setup();
    let c = &s.world.consortium;
    let p = AuditSubject::Patient(s.p.public_key());
    let times: Vec<u64> = s.world.events.iter().map(|e| e.time_ms).collect();
    // P's events are global events 0..=4 and 6. Ask for global events 1..=3, the whole log,
    // nothing before, nothing after, and a gap between two events.
    let cases = [
        (times[1], times[3], 3),
        (0, u64::MAX, 6),
        (0, times[0] - 1, 0),
        (times[6] + 1, u64::MAX, 0),
        (times[4] + 1, times[6] - 1, 0),
        (times[6], times[6], 1),
    ];
    for (from, to, n) in cases {
        let answer = build_answer(&snap, p.clone(), Some((from, to))).unwrap();
        let answer = AuditAnswer::decode(&answer.encode()).unwrap();
        let v = verify_answer(c, &answer).unwrap_or_else(|e| panic!("[{from}, {to}]: {e}"));
        assert_eq!(v.events.len(), n, "[{from}, {to}]");
        assert!(
            v.events
                .iter()
                .all(|ie| (from..=to).contains(&ie.event.time_ms))
        );
        assert_eq!(v.range, Some((from, to)));
    }
    // An absent log has an empty range answer.
    let r = AuditSubject::Accessor(s.world.regulator.public_key());
    let answer = build_answer(&snap, r, Some((0, u64::MAX))).unwrap();
    assert!(verify_answer(c, &answer).unwrap().events.is_empty());
}

#[test]
fn dropping_an_event_is_an_incomplete_history() {
    let (s, snap) = setup();
    let mut a = whole(&snap, AuditSubject::Archive(s.a1));
    let mut events = whole_events(&mut a);
    events.remove(1);
    set_whole(&mut a, events);
    assert_eq!(
        verify_answer(&s.world.consortium, &a),
        Err(AuditError::IncompleteHistory {
            expected: 3,
            got: 2
        })
    );
    // Dropping it from the leaves of a range answer too.
    let mut a = build_answer(&snap, AuditSubject::Archive(s.a1), Some((0, u64::MAX))).unwrap();
    let (from_ms, to_ms, mut leaves, mut events) = range_parts(&a);
    leaves.remove(1);
    events.remove(1);
    a.events = AuditEvents::Range {
        from_ms,
        to_ms,
        leaves: BoundedVec::new(leaves).unwrap(),
        events: BoundedVec::new(events).unwrap(),
    };
    assert!(matches!(
        verify_answer(&s.world.consortium, &a),
        Err(AuditError::IncompleteHistory { .. })
    ));
}

#[test]
fn altering_an_event_is_caught() {
    let (s, snap) = setup();
    let c = &s.world.consortium;
    let subject = AuditSubject::Patient(s.p.public_key());
    let mut a = whole(&snap, subject.clone());
    let mut events = whole_events(&mut a);
    events[2].purpose = cradle_ledger::tx::Purpose::Treat;
    events[2].outcome = cradle_ledger::access::EventOutcome::Permitted;
    set_whole(&mut a, events);
    assert_eq!(verify_answer(c, &a), Err(AuditError::RootMismatch));

    let mut a = build_answer(&snap, subject, Some((0, u64::MAX))).unwrap();
    let (_, _, _, mut events) = range_parts(&a);
    events[2].event.outcome = cradle_ledger::access::EventOutcome::Permitted;
    set_range_events(&mut a, events);
    assert_eq!(
        verify_answer(c, &a),
        Err(AuditError::AlteredEvent { index: 2 })
    );
}

#[test]
fn reordering_events_is_caught() {
    let (s, snap) = setup();
    let mut a = whole(&snap, AuditSubject::Patient(s.p.public_key()));
    let mut events = whole_events(&mut a);
    events.swap(1, 3);
    set_whole(&mut a, events);
    assert_eq!(
        verify_answer(&s.world.consortium, &a),
        Err(AuditError::OutOfOrder { index: 2 })
    );
}

#[test]
fn an_event_about_someone_else_is_the_wrong_subject() {
    let (s, snap) = setup();
    let mut a = whole(&snap, AuditSubject::Patient(s.q.public_key()));
    set_whole(&mut a, vec![s.world.events[0].clone()]);
    assert_eq!(
        verify_answer(&s.world.consortium, &a),
        Err(AuditError::WrongSubject { index: 0 })
    );
}

#[test]
fn a_header_without_a_valid_certificate_is_refused() {
    let (s, snap) = setup();
    let c = &s.world.consortium;
    let honest = whole(&snap, AuditSubject::BreakGlass);

    // The previous block's certificate.
    let mut a = honest.clone();
    let prev = &s.world.blocks[s.world.blocks.len() - 2];
    a.certificate = prev.certificate.clone();
    assert!(matches!(
        verify_answer(c, &a),
        Err(AuditError::BadCertificate(_))
    ));

    // Too few signatures: one validator of three.
    let mut a = honest.clone();
    a.certificate.signatures.truncate(1);
    assert!(matches!(
        verify_answer(c, &a),
        Err(AuditError::BadCertificate(_))
    ));

    // A forged signature.
    let mut a = honest.clone();
    a.certificate.signatures[0].signature[0] ^= 1;
    assert!(matches!(
        verify_answer(c, &a),
        Err(AuditError::BadCertificate(_))
    ));

    // A header rewritten under its certificate (a different state root).
    let mut a = honest.clone();
    a.header.state_root = Digest32([9; 32]);
    assert!(matches!(
        verify_answer(c, &a),
        Err(AuditError::BadCertificate(_))
    ));

    // Another chain.
    let mut a = honest;
    a.header.chain_id = Digest32([1; 32]);
    assert_eq!(verify_answer(c, &a), Err(AuditError::WrongChain));
}

#[test]
fn a_state_proof_for_another_root_is_refused() {
    let mut s = scenario();
    let c = s.world.consortium.clone();
    let subject = AuditSubject::Archive(s.a2);
    let old = whole(&Snapshot::of(&s.world), subject.clone());
    s.b_reads(s.a2, None, 99);
    let new = whole(&Snapshot::of(&s.world), subject);
    assert_eq!(verify_answer(&c, &new).unwrap().log_size, 4);

    // The old proof and log under the new header: the old history, passed off as current.
    let mut a = new.clone();
    a.log_proof = old.log_proof.clone();
    a.log_value = old.log_value.clone();
    a.events = old.events.clone();
    assert!(matches!(
        verify_answer(&c, &a),
        Err(AuditError::StateProof(_))
    ));

    // Claiming the log is absent.
    let mut a = new;
    a.log_value = None;
    a.events = AuditEvents::Whole(BoundedVec::empty());
    assert!(matches!(
        verify_answer(&c, &a),
        Err(AuditError::StateProof(_))
    ));
}

#[test]
fn a_range_that_omits_an_event_is_refused() {
    let (s, snap) = setup();
    let c = &s.world.consortium;
    let times: Vec<u64> = s.world.events.iter().map(|e| e.time_ms).collect();
    let subject = AuditSubject::Patient(s.p.public_key());
    let honest = build_answer(&snap, subject, Some((times[1], times[3]))).unwrap();
    let (_, _, _, events) = range_parts(&honest);
    // Boundary 0, in-range 1, 2, 3, boundary 4.
    assert_eq!(
        events.iter().map(|e| e.index).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );

    // A hole in the middle.
    let mut a = honest.clone();
    let mut e = events.clone();
    e.remove(2);
    set_range_events(&mut a, e);
    assert!(matches!(
        verify_answer(c, &a),
        Err(AuditError::RangeBoundary(_))
    ));

    // The last in-range event and the boundary after it both left out.
    let mut a = honest.clone();
    set_range_events(&mut a, events[..3].to_vec());
    assert!(matches!(
        verify_answer(c, &a),
        Err(AuditError::RangeBoundary(_))
    ));

    // The first in-range event and the boundary before it both left out.
    let mut a = honest.clone();
    set_range_events(&mut a, events[2..].to_vec());
    assert!(matches!(
        verify_answer(c, &a),
        Err(AuditError::RangeBoundary(_))
    ));

    // Nothing at all for a non-empty log.
    let mut a = honest;
    set_range_events(&mut a, vec![]);
    assert!(matches!(
        verify_answer(c, &a),
        Err(AuditError::RangeBoundary(_))
    ));
}

#[test]
fn checkpoints_move_forward_only_over_a_consistent_log() {
    let mut s = scenario();
    let c = s.world.consortium.clone();
    let early = &s.world.blocks[5];
    let cp0 = advance_checkpoint(&c, None, &early.block.header, &early.certificate, None).unwrap();
    assert_eq!(cp0.access_log_size, 1);
    let early = early.clone();

    // Forward, with the node's proof.
    let snap = Snapshot::of(&s.world);
    let ans = build_consistency(&snap, &snap.global_log(), cp0.access_log_size).unwrap();
    let ans = ConsistencyAnswer::decode(&ans.encode()).unwrap();
    let cp1 = ans.advance(&c, Some(&cp0)).unwrap();
    assert_eq!(cp1.height, s.world.tip.height);
    assert_eq!(cp1.access_log_size, 7);
    // Forward without a proof, when the log grew: refused.
    let (h, cert) = snap.tip.clone().unwrap();
    assert_eq!(
        advance_checkpoint(&c, Some(&cp0), &h, &cert, None),
        Err(AuditError::MissingConsistencyProof {
            from_size: 1,
            to_size: 7
        })
    );
    // Backward: refused. The same header again: fine.
    assert_eq!(
        advance_checkpoint(
            &c,
            Some(&cp1),
            &early.block.header,
            &early.certificate,
            None
        ),
        Err(AuditError::StaleAnswer {
            remembered_height: cp1.height,
            got: early.block.header.height
        })
    );
    assert_eq!(
        advance_checkpoint(&c, Some(&cp1), &h, &cert, None),
        Ok(cp1.clone())
    );
    // Forward over empty blocks: the log did not grow, no proof needed.
    s.world.advance(1000);
    let snap = Snapshot::of(&s.world);
    let (h2, cert2) = snap.tip.clone().unwrap();
    assert!(advance_checkpoint(&c, Some(&cp1), &h2, &cert2, None).is_ok());

    // A fork certified by the same (now Byzantine) validators, with another eighth event. A
    // client that remembers the fork cannot be moved onto the honest chain, nor the reverse.
    let mut fork = scenario();
    fork.b_reads(fork.a2, None, 42);
    let fsnap = Snapshot::of(&fork.world);
    let (fh, fcert) = fsnap.tip.clone().unwrap();
    let cp_fork = advance_checkpoint(
        &c,
        Some(&cp0),
        &fh,
        &fcert,
        Some(
            &build_consistency(&fsnap, &fsnap.global_log(), 1)
                .unwrap()
                .proof,
        ),
    )
    .unwrap();
    assert_eq!(cp_fork.access_log_size, 8);
    s.b_reads(s.a2, None, 50);
    s.b_reads(s.a2, None, 51);
    let snap = Snapshot::of(&s.world);
    let honest = build_consistency(&snap, &snap.global_log(), 8).unwrap();
    assert!(matches!(
        honest.advance(&c, Some(&cp_fork)),
        Err(AuditError::InconsistentCheckpoint(_))
    ));
    assert!(
        honest.advance(&c, Some(&cp1)).is_err(),
        "wrong starting size"
    );
    let from_cp1 = build_consistency(&snap, &snap.global_log(), 7).unwrap();
    assert_eq!(from_cp1.advance(&c, Some(&cp1)).unwrap().access_log_size, 9);
    // ...and a proof from another size is refused before it is checked.
    let wrong_from = build_consistency(&snap, &snap.global_log(), 3).unwrap();
    assert!(matches!(
        wrong_from.advance(&c, Some(&cp1)),
        Err(AuditError::InconsistentCheckpoint(_))
    ));
    // Another block at a remembered height.
    let mut other = cp1.clone();
    other.header_hash = Digest32([7; 32]);
    assert!(matches!(
        advance_checkpoint(&c, Some(&other), &h, &cert, None),
        Err(AuditError::InconsistentCheckpoint(_))
    ));
}

#[test]
fn answers_decode_under_bounds() {
    let (s, snap) = setup();
    let a = whole(&snap, AuditSubject::BreakGlass);
    let mut bytes = a.encode();
    bytes.push(0);
    assert!(AuditAnswer::decode(&bytes).is_err(), "trailing bytes");
    assert!(AuditAnswer::decode(&[]).is_err());
    assert!(AuditAnswer::decode(&vec![1u8; AUDIT_ANSWER_BYTES_MAX + 1]).is_err());
    let _ = s;
}
