//! Governance: the consortium changes its members, their voting power, its limits and its policy
//! by a vote recorded on the ledger.
//!
//! A member proposes a [`Change`]; members approve it. When the approvers hold more than two
//! thirds of the voting power of the set in force (and, where the policy asks for it, a regulator
//! is among them), the change is adopted in that block, at height `H`, and the new
//! [`MemberSet`] takes effect at `H + ACTIVATION_OFFSET`: every node switches at the same height,
//! and the header of `H + 1` already names the new set ([`crate::block::BlockHeader`]'s
//! `next_members_hash`), so a light client learns of the change from a certified header before
//! it must check a certificate signed by the new set.
//!
//! A client follows the changes from genesis with [`Sets`]: each change is proven by the
//! certified header of the height before it takes effect, which names the new set, and every
//! header it checks must name the set it knows for the next height, so a node that withholds a
//! change is caught rather than followed ([`HeaderTrust`]).
//!
//! One change is in flight at a time: while an adopted change waits for its height, no proposal
//! is taken, and adopting a change closes every other open proposal (it was weighed against a
//! set that is no longer the one it would change). Proposals expire after the policy's
//! `proposal_ttl_ms` of block time.

mod sets;

pub use sets::{HeaderTrust, SET_CHANGES_MAX, SetChange, SetChanges, Sets};

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::crypto::{self, ProposalId, PublicKey, Signature, X25519Public};
use crate::error::Error;
use crate::identity::{Consortium, Limits, Member, MemberSet, Policy, Role};
use crate::state::{StateExt, StateReader, keys};

/// How many heights after its adoption a change takes effect.
pub const ACTIVATION_OFFSET: u64 = 2;
/// Most proposals open at once, consortium-wide.
pub const OPEN_PROPOSALS_MAX: u32 = 32;
/// Most proposals one member may have open at once, so no member fills the others' room.
pub const OPEN_PROPOSALS_PER_MEMBER_MAX: u32 = 4;
/// Longest institution name, in bytes.
pub const NAME_BYTES_MAX: usize = 80;
/// Longest node address, in bytes.
pub const ADDR_BYTES_MAX: usize = 128;
/// Largest encoded membership record read from the state.
pub const MEMBERSHIP_BYTES_MAX: usize = 2 * 1024 * 1024;

/// What a proposal would change.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A new institution joins, with its proof that it holds its signing key and chose its
    /// X25519 key (a signature by the new key, as [`crate::tx::prove_keys`] makes).
    AddMember { member: Member, proof: Signature },
    /// An institution leaves; its key is never a member's, a patient's or a clinician's again.
    RemoveMember { member: PublicKey },
    /// A member's signing and X25519 keys are replaced (a server was compromised, or keys are
    /// renewed), with the new key's proof of both. `member` is its identity, which its records
    /// keep naming; the key it signed with until now signs nothing from the activation on.
    RotateMemberKey {
        member: PublicKey,
        new_key: PublicKey,
        new_x25519: X25519Public,
        proof: Signature,
    },
    /// A member's voting power changes; zero makes it a member that does not validate.
    SetVotingPower {
        member: PublicKey,
        voting_power: u64,
    },
    /// New size limits for transactions and blocks.
    SetLimits { limits: Limits },
    /// New consensus timeouts (how long a round waits for a proposal and for votes, and how
    /// much longer each later round waits): a liveness parameter every node takes up at the
    /// same height.
    SetTimeouts { timeouts: cradle_consensus::Config },
    /// A new consent and access policy.
    SetPolicy { policy: Policy },
}

impl Change {
    pub fn kind(&self) -> &'static str {
        match self {
            Change::AddMember { .. } => "add_member",
            Change::RemoveMember { .. } => "remove_member",
            Change::RotateMemberKey { .. } => "rotate_member_key",
            Change::SetVotingPower { .. } => "set_voting_power",
            Change::SetLimits { .. } => "set_limits",
            Change::SetTimeouts { .. } => "set_timeouts",
            Change::SetPolicy { .. } => "set_policy",
        }
    }

    /// Whether the change is to who the members are or how much they weigh: what a policy
    /// can put under a regulator's approval.
    pub fn is_membership(&self) -> bool {
        matches!(
            self,
            Change::AddMember { .. }
                | Change::RemoveMember { .. }
                | Change::RotateMemberKey { .. }
                | Change::SetVotingPower { .. }
        )
    }

    /// Checks the signatures the change carries (a new member's proof of its keys).
    pub fn verify(&self, chain_id: &crypto::Hash) -> Result<(), Error> {
        match self {
            Change::AddMember { member, proof } => {
                crate::tx::verify_key_proof(&member.public_key, &member.x25519, proof, chain_id)
            }
            Change::RotateMemberKey {
                new_key,
                new_x25519,
                proof,
                ..
            } => crate::tx::verify_key_proof(new_key, new_x25519, proof, chain_id),
            _ => Ok(()),
        }
    }

    /// The set after the change, one epoch on. Checks what the change itself must satisfy;
    /// [`Consortium::with_set`] then checks the whole set.
    pub fn apply(&self, set: &MemberSet) -> Result<MemberSet, Error> {
        let mut next = set.clone();
        next.epoch = set
            .epoch
            .checked_add(1)
            .ok_or(Error::Corrupt("membership epoch overflow".into()))?;
        let index = |key: &PublicKey| {
            set.members
                .iter()
                .position(|m| &m.public_key == key)
                .ok_or(Error::UnknownMember(*key))
        };
        match self {
            Change::AddMember { member, .. } => {
                check_new_member(member)?;
                if set.members.iter().any(|m| m.name == member.name) {
                    return Err(Error::InvalidMember("another member has this name"));
                }
                next.members.push(member.clone());
            }
            Change::RemoveMember { member } => {
                next.members.remove(index(member)?);
            }
            Change::RotateMemberKey {
                member,
                new_key,
                new_x25519,
                ..
            } => {
                let m = &mut next.members[index(member)?];
                if m.holds(new_key) {
                    return Err(Error::InvalidKeyChange(
                        "the new key is one the member has or had",
                    ));
                }
                if &m.x25519 == new_x25519 {
                    return Err(Error::InvalidKeyChange(
                        "the new X25519 key is the member's current one",
                    ));
                }
                m.signing_key = Some(*new_key);
                m.x25519 = *new_x25519;
            }
            Change::SetVotingPower {
                member,
                voting_power,
            } => {
                let i = index(member)?;
                if next.members[i].voting_power == *voting_power {
                    return Err(Error::InvalidMember("the member already has this power"));
                }
                next.members[i].voting_power = *voting_power;
            }
            Change::SetLimits { limits } => next.limits = limits.clone(),
            Change::SetTimeouts { timeouts } => {
                timeouts.validate().map_err(Error::Consensus)?;
                if set.timeouts == Some(*timeouts) {
                    return Err(Error::Unchanged(
                        "the consortium already runs with these timeouts",
                    ));
                }
                next.timeouts = Some(*timeouts);
            }
            Change::SetPolicy { policy } => next.policy = policy.clone(),
        }
        if !next.members.iter().any(|m| m.voting_power > 0) {
            return Err(Error::NoValidatorLeft);
        }
        Ok(next)
    }
}

/// A new member's name and addresses are what genesis would accept: a plain name, and
/// addresses of bounded length in the shapes nodes dial.
fn check_new_member(m: &Member) -> Result<(), Error> {
    let name = &m.name;
    if name.is_empty() || name.len() > NAME_BYTES_MAX {
        return Err(Error::InvalidMember("a name is 1 to 80 bytes"));
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(Error::InvalidMember(
            "a name has no control characters and no outer spaces",
        ));
    }
    if m.role == Role::Regulator && m.voting_power > 0 {
        return Err(Error::RegulatorValidates(m.public_key));
    }
    if m.voting_power > 0 && m.p2p_addr.is_none() {
        return Err(Error::InvalidMember("a validator needs a p2p address"));
    }
    let plain = |a: &str| {
        !a.is_empty()
            && a.len() <= ADDR_BYTES_MAX
            && a.is_ascii()
            && !a.contains(char::is_whitespace)
    };
    if let Some(a) = &m.p2p_addr
        && !(plain(a) && a.starts_with('/') && a.contains("/tcp/"))
    {
        return Err(Error::InvalidMember(
            "a p2p address is a multiaddr like /ip4/10.0.0.5/tcp/26600",
        ));
    }
    if let Some(a) = &m.api_addr
        && !(plain(a) && a.contains(':'))
    {
        return Err(Error::InvalidMember(
            "an API address is host:port, like 10.0.0.5:8600",
        ));
    }
    Ok(())
}

/// A member proposes a change; its proposal counts as its own approval.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ProposeChange {
    pub change: Change,
}

/// A member approves an open proposal.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ApproveChange {
    pub proposal: ProposalId,
}

/// A proposal's id: SHA-256 over a tag, the proposer and the nonce of its transaction, so the
/// proposer knows it before the proposal is committed.
pub fn proposal_id(proposer: &PublicKey, nonce: u64) -> ProposalId {
    ProposalId(crypto::sha256_parts(&[
        b"cradle.proposal-id.v1\0",
        &proposer.0,
        &nonce.to_le_bytes(),
    ]))
}

/// Where a proposal stands once adopted.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Adoption {
    Open,
    /// Adopted at `height`, in force from `activation`.
    Adopted {
        height: u64,
        activation: u64,
    },
}

/// A proposal as the state keeps it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ProposalRecord {
    pub proposer: PublicKey,
    pub change: Change,
    /// The epoch of the set the proposal was weighed against.
    pub epoch: u64,
    pub proposed_height: u64,
    pub expires_at_ms: u64,
    /// The members that approved it, in order, the proposer first.
    pub approvals: Vec<PublicKey>,
    pub adoption: Adoption,
}

impl ProposalRecord {
    /// Open, adopted, expired, or superseded (a later set was adopted), as of a block at
    /// `now_ms` whose newest adopted set has epoch `epoch`.
    pub fn status(&self, now_ms: u64, epoch: u64) -> &'static str {
        match self.adoption {
            Adoption::Adopted { .. } => "adopted",
            Adoption::Open if self.epoch != epoch => "superseded",
            Adoption::Open if now_ms >= self.expires_at_ms => "expired",
            Adoption::Open => "open",
        }
    }
}

/// The member set in force since a height, and an adopted one waiting for its height.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Membership {
    pub since: u64,
    pub current: MemberSet,
    pub scheduled: Option<(u64, MemberSet)>,
}

impl Membership {
    /// The set in force at `height`, if this record decides it (it does for every height
    /// from `since` on).
    pub fn at(&self, height: u64) -> &MemberSet {
        match &self.scheduled {
            Some((activation, set)) if height >= *activation => set,
            _ => &self.current,
        }
    }

    /// The newest adopted set, in force or waiting.
    pub fn newest(&self) -> &MemberSet {
        self.scheduled.as_ref().map_or(&self.current, |(_, s)| s)
    }
}

/// The membership record, or `None` while the genesis set has never changed.
pub fn membership<S: StateReader + ?Sized>(state: &S) -> Result<Option<Membership>, Error> {
    match state.get(&keys::membership())? {
        None => Ok(None),
        Some(bytes) => crate::codec::decode(&bytes, MEMBERSHIP_BYTES_MAX)
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("membership record: {e}"))),
    }
}

/// The consortium in force at `height`, from the state after block `height - 1` and the
/// genesis consortium.
pub fn in_force<S: StateReader + ?Sized>(
    genesis: &Consortium,
    state: &S,
    height: u64,
) -> Result<Consortium, Error> {
    match membership(state)? {
        None => Ok(genesis.clone()),
        Some(m) => genesis.with_set(m.at(height).clone()),
    }
}

/// The hash of the set in force at `height + 1`, as the header of `height` names it, from the
/// state after block `height` and the consortium in force at `height`.
pub fn next_members_hash<S: StateReader + ?Sized>(
    state: &S,
    consortium: &Consortium,
    height: u64,
) -> Result<crypto::Hash, Error> {
    Ok(match membership(state)? {
        Some(Membership {
            scheduled: Some((activation, set)),
            ..
        }) if activation <= height.saturating_add(1) => set.hash(),
        _ => consortium.members_hash(),
    })
}

/// Every adopted set since genesis with its activation height, in epoch order (genesis, epoch
/// 0, is not among them). At most `limit`.
pub fn history<S: StateReader + ?Sized>(
    state: &S,
    limit: usize,
) -> Result<Vec<(u64, MemberSet)>, Error> {
    state
        .scan_prefix(&keys::member_sets(), limit)?
        .into_iter()
        .map(|(_, v)| {
            crate::codec::decode(&v, MEMBERSHIP_BYTES_MAX)
                .map_err(|e| Error::Corrupt(format!("member set record: {e}")))
        })
        .collect()
}

/// A proposal by id.
pub fn proposal<S: StateReader + ?Sized>(
    state: &S,
    id: &ProposalId,
) -> Result<Option<ProposalRecord>, Error> {
    state.record(&keys::proposal(id))
}
