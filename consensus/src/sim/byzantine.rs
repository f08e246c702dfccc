//! Byzantine validators' outgoing traffic. Each Byzantine validator runs an honest core (so it
//! stays in step with the protocol) and this module corrupts what that core sends, per peer.
//! Silent validators run no core at all, and double voters are two honest instances with one
//! key (see [`super::scenario::Behaviour::DoubleVoter`]).

use ed25519_dalek::SigningKey;

use crate::proposal::{Message, Value};
use crate::types::{ValidatorIndex, ValueId, VoteKind};

use super::rng::Rng;
use super::scenario::Behaviour;
use super::value::SimValue;

/// The messages a validator with `behaviour` sends to each of `peers` when its core broadcasts
/// `message`.
pub fn fan_out(
    behaviour: Option<Behaviour>,
    message: &Message<SimValue>,
    peers: &[usize],
    key: &SigningKey,
    chain_id: &[u8; 32],
    validators: usize,
    rng: &mut Rng,
) -> Vec<(usize, Message<SimValue>)> {
    match behaviour {
        None | Some(Behaviour::DoubleVoter) => {
            peers.iter().map(|&p| (p, message.clone())).collect()
        }
        Some(Behaviour::Silent) => Vec::new(),
        Some(Behaviour::EquivocatingProposer) => {
            let Message::Proposal(original) = message else {
                return peers.iter().map(|&p| (p, message.clone())).collect();
            };
            let mut value = original.value.clone();
            value.nonce = rng.next_u64();
            value.acceptable = rng.chance(500);
            let mut header = original.proposal;
            header.value = value.id();
            let other = Message::Proposal(header.sign(value, chain_id, key));
            peers
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    let m = if i % 2 == 0 { message } else { &other };
                    (p, m.clone())
                })
                .collect()
        }
        Some(Behaviour::BadSignatures) => peers
            .iter()
            .map(|&p| {
                let mut m = message.clone();
                let impersonate = rng.chance(500);
                let other = rng.below(validators as u64) as ValidatorIndex;
                match &mut m {
                    Message::Vote(v) if impersonate => v.vote.validator = other,
                    Message::Vote(v) => v.signature[rng.below(64) as usize] ^= 1,
                    Message::Proposal(pr) if impersonate => pr.proposal.proposer = other,
                    Message::Proposal(pr) => pr.signature[rng.below(64) as usize] ^= 1,
                }
                (p, m)
            })
            .collect(),
        Some(Behaviour::UnknownBlockVoter) => {
            let Message::Vote(v) = message else {
                return peers.iter().map(|&p| (p, message.clone())).collect();
            };
            let mut out = Vec::with_capacity(peers.len() * 2);
            for &p in peers {
                let mut vote = v.vote;
                let mut unknown = [0u8; 32];
                unknown[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
                vote.value = Some(ValueId(unknown));
                out.push((p, Message::Vote(vote.sign(chain_id, key))));
                if rng.chance(300) {
                    // A precommit for an unknown block in the next round, to tempt a skip.
                    vote.kind = VoteKind::Precommit;
                    vote.round = vote.round.saturating_add(1);
                    out.push((p, Message::Vote(vote.sign(chain_id, key))));
                }
            }
            out
        }
    }
}
