//! Consensus timeouts changed by a vote: adopted like any change, in force from the same
//! height at every node, and refused when out of bounds or unchanged.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use cradle_consensus::Config;
use cradle_ledger::governance::{self, Change};
use cradle_ledger::*;

#[test]
fn timeouts_change_by_vote_and_bad_ones_are_refused() {
    let mut w = World::new(Policy::default());
    let (a, b, c) = (copy(&w.hospital_a), copy(&w.hospital_b), copy(&w.clinic));
    let slower = Config {
        timeout_propose_ms: 6_000,
        timeout_prevote_ms: 2_000,
        timeout_precommit_ms: 2_000,
        timeout_delta_ms: 1_000,
    };
    // Out of bounds: a zero timeout would end rounds before any message crosses a network.
    let zero = Config {
        timeout_propose_ms: 0,
        ..slower
    };
    let err = propose(&mut w, &a, Change::SetTimeouts { timeouts: zero }).unwrap_err();
    assert!(matches!(err, Error::Consensus(_)), "{err}");
    assert!(governance::membership(&w.store).unwrap().is_none());

    let id = propose(&mut w, &a, Change::SetTimeouts { timeouts: slower }).unwrap();
    approve(&mut w, &b, id).unwrap();
    approve(&mut w, &c, id).unwrap();
    let adopted = w.tip.height;
    assert_eq!(w.consortium.timeouts, None);
    w.advance(1000);
    w.advance(1000);
    assert_eq!(w.tip.height, adopted + 2);
    assert_eq!(w.consortium.timeouts, Some(slower));
    assert_eq!(w.consortium.epoch, 1);
    // The same timeouts again change nothing.
    let err = propose(&mut w, &a, Change::SetTimeouts { timeouts: slower }).unwrap_err();
    assert!(matches!(err, Error::Unchanged(_)), "{err}");
}
