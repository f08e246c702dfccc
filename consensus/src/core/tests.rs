//! Unit tests of the state machine, driven by hand.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::SigningKey;

use super::*;
use crate::proposal::Proposal;
use crate::types::{CommitCertificate, Validator, Vote, VoteKind};

const CHAIN: [u8; 32] = [5; 32];

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct Block(u8);

impl Value for Block {
    fn id(&self) -> ValueId {
        ValueId([self.0; 32])
    }
}

fn keys(n: usize) -> Vec<SigningKey> {
    (0..n)
        .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
        .collect()
}

fn set(keys: &[SigningKey]) -> ValidatorSet {
    ValidatorSet::new(
        keys.iter()
            .map(|k| Validator {
                public_key: k.verifying_key().to_bytes(),
                voting_power: 1,
            })
            .collect(),
    )
    .unwrap()
}

fn core(keys: &[SigningKey], me: usize) -> Core<Block> {
    Core::new(
        Config::default(),
        set(keys),
        CHAIN,
        Some(keys[me].clone()),
        1,
        None,
    )
    .unwrap()
}

/// Runs a cluster with instant, lossless delivery; the driver answers requests at once.
fn run_cluster(
    cores: &mut [Core<Block>],
    heights: u64,
) -> Vec<Vec<(Height, Block, CommitCertificate)>> {
    let mut decided = vec![Vec::new(); cores.len()];
    let mut queue: Vec<(usize, Input<Block>)> =
        (0..cores.len()).map(|i| (i, Input::Start)).collect();
    let mut steps = 0;
    while let Some((i, input)) = queue.pop() {
        steps += 1;
        assert!(steps < 100_000, "cluster did not converge");
        if cores[i].height() > heights {
            continue;
        }
        for effect in cores[i].handle(input).unwrap() {
            match effect {
                Effect::PersistAndBroadcastVote { vote, .. } => {
                    for j in 0..cores.len() {
                        queue.insert(0, (j, Input::Vote(vote)));
                    }
                }
                Effect::PersistAndBroadcastProposal { proposal, .. } => {
                    for j in 0..cores.len() {
                        queue.insert(0, (j, Input::Proposal(proposal.clone())));
                    }
                }
                Effect::RequestValue { height, round } => queue.push((
                    i,
                    Input::ProposeValue {
                        height,
                        round,
                        value: Block(height as u8 * 10 + i as u8),
                    },
                )),
                Effect::ValidateValue { height, value, .. } => queue.push((
                    i,
                    Input::ValueValidated {
                        height,
                        id: value.id(),
                        valid: true,
                    },
                )),
                Effect::Decide {
                    height,
                    value,
                    certificate,
                    ..
                } => decided[i].push((height, value, certificate)),
                _ => {}
            }
        }
    }
    decided
}

#[test]
fn four_validators_decide_the_same_values_with_verifying_certificates() {
    let ks = keys(4);
    let mut cores: Vec<_> = (0..4).map(|i| core(&ks, i)).collect();
    let decided = run_cluster(&mut cores, 3);
    for d in &decided {
        assert_eq!(d.len(), 3, "every validator decides three heights: {d:?}");
        let values = |d: &[(Height, Block, CommitCertificate)]| {
            d.iter()
                .map(|(h, v, _)| (*h, v.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(values(d), values(&decided[0]), "validators disagree");
        for (h, v, cert) in d {
            cert.verify_for(&CHAIN, &set(&ks), *h, v.id()).unwrap();
        }
    }
}

#[test]
fn observer_follows_without_voting() {
    let ks = keys(4);
    let mut obs: Core<Block> =
        Core::new(Config::default(), set(&ks), CHAIN, None, 1, None).unwrap();
    let fx = obs.handle(Input::Start).unwrap();
    assert!(
        fx.iter()
            .all(|e| matches!(e, Effect::ScheduleTimeout { .. })),
        "{fx:?}"
    );
    let fx = obs
        .handle(Input::TimeoutElapsed {
            height: 1,
            round: 0,
            step: Step::Propose,
        })
        .unwrap();
    assert!(fx.is_empty(), "an observer signs nothing: {fx:?}");
}

fn prevote_of(fx: &[Effect<Block>]) -> Option<SignedVote> {
    fx.iter().find_map(|e| match e {
        Effect::PersistAndBroadcastVote { vote, .. } if vote.vote.kind == VoteKind::Prevote => {
            Some(*vote)
        }
        _ => None,
    })
}

#[test]
fn restored_validator_never_signs_a_different_vote_for_the_same_step() {
    let ks = keys(4);
    let proposer = usize::from(core(&ks, 0).proposer(1, 0));
    let me = (proposer + 1) % 4;
    let mut c = core(&ks, me);
    c.handle(Input::Start).unwrap();
    let p = Proposal {
        height: 1,
        round: 0,
        value: Block(7).id(),
        valid_round: None,
        proposer: proposer as u16,
    }
    .sign(Block(7), &CHAIN, &ks[proposer]);
    c.handle(Input::Proposal(p)).unwrap();
    let fx = c
        .handle(Input::ValueValidated {
            height: 1,
            id: Block(7).id(),
            valid: true,
        })
        .unwrap();
    let first = prevote_of(&fx).expect("prevotes the valid proposal");
    assert_eq!(first.vote.value, Some(Block(7).id()));
    let state = c.persisted_state();
    let bytes = borsh::to_vec(&state).unwrap();
    let restored_state = PersistedState::<Block>::try_from_slice(&bytes).unwrap();

    let mut r = Core::new(
        Config::default(),
        set(&ks),
        CHAIN,
        Some(ks[me].clone()),
        1,
        Some(restored_state),
    )
    .unwrap();
    let fx = r.handle(Input::Start).unwrap();
    assert!(
        fx.contains(&Effect::Broadcast(Message::Vote(first))),
        "re-sends its prevote: {fx:?}"
    );
    let fx = r
        .handle(Input::TimeoutElapsed {
            height: 1,
            round: 0,
            step: Step::Propose,
        })
        .unwrap();
    assert_eq!(
        prevote_of(&fx),
        None,
        "a timeout after restore must not sign a nil prevote"
    );
}

#[test]
fn persisted_state_this_core_could_not_have_written_is_refused() {
    let ks = keys(4);
    let proposer = usize::from(core(&ks, 0).proposer(1, 0));
    let me = (proposer + 1) % 4;
    let mut c = core(&ks, me);
    c.handle(Input::Start).unwrap();
    c.handle(Input::TimeoutElapsed {
        height: 1,
        round: 0,
        step: Step::Propose,
    })
    .unwrap();
    let good = c.persisted_state();
    assert_eq!(good.own_votes.len(), 1, "one nil prevote: {good:?}");
    let restore = |state: PersistedState<Block>| {
        Core::new(
            Config::default(),
            set(&ks),
            CHAIN,
            Some(ks[me].clone()),
            1,
            Some(state),
        )
        .map(|_| ())
    };
    restore(good.clone()).unwrap();

    let mut two_prevotes = good.clone();
    let mut other = two_prevotes.own_votes[0].vote;
    other.value = Some(Block(9).id());
    two_prevotes.own_votes.push(other.sign(&CHAIN, &ks[me]));
    assert_eq!(
        restore(two_prevotes),
        Err(Error::CorruptPersistedState {
            reason: "two own votes for one round and step"
        })
    );

    let mut valid_too_early = good.clone();
    valid_too_early.step = Step::Propose;
    valid_too_early.valid = Some((0, Block(9)));
    assert!(matches!(
        restore(valid_too_early),
        Err(Error::CorruptPersistedState { .. })
    ));

    let mut vote_ahead = good;
    vote_ahead.round = 0;
    vote_ahead.own_votes[0].vote.round = 1;
    assert!(matches!(
        restore(vote_ahead),
        Err(Error::CorruptPersistedState { .. })
    ));
}

#[test]
fn vote_with_bad_signature_is_rejected_and_changes_nothing() {
    let ks = keys(4);
    let mut c = core(&ks, 0);
    c.handle(Input::Start).unwrap();
    let mut forged = Vote {
        kind: VoteKind::Prevote,
        height: 1,
        round: 5,
        value: None,
        validator: 2,
    }
    .sign(&CHAIN, &ks[3]);
    assert_eq!(
        c.handle(Input::Vote(forged)),
        Err(Error::BadSignature { index: 2 })
    );
    forged.vote.validator = 9;
    assert_eq!(
        c.handle(Input::Vote(forged)),
        Err(Error::UnknownValidator { index: 9 })
    );
    assert_eq!(c.round(), 0);
}

#[test]
fn votes_from_more_than_a_third_in_a_later_round_skip_ahead() {
    let ks = keys(4);
    let mut c = core(&ks, 0);
    c.handle(Input::Start).unwrap();
    for who in [1u16, 2] {
        let v = Vote {
            kind: VoteKind::Prevote,
            height: 1,
            round: 3,
            value: None,
            validator: who,
        }
        .sign(&CHAIN, &ks[usize::from(who)]);
        c.handle(Input::Vote(v)).unwrap();
    }
    assert_eq!(c.round(), 3);
}

#[test]
fn locked_validator_prevotes_nil_for_a_different_fresh_proposal() {
    let ks = keys(4);
    let me = 0;
    let mut c = core(&ks, me);
    c.handle(Input::Start).unwrap();
    // Round 0: lock on whatever is proposed, by feeding a proposal and 2f+1 prevotes for it.
    let value = Block(1);
    let p0 = usize::from(c.proposer(1, 0));
    if p0 == me {
        c.handle(Input::ProposeValue {
            height: 1,
            round: 0,
            value: value.clone(),
        })
        .unwrap();
    } else {
        let p = Proposal {
            height: 1,
            round: 0,
            value: value.id(),
            valid_round: None,
            proposer: p0 as u16,
        }
        .sign(value.clone(), &CHAIN, &ks[p0]);
        c.handle(Input::Proposal(p)).unwrap();
        c.handle(Input::ValueValidated {
            height: 1,
            id: value.id(),
            valid: true,
        })
        .unwrap();
    }
    for who in 1u16..4 {
        let v = Vote {
            kind: VoteKind::Prevote,
            height: 1,
            round: 0,
            value: Some(value.id()),
            validator: who,
        }
        .sign(&CHAIN, &ks[usize::from(who)]);
        c.handle(Input::Vote(v)).unwrap();
    }
    assert_eq!(c.locked_round(), Some(0));
    // Round 1 proposes something else without a valid round: a locked validator refuses it.
    c.handle(Input::TimeoutElapsed {
        height: 1,
        round: 0,
        step: Step::Precommit,
    })
    .unwrap();
    assert_eq!(c.round(), 1);
    let p1 = usize::from(c.proposer(1, 1));
    if p1 != me {
        let other = Block(2);
        let p = Proposal {
            height: 1,
            round: 1,
            value: other.id(),
            valid_round: None,
            proposer: p1 as u16,
        }
        .sign(other.clone(), &CHAIN, &ks[p1]);
        c.handle(Input::Proposal(p)).unwrap();
        let fx = c
            .handle(Input::ValueValidated {
                height: 1,
                id: other.id(),
                valid: true,
            })
            .unwrap();
        assert_eq!(prevote_of(&fx).map(|v| v.vote.value), Some(None));
    }
}

#[test]
fn committed_certificate_moves_the_core_to_the_next_height() {
    let ks = keys(4);
    let mut c = core(&ks, 0);
    c.handle(Input::Start).unwrap();
    let votes: Vec<_> = (0u16..3)
        .map(|i| {
            Vote {
                kind: VoteKind::Precommit,
                height: 4,
                round: 2,
                value: Some(Block(4).id()),
                validator: i,
            }
            .sign(&CHAIN, &ks[usize::from(i)])
        })
        .collect();
    let certificate = CommitCertificate::from_precommits(4, 2, Block(4).id(), &votes);
    let mut bad = certificate.clone();
    bad.signatures.truncate(2);
    assert!(c.handle(Input::Committed { certificate: bad }).is_err());
    assert_eq!(c.height(), 1);
    c.handle(Input::Committed { certificate }).unwrap();
    assert_eq!((c.height(), c.round()), (5, 0));
}

#[test]
fn ticks_fire_the_timeouts_whose_deadline_passed() {
    let ks = keys(4);
    let me = 0;
    let mut c = core(&ks, me);
    c.handle(Input::Start).unwrap();
    let fx = c.handle(Input::Tick { now_ms: 10 }).unwrap();
    assert!(prevote_of(&fx).is_none());
    let fx = c
        .handle(Input::Tick {
            now_ms: Config::default().timeout_propose_ms,
        })
        .unwrap();
    assert_eq!(
        prevote_of(&fx).map(|v| v.vote.value),
        Some(None),
        "propose timeout prevotes nil"
    );
}
