//! Proposals, the values they carry, and the messages validators exchange.
//!
//! A proposal's signature covers its header only (height, round, value id, valid round,
//! proposer), never the value body, so evidence of a proposer's equivocation stays small and can
//! be checked without the blocks themselves ([`crate::evidence`]). Votes are in [`crate::types`].

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signature, Signer, SigningKey};

use crate::types::{
    Error, Height, Round, SignedVote, TAG_PROPOSAL, ValidatorIndex, ValidatorSet, ValueId,
};

/// What consensus orders: for Cradle, a block. The core only needs its identifier.
pub trait Value: Clone + Eq + std::fmt::Debug + BorshSerialize + BorshDeserialize {
    /// The value's identifier (the block hash); votes and certificates refer to it.
    fn id(&self) -> ValueId;
}

/// The signed part of a proposal: `⟨PROPOSAL, h, r, id(v), vr⟩` from the round's proposer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub value: ValueId,
    /// The paper's `vr`: `None` is −1 (a fresh value), `Some(vr)` re-proposes a value that had
    /// a quorum of prevotes in round `vr < round`.
    pub valid_round: Option<Round>,
    pub proposer: ValidatorIndex,
}

impl Proposal {
    /// `tag || chain_id || borsh(header)`: the bytes a proposer signs.
    pub fn sign_bytes(&self, chain_id: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(TAG_PROPOSAL.len() + 32 + 64);
        out.extend_from_slice(TAG_PROPOSAL);
        out.extend_from_slice(chain_id);
        // Borsh encoding of integers and arrays cannot fail on a Vec writer.
        borsh::to_writer(&mut out, self).unwrap_or_default();
        out
    }

    /// Signs the header and attaches the value it names.
    pub fn sign<V: Value>(
        self,
        value: V,
        chain_id: &[u8; 32],
        key: &SigningKey,
    ) -> SignedProposal<V> {
        let signature = key.sign(&self.sign_bytes(chain_id)).to_bytes();
        SignedProposal {
            proposal: self,
            signature,
            value,
        }
    }
}

/// A signed proposal header, without the value body: what equivocation evidence keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedProposalHeader {
    pub proposal: Proposal,
    pub signature: [u8; 64],
}

impl SignedProposalHeader {
    /// Checks that the proposer is a validator and the signature is theirs, on this chain.
    pub fn verify(&self, chain_id: &[u8; 32], validators: &ValidatorSet) -> Result<(), Error> {
        let index = self.proposal.proposer;
        let key = validators
            .verifying_key(index)
            .ok_or(Error::UnknownValidator { index })?;
        key.verify_strict(
            &self.proposal.sign_bytes(chain_id),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| Error::BadSignature { index })
    }
}

/// A proposal with its signature and the value it proposes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedProposal<V> {
    pub proposal: Proposal,
    pub signature: [u8; 64],
    pub value: V,
}

impl<V: Value> SignedProposal<V> {
    pub fn header(&self) -> SignedProposalHeader {
        SignedProposalHeader {
            proposal: self.proposal,
            signature: self.signature,
        }
    }

    /// Checks the signature, that the body is the value the header names, and that a
    /// re-proposal's valid round precedes the proposal's round. Proposer eligibility for the
    /// round is the core's check: it depends on the proposer schedule.
    pub fn verify(&self, chain_id: &[u8; 32], validators: &ValidatorSet) -> Result<(), Error> {
        let p = &self.proposal;
        if let Some(vr) = p.valid_round
            && vr >= p.round
        {
            return Err(Error::InvalidValidRound {
                round: p.round,
                valid_round: vr,
            });
        }
        let body = self.value.id();
        if body != p.value {
            return Err(Error::ValueMismatch {
                header: p.value,
                body,
            });
        }
        self.header().verify(chain_id, validators)
    }
}

/// A consensus message on the wire.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Message<V> {
    Proposal(SignedProposal<V>),
    Vote(SignedVote),
}

impl<V> Message<V> {
    pub fn height(&self) -> Height {
        match self {
            Message::Proposal(p) => p.proposal.height,
            Message::Vote(v) => v.vote.height,
        }
    }
}
