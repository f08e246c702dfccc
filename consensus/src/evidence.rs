//! Equivocation evidence: two messages one validator signed for one height, round and step.
//!
//! Evidence is self-proving. Both messages carry the offender's signature over the chain id, so
//! anyone holding the genesis validator set checks it with [`Equivocation::verify`], trusting no
//! node. Evidence of one misbehaviour is named by its [`EvidenceSlot`] (height, round, step,
//! validator): whichever two conflicting messages prove it, it is the same offence, which is how
//! a store keeps it once.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::proposal::SignedProposalHeader;
use crate::types::{
    Error, Height, Round, SignedVote, ValidatorIndex, ValidatorSet, ValueId, VoteKind,
};

/// Proof that a validator signed two conflicting messages for one height, round and step.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Equivocation {
    /// Two votes of one kind, height and round, for different values.
    Vote {
        first: SignedVote,
        second: SignedVote,
    },
    /// Two different proposals from one proposer for one height and round.
    Proposal {
        first: SignedProposalHeader,
        second: SignedProposalHeader,
    },
}

/// Which step a validator equivocated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EvidenceKind {
    Proposal,
    Prevote,
    Precommit,
}

impl EvidenceKind {
    /// One byte per kind, stable: stores order and key evidence by it.
    pub fn code(self) -> u8 {
        match self {
            EvidenceKind::Proposal => 0,
            EvidenceKind::Prevote => 1,
            EvidenceKind::Precommit => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Proposal => "proposal",
            EvidenceKind::Prevote => "prevote",
            EvidenceKind::Precommit => "precommit",
        }
    }
}

/// The one offence a piece of evidence proves: who equivocated where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EvidenceSlot {
    pub height: Height,
    pub round: Round,
    pub kind: EvidenceKind,
    pub validator: ValidatorIndex,
}

impl EvidenceSlot {
    /// `height || round || kind || validator`, big-endian, so byte order is height order.
    pub fn key(&self) -> [u8; 15] {
        let mut k = [0u8; 15];
        k[..8].copy_from_slice(&self.height.to_be_bytes());
        k[8..12].copy_from_slice(&self.round.to_be_bytes());
        k[12] = self.kind.code();
        k[13..].copy_from_slice(&self.validator.to_be_bytes());
        k
    }
}

impl Equivocation {
    /// The validator the evidence accuses.
    pub fn offender(&self) -> ValidatorIndex {
        match self {
            Equivocation::Vote { first, .. } => first.vote.validator,
            Equivocation::Proposal { first, .. } => first.proposal.proposer,
        }
    }

    /// Where the first message says the offence happened (after [`Self::verify`], both agree).
    pub fn slot(&self) -> EvidenceSlot {
        match self {
            Equivocation::Vote { first, .. } => EvidenceSlot {
                height: first.vote.height,
                round: first.vote.round,
                kind: match first.vote.kind {
                    VoteKind::Prevote => EvidenceKind::Prevote,
                    VoteKind::Precommit => EvidenceKind::Precommit,
                },
                validator: first.vote.validator,
            },
            Equivocation::Proposal { first, .. } => EvidenceSlot {
                height: first.proposal.height,
                round: first.proposal.round,
                kind: EvidenceKind::Proposal,
                validator: first.proposal.proposer,
            },
        }
    }

    /// The values the two messages name (`None` is a vote for nil).
    pub fn values(&self) -> (Option<ValueId>, Option<ValueId>) {
        match self {
            Equivocation::Vote { first, second } => (first.vote.value, second.vote.value),
            Equivocation::Proposal { first, second } => {
                (Some(first.proposal.value), Some(second.proposal.value))
            }
        }
    }

    /// Checks that both messages are signed by one validator of `validators` on this chain,
    /// for one height, round and step, and really conflict, so a regulator can check the
    /// evidence with only the genesis validator set.
    pub fn verify(&self, chain_id: &[u8; 32], validators: &ValidatorSet) -> Result<(), Error> {
        let conflicting = match self {
            Equivocation::Vote { first, second } => {
                let (a, b) = (first.vote, second.vote);
                a.validator == b.validator
                    && a.kind == b.kind
                    && a.height == b.height
                    && a.round == b.round
                    && a.value != b.value
            }
            Equivocation::Proposal { first, second } => {
                let (a, b) = (first.proposal, second.proposal);
                a.proposer == b.proposer && a.height == b.height && a.round == b.round && a != b
            }
        };
        if !conflicting {
            return Err(Error::NotEquivocation);
        }
        match self {
            Equivocation::Vote { first, second } => {
                first.verify(chain_id, validators)?;
                second.verify(chain_id, validators)
            }
            Equivocation::Proposal { first, second } => {
                first.verify(chain_id, validators)?;
                second.verify(chain_id, validators)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proposal::Proposal;
    use crate::types::{Validator, Vote};
    use ed25519_dalek::SigningKey;

    const CHAIN: [u8; 32] = [7; 32];

    fn setup() -> (Vec<SigningKey>, ValidatorSet) {
        let keys: Vec<_> = (1..=4u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect();
        let set = keys
            .iter()
            .map(|k| Validator {
                public_key: k.verifying_key().to_bytes(),
                voting_power: 1,
            })
            .collect();
        (keys, ValidatorSet::new(set).expect("a valid set"))
    }

    fn prevote(key: &SigningKey, who: u16, height: Height, value: u8) -> SignedVote {
        Vote {
            kind: VoteKind::Prevote,
            height,
            round: 2,
            value: Some(ValueId([value; 32])),
            validator: who,
        }
        .sign(&CHAIN, key)
    }

    #[test]
    fn two_signed_conflicting_votes_verify_and_name_their_slot() {
        let (keys, set) = setup();
        let ev = Equivocation::Vote {
            first: prevote(&keys[3], 3, 5, 1),
            second: prevote(&keys[3], 3, 5, 2),
        };
        assert_eq!(ev.verify(&CHAIN, &set), Ok(()));
        let slot = ev.slot();
        assert_eq!(
            (slot.height, slot.round, slot.kind, slot.validator),
            (5, 2, EvidenceKind::Prevote, 3)
        );
        assert_eq!(
            ev.values(),
            (Some(ValueId([1; 32])), Some(ValueId([2; 32])))
        );
        assert!(slot.key() < EvidenceSlot { height: 6, ..slot }.key());
    }

    #[test]
    fn forged_or_mismatched_pairs_are_refused() {
        let (keys, set) = setup();
        let good = prevote(&keys[3], 3, 5, 1);
        let cases = [
            // The second vote claims validator 3 but is signed by validator 0.
            (prevote(&keys[0], 3, 5, 2), Error::BadSignature { index: 3 }),
            // Another chain's signature.
            (
                Vote {
                    value: Some(ValueId([2; 32])),
                    ..good.vote
                }
                .sign(&[8; 32], &keys[3]),
                Error::BadSignature { index: 3 },
            ),
            // Same value: no conflict.
            (prevote(&keys[3], 3, 5, 1), Error::NotEquivocation),
            // Another height.
            (prevote(&keys[3], 3, 6, 2), Error::NotEquivocation),
            // Another validator, each signing its own.
            (prevote(&keys[2], 2, 5, 2), Error::NotEquivocation),
            // A precommit against a prevote.
            (
                Vote {
                    kind: VoteKind::Precommit,
                    value: Some(ValueId([2; 32])),
                    ..good.vote
                }
                .sign(&CHAIN, &keys[3]),
                Error::NotEquivocation,
            ),
        ];
        for (second, want) in cases {
            let ev = Equivocation::Vote {
                first: good,
                second,
            };
            assert_eq!(ev.verify(&CHAIN, &set), Err(want.clone()), "{ev:?}");
        }
        // A validator the set does not hold.
        let stranger = SigningKey::from_bytes(&[9; 32]);
        let ev = Equivocation::Vote {
            first: prevote(&stranger, 7, 5, 1),
            second: prevote(&stranger, 7, 5, 2),
        };
        assert_eq!(
            ev.verify(&CHAIN, &set),
            Err(Error::UnknownValidator { index: 7 })
        );
        // A tampered signature on an otherwise real pair.
        let mut second = prevote(&keys[3], 3, 5, 2);
        second.signature[10] ^= 1;
        let ev = Equivocation::Vote {
            first: good,
            second,
        };
        assert_eq!(
            ev.verify(&CHAIN, &set),
            Err(Error::BadSignature { index: 3 })
        );
    }

    #[test]
    fn two_proposals_for_one_round_are_evidence_one_resent_is_not() {
        let (keys, set) = setup();
        let header = |value: u8| {
            let p = Proposal {
                height: 4,
                round: 0,
                value: ValueId([value; 32]),
                valid_round: None,
                proposer: 1,
            };
            SignedProposalHeader {
                proposal: p,
                signature: ed25519_dalek::Signer::sign(&keys[1], &p.sign_bytes(&CHAIN)).to_bytes(),
            }
        };
        let ev = Equivocation::Proposal {
            first: header(1),
            second: header(2),
        };
        assert_eq!(ev.verify(&CHAIN, &set), Ok(()));
        assert_eq!(ev.slot().kind, EvidenceKind::Proposal);
        let same = Equivocation::Proposal {
            first: header(1),
            second: header(1),
        };
        assert_eq!(same.verify(&CHAIN, &set), Err(Error::NotEquivocation));
    }
}
