//! Votes, validator sets and commit certificates, with their canonical signing bytes.
//!
//! Every signature is ed25519 over `tag || chain_id || borsh(payload)`, with one NUL-terminated
//! tag per kind of message so that no signature can be replayed as another kind, nor on another
//! chain. These bytes are a contract shared with `cradle-ledger`, which checks the commit
//! certificate of every block: change them only with a new tag version.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// A consensus height: the index of the block being decided.
pub type Height = u64;
/// A round within a height.
pub type Round = u32;
/// A validator's position in the [`ValidatorSet`], as ordered by genesis.
pub type ValidatorIndex = u16;

/// Signing tag of a prevote.
pub const TAG_PREVOTE: &[u8] = b"cradle.consensus.prevote.v1\0";
/// Signing tag of a precommit; commit certificates are made of precommits.
pub const TAG_PRECOMMIT: &[u8] = b"cradle.consensus.precommit.v1\0";
/// Signing tag of a proposal.
pub const TAG_PROPOSAL: &[u8] = b"cradle.consensus.proposal.v1\0";

/// Most validators a set may hold; bounds every decode of indices and certificates.
pub const VALIDATORS_MAX: usize = 1024;

/// Errors of the consensus crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("validator set is empty")]
    EmptyValidatorSet,
    #[error("validator set has {count} validators, more than {max}")]
    TooManyValidators { count: usize, max: usize },
    #[error("validator {index} has zero voting power")]
    ZeroVotingPower { index: usize },
    #[error("validator {index} repeats the public key of validator {first}")]
    DuplicateValidator { index: usize, first: usize },
    #[error("validator {index} has an invalid ed25519 public key")]
    InvalidValidatorKey { index: usize },
    #[error("total voting power overflows")]
    VotingPowerOverflow,
    #[error("unknown validator index {index}")]
    UnknownValidator { index: ValidatorIndex },
    #[error("bad signature from validator {index}")]
    BadSignature { index: ValidatorIndex },
    #[error("validator {index} signs the certificate twice")]
    DuplicateSignature { index: ValidatorIndex },
    #[error("certificate has {power} of {total} voting power, needs more than two thirds")]
    InsufficientPower { power: u64, total: u64 },
    #[error("certificate is for height {got}, expected {want}")]
    WrongHeight { got: Height, want: Height },
    #[error("certificate is for value {got:?}, expected {want:?}")]
    WrongValue { got: ValueId, want: ValueId },
    #[error("proposal for round {round} names valid round {valid_round}, not an earlier one")]
    InvalidValidRound { round: Round, valid_round: Round },
    #[error("proposal header names value {header:?} but carries {body:?}")]
    ValueMismatch { header: ValueId, body: ValueId },
    #[error("validator {got} is not the proposer of height {height} round {round}")]
    WrongProposer {
        height: Height,
        round: Round,
        got: ValidatorIndex,
    },
    #[error("the two messages do not conflict")]
    NotEquivocation,
    #[error("{field} is {value}, must be in {min}..={max}")]
    InvalidConfig {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("timeout_delta_ms {delta_ms} exceeds timeout_propose_ms {propose_ms}")]
    TimeoutDeltaExceedsPropose { delta_ms: u64, propose_ms: u64 },
    #[error("a validator set for height {height} comes too late: the core is at {current}")]
    SetChangeTooLate { height: Height, current: Height },
    #[error("persisted state is at height {persisted}, ahead of the starting height {start}")]
    PersistedStateAhead { persisted: Height, start: Height },
    #[error("persisted state holds a vote it did not sign: {reason}")]
    CorruptPersistedState { reason: &'static str },
}

/// The identifier of a proposed value: for Cradle, the block hash.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Default,
)]
pub struct ValueId(pub [u8; 32]);

impl std::fmt::Debug for ValueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// One validator: its ed25519 public key and voting power.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Validator {
    pub public_key: [u8; 32],
    pub voting_power: u64,
}

/// The validators of a consortium, in genesis order, with their keys parsed once.
#[derive(Clone, Debug)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    keys: Vec<VerifyingKey>,
    total_power: u64,
}

impl PartialEq for ValidatorSet {
    fn eq(&self, other: &Self) -> bool {
        self.validators == other.validators
    }
}
impl Eq for ValidatorSet {}

impl ValidatorSet {
    /// Checks and builds a set: at least one validator, no zero power, no repeated key, every
    /// key a valid ed25519 point, and a total power that fits in a `u64`.
    pub fn new(validators: Vec<Validator>) -> Result<Self, Error> {
        if validators.is_empty() {
            return Err(Error::EmptyValidatorSet);
        }
        if validators.len() > VALIDATORS_MAX {
            return Err(Error::TooManyValidators {
                count: validators.len(),
                max: VALIDATORS_MAX,
            });
        }
        let mut keys = Vec::with_capacity(validators.len());
        let mut total_power: u64 = 0;
        for (index, v) in validators.iter().enumerate() {
            if v.voting_power == 0 {
                return Err(Error::ZeroVotingPower { index });
            }
            if let Some(first) = validators[..index]
                .iter()
                .position(|w| w.public_key == v.public_key)
            {
                return Err(Error::DuplicateValidator { index, first });
            }
            let key = VerifyingKey::from_bytes(&v.public_key)
                .map_err(|_| Error::InvalidValidatorKey { index })?;
            keys.push(key);
            total_power = total_power
                .checked_add(v.voting_power)
                .ok_or(Error::VotingPowerOverflow)?;
        }
        Ok(Self {
            validators,
            keys,
            total_power,
        })
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn get(&self, index: ValidatorIndex) -> Option<&Validator> {
        self.validators.get(usize::from(index))
    }

    pub fn verifying_key(&self, index: ValidatorIndex) -> Option<&VerifyingKey> {
        self.keys.get(usize::from(index))
    }

    pub fn index_of(&self, public_key: &[u8; 32]) -> Option<ValidatorIndex> {
        self.validators
            .iter()
            .position(|v| &v.public_key == public_key)
            .and_then(|i| ValidatorIndex::try_from(i).ok())
    }

    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// True when `power` is more than two thirds of the total (a quorum, 2f+1).
    pub fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power) * 2
    }

    /// True when `power` is more than one third of the total (f+1: at least one honest).
    pub fn is_one_third(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power)
    }
}

/// The two kinds of vote.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize,
)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum VoteKind {
    Prevote = 1,
    Precommit = 2,
}

impl VoteKind {
    pub fn tag(self) -> &'static [u8] {
        match self {
            VoteKind::Prevote => TAG_PREVOTE,
            VoteKind::Precommit => TAG_PRECOMMIT,
        }
    }
}

/// A vote for a value (or for nil) at a height and round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    pub kind: VoteKind,
    pub height: Height,
    pub round: Round,
    pub value: Option<ValueId>,
    pub validator: ValidatorIndex,
}

impl Vote {
    /// `tag || chain_id || borsh(vote)`: the bytes a validator signs.
    pub fn sign_bytes(&self, chain_id: &[u8; 32]) -> Vec<u8> {
        let tag = self.kind.tag();
        let mut out = Vec::with_capacity(tag.len() + 32 + 48);
        out.extend_from_slice(tag);
        out.extend_from_slice(chain_id);
        // Borsh encoding of plain integers and arrays cannot fail on a Vec writer.
        borsh::to_writer(&mut out, self).unwrap_or_default();
        out
    }

    pub fn sign(self, chain_id: &[u8; 32], key: &SigningKey) -> SignedVote {
        let signature = key.sign(&self.sign_bytes(chain_id)).to_bytes();
        SignedVote {
            vote: self,
            signature,
        }
    }
}

/// A vote with its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedVote {
    pub vote: Vote,
    pub signature: [u8; 64],
}

impl SignedVote {
    /// Checks that the signer is a validator and that the signature is theirs, on this chain.
    pub fn verify(&self, chain_id: &[u8; 32], validators: &ValidatorSet) -> Result<(), Error> {
        let index = self.vote.validator;
        let key = validators
            .verifying_key(index)
            .ok_or(Error::UnknownValidator { index })?;
        key.verify_strict(
            &self.vote.sign_bytes(chain_id),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| Error::BadSignature { index })
    }
}

/// One precommit signature inside a [`CommitCertificate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CommitSig {
    pub validator: ValidatorIndex,
    pub signature: [u8; 64],
}

/// Proof that a value was decided at a height: precommits for it, in one round, from validators
/// holding more than two thirds of the voting power.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CommitCertificate {
    pub height: Height,
    pub round: Round,
    pub value: ValueId,
    pub signatures: Vec<CommitSig>,
}

impl CommitCertificate {
    /// Builds a certificate from precommits, keeping one per validator, in validator order.
    pub fn from_precommits<'a>(
        height: Height,
        round: Round,
        value: ValueId,
        precommits: impl IntoIterator<Item = &'a SignedVote>,
    ) -> Self {
        let mut signatures: Vec<CommitSig> = precommits
            .into_iter()
            .filter(|v| {
                v.vote.kind == VoteKind::Precommit
                    && v.vote.height == height
                    && v.vote.round == round
                    && v.vote.value == Some(value)
            })
            .map(|v| CommitSig {
                validator: v.vote.validator,
                signature: v.signature,
            })
            .collect();
        signatures.sort_by_key(|s| s.validator);
        signatures.dedup_by_key(|s| s.validator);
        Self {
            height,
            round,
            value,
            signatures,
        }
    }

    /// Checks membership, uniqueness, the two-thirds quorum and every signature (batched).
    pub fn verify(&self, chain_id: &[u8; 32], validators: &ValidatorSet) -> Result<(), Error> {
        if self.signatures.len() > validators.len() {
            return Err(Error::InsufficientPower {
                power: 0,
                total: validators.total_power(),
            });
        }
        let mut seen = vec![false; validators.len()];
        let mut power: u64 = 0;
        let mut messages = Vec::with_capacity(self.signatures.len());
        let mut signatures = Vec::with_capacity(self.signatures.len());
        let mut keys = Vec::with_capacity(self.signatures.len());
        for sig in &self.signatures {
            let index = sig.validator;
            let validator = validators
                .get(index)
                .ok_or(Error::UnknownValidator { index })?;
            let slot = &mut seen[usize::from(index)];
            if *slot {
                return Err(Error::DuplicateSignature { index });
            }
            *slot = true;
            power = power.saturating_add(validator.voting_power);
            let vote = Vote {
                kind: VoteKind::Precommit,
                height: self.height,
                round: self.round,
                value: Some(self.value),
                validator: index,
            };
            messages.push(vote.sign_bytes(chain_id));
            signatures.push(Signature::from_bytes(&sig.signature));
            keys.push(
                *validators
                    .verifying_key(index)
                    .ok_or(Error::UnknownValidator { index })?,
            );
        }
        if !validators.is_quorum(power) {
            return Err(Error::InsufficientPower {
                power,
                total: validators.total_power(),
            });
        }
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        if ed25519_dalek::verify_batch(&refs, &signatures, &keys).is_ok() {
            return Ok(());
        }
        // The batch failed: find the culprit so the error names it.
        for (i, sig) in self.signatures.iter().enumerate() {
            if keys[i].verify_strict(refs[i], &signatures[i]).is_err() {
                return Err(Error::BadSignature {
                    index: sig.validator,
                });
            }
        }
        Err(Error::BadSignature {
            index: self.signatures[0].validator,
        })
    }

    /// Verifies the certificate and that it decides `value` at `height`.
    pub fn verify_for(
        &self,
        chain_id: &[u8; 32],
        validators: &ValidatorSet,
        height: Height,
        value: ValueId,
    ) -> Result<(), Error> {
        if self.height != height {
            return Err(Error::WrongHeight {
                got: self.height,
                want: height,
            });
        }
        if self.value != value {
            return Err(Error::WrongValue {
                got: self.value,
                want: value,
            });
        }
        self.verify(chain_id, validators)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u8) -> Vec<SigningKey> {
        (0..n)
            .map(|i| SigningKey::from_bytes(&[i + 1; 32]))
            .collect()
    }

    fn set(keys: &[SigningKey], powers: &[u64]) -> ValidatorSet {
        let vs = keys
            .iter()
            .zip(powers)
            .map(|(k, p)| Validator {
                public_key: k.verifying_key().to_bytes(),
                voting_power: *p,
            })
            .collect();
        ValidatorSet::new(vs).unwrap()
    }

    fn precommits(keys: &[SigningKey], who: &[u16], chain: &[u8; 32]) -> Vec<SignedVote> {
        who.iter()
            .map(|&i| {
                Vote {
                    kind: VoteKind::Precommit,
                    height: 7,
                    round: 1,
                    value: Some(ValueId([9; 32])),
                    validator: i,
                }
                .sign(chain, &keys[usize::from(i)])
            })
            .collect()
    }

    #[test]
    fn certificate_with_quorum_verifies_and_without_is_rejected() {
        let ks = keys(4);
        let vs = set(&ks, &[1, 1, 1, 1]);
        let chain = [3; 32];
        let votes = precommits(&ks, &[0, 1, 2], &chain);
        let cert = CommitCertificate::from_precommits(7, 1, ValueId([9; 32]), &votes);
        cert.verify_for(&chain, &vs, 7, ValueId([9; 32])).unwrap();
        assert_eq!(
            cert.verify(&[4; 32], &vs),
            Err(Error::BadSignature { index: 0 }),
            "a certificate must not verify on another chain"
        );
        let short = CommitCertificate::from_precommits(7, 1, ValueId([9; 32]), &votes[..2]);
        assert_eq!(
            short.verify(&chain, &vs),
            Err(Error::InsufficientPower { power: 2, total: 4 })
        );
    }

    #[test]
    fn certificate_counts_each_validator_once() {
        let ks = keys(4);
        let vs = set(&ks, &[1, 1, 1, 1]);
        let chain = [3; 32];
        let votes = precommits(&ks, &[0, 1], &chain);
        let mut cert = CommitCertificate::from_precommits(7, 1, ValueId([9; 32]), &votes);
        cert.signatures.push(cert.signatures[0]);
        assert_eq!(
            cert.verify(&chain, &vs),
            Err(Error::DuplicateSignature { index: 0 })
        );
    }

    #[test]
    fn weighted_quorum_needs_more_than_two_thirds_of_power() {
        let ks = keys(3);
        let vs = set(&ks, &[5, 1, 1]);
        let chain = [1; 32];
        let cert = CommitCertificate::from_precommits(
            7,
            1,
            ValueId([9; 32]),
            &precommits(&ks, &[0], &chain),
        );
        cert.verify(&chain, &vs).unwrap();
        let cert = CommitCertificate::from_precommits(
            7,
            1,
            ValueId([9; 32]),
            &precommits(&ks, &[1, 2], &chain),
        );
        assert!(cert.verify(&chain, &vs).is_err());
    }

    #[test]
    fn validator_set_rejects_duplicates_and_zero_power() {
        let ks = keys(2);
        let pk = ks[0].verifying_key().to_bytes();
        let dup = vec![
            Validator {
                public_key: pk,
                voting_power: 1,
            },
            Validator {
                public_key: pk,
                voting_power: 1,
            },
        ];
        assert_eq!(
            ValidatorSet::new(dup),
            Err(Error::DuplicateValidator { index: 1, first: 0 })
        );
        let zero = vec![Validator {
            public_key: pk,
            voting_power: 0,
        }];
        assert_eq!(
            ValidatorSet::new(zero),
            Err(Error::ZeroVotingPower { index: 0 })
        );
        assert_eq!(ValidatorSet::new(vec![]), Err(Error::EmptyValidatorSet));
    }
}
