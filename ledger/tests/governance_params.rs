//! Consensus timeouts changed by a vote: adopted like any change, in force from the same
//! height at every node, and refused when out of bounds or unchanged.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use cradle_consensus::Config;
use cradle_ledger::governance::{self, ApproveChange, Change, ProposeChange, proposal_id};
use cradle_ledger::tx::TxBody;
use cradle_ledger::*;

fn propose(w: &mut World, by: &Keypair, change: Change) -> Result<ProposalId, Error> {
    let tx = w.sign(by, TxBody::ProposeChange(ProposeChange { change }));
    let id = proposal_id(&by.public_key(), tx.tx.nonce);
    w.commit_one(tx)?;
    Ok(id)
}

fn approve(w: &mut World, by: &Keypair, proposal: ProposalId) {
    let tx = w.sign(by, TxBody::ApproveChange(ApproveChange { proposal }));
    w.commit_one(tx).unwrap();
}

fn copy(k: &Keypair) -> Keypair {
    Keypair::from_secret_parts(&k.ed25519_seed(), &k.x25519_secret())
}

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
    approve(&mut w, &b, id);
    approve(&mut w, &c, id);
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
