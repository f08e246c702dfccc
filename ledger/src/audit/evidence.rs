//! Equivocation evidence as a node serves it to regulators, and its check from genesis alone.
//!
//! Evidence is not on the ledger: each node keeps what its own consensus core saw. An
//! [`EvidenceAnswer`] is one page of that store, and each item proves itself (both messages
//! carry the offender's signature over the chain id), so [`verify_evidence`] needs only the
//! genesis validator set. What a node cannot prove is that it shows everything it holds; asking
//! several nodes covers that, since every honest validator that saw both messages keeps them.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use super::AuditError;
use crate::codec::{self, BoundedVec};
use crate::crypto::{Digest32, PublicKey};
use crate::error::Error;
use crate::identity::Consortium;

pub use cradle_consensus::{Equivocation, EvidenceKind, EvidenceSlot};

/// Most items one evidence answer carries.
pub const EVIDENCE_PAGE_MAX: usize = 1_000;
/// Largest encoded evidence answer a client decodes: an item is at most about 260 bytes.
pub const EVIDENCE_ANSWER_BYTES_MAX: usize = 1024 * 1024;

/// One page of a node's evidence store, in (height, round, kind, validator) order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EvidenceAnswer {
    /// How many items the node holds in all.
    pub total: u64,
    /// The position of the first item of this page among them.
    pub offset: u64,
    pub items: BoundedVec<Equivocation, EVIDENCE_PAGE_MAX>,
}

impl EvidenceAnswer {
    /// `VERSION || borsh(self)`.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Bounded decode of an answer from a node.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        codec::decode(bytes, EVIDENCE_ANSWER_BYTES_MAX)
    }
}

/// One piece of evidence as a regulator reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvidenceItem {
    pub height: u64,
    pub round: u32,
    /// `proposal`, `prevote` or `precommit`.
    pub kind: &'static str,
    /// The offender's index in the genesis validator set.
    pub validator: u16,
    /// Its public key and member name, when genesis has a validator at that index.
    pub validator_key: Option<PublicKey>,
    pub member: Option<String>,
    /// The two values it signed for (`None` is a vote for nil).
    pub first_value: Option<Digest32>,
    pub second_value: Option<Digest32>,
}

/// Names the parts of `evidence` against the consortium, checking nothing.
pub fn describe(consortium: &Consortium, evidence: &Equivocation) -> EvidenceItem {
    let slot = evidence.slot();
    let validator_key = consortium
        .validators()
        .get(slot.validator)
        .map(|v| PublicKey(v.public_key));
    let member = validator_key
        .and_then(|k| consortium.signer(&k))
        .map(|m| m.name.clone());
    let (first, second) = evidence.values();
    EvidenceItem {
        height: slot.height,
        round: slot.round,
        kind: slot.kind.as_str(),
        validator: slot.validator,
        validator_key,
        member,
        first_value: first.map(|v| Digest32(v.0)),
        second_value: second.map(|v| Digest32(v.0)),
    }
}

/// Checks every item of `answer` from genesis (and the set changes followed from it): both
/// messages signed on this chain by the same validator of the set in force at their height, for
/// one height, round and step, naming different values. One item that fails refuses the whole
/// answer: a node that serves forged evidence is not believed.
pub fn verify_evidence(
    sets: &crate::governance::Sets,
    answer: &EvidenceAnswer,
) -> Result<Vec<EvidenceItem>, AuditError> {
    let mut out = Vec::with_capacity(answer.items.len());
    for (index, evidence) in answer.items.iter().enumerate() {
        let consortium = sets.at(evidence.slot().height);
        evidence
            .verify(&consortium.chain_id, consortium.validators())
            .map_err(|e| AuditError::BadEvidence {
                index,
                reason: e.to_string(),
            })?;
        out.push(describe(consortium, evidence));
    }
    let listed = (answer.items.len() as u64).saturating_add(answer.offset);
    if listed > answer.total {
        return Err(AuditError::Malformed(format!(
            "the page ends at item {listed} of a store said to hold {}",
            answer.total
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::identity::{Limits, Member, Policy, Role};
    use crate::{Keypair, X25519Public};
    use cradle_consensus::{SignedVote, ValueId, Vote, VoteKind};

    fn consortium(keys: &[Keypair]) -> Consortium {
        let members = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Member {
                name: format!("Hospital {i}"),
                role: Role::Hospital,
                public_key: k.public_key(),
                x25519: X25519Public([i as u8; 32]),
                voting_power: 1,
                p2p_addr: None,
                api_addr: None,
                signing_key: None,
            })
            .collect();
        Consortium::new([5; 32], 0, members, Policy::default(), Limits::default()).unwrap()
    }

    fn prevote(chain: &[u8; 32], key: &Keypair, who: u16, value: u8) -> SignedVote {
        Vote {
            kind: VoteKind::Prevote,
            height: 9,
            round: 1,
            value: Some(ValueId([value; 32])),
            validator: who,
        }
        .sign(chain, key.signing_key())
    }

    #[test]
    fn evidence_verifies_from_genesis_and_one_forged_item_refuses_the_answer() {
        let keys: Vec<_> = (1..=4u8).map(|i| Keypair::from_seed(&[i; 32])).collect();
        let c = consortium(&keys);
        let chain = c.chain_id;
        let real = Equivocation::Vote {
            first: prevote(&chain, &keys[2], 2, 1),
            second: prevote(&chain, &keys[2], 2, 2),
        };
        let answer = EvidenceAnswer {
            total: 1,
            offset: 0,
            items: BoundedVec::new(vec![real.clone()]).unwrap(),
        };
        let bytes = answer.encode();
        let items = verify_evidence(
            &crate::governance::Sets::new(c.clone()),
            &EvidenceAnswer::decode(&bytes).unwrap(),
        )
        .unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].member.as_deref(), Some("Hospital 2"));
        assert_eq!(
            (items[0].height, items[0].round, items[0].kind),
            (9, 1, "prevote")
        );
        assert_eq!(items[0].first_value, Some(Digest32([1; 32])));

        // Validator 1's name on validator 2's votes.
        let framed = Equivocation::Vote {
            first: prevote(&chain, &keys[2], 1, 1),
            second: prevote(&chain, &keys[2], 1, 2),
        };
        let answer = EvidenceAnswer {
            total: 2,
            offset: 0,
            items: BoundedVec::new(vec![real, framed]).unwrap(),
        };
        assert!(matches!(
            verify_evidence(&crate::governance::Sets::new(c.clone()), &answer),
            Err(AuditError::BadEvidence { index: 1, .. })
        ));
    }

    #[test]
    fn an_oversized_answer_is_refused_before_decoding() {
        let bytes = vec![1u8; EVIDENCE_ANSWER_BYTES_MAX + 1];
        assert!(matches!(
            EvidenceAnswer::decode(&bytes),
            Err(Error::TooLarge { .. })
        ));
    }
}
