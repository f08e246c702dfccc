//! Who takes part: member institutions (from genesis), their roles, and the consortium's policy.
//!
//! [`Consortium`] is what the rules read of who takes part: the chain, the members in force at a
//! height, the policy and the limits. Genesis gives the first; a governance vote adopts a new
//! [`MemberSet`] that takes over two blocks later (see [`crate::governance`]), and
//! [`Consortium::with_set`] makes the consortium of the new epoch. Patients are enrolled by
//! members and clinicians registered by their institutions (see [`crate::state`] and
//! [`crate::staff`]).

use borsh::{BorshDeserialize, BorshSerialize};
use cradle_consensus::{Validator, ValidatorSet};
use serde::{Deserialize, Serialize};

use crate::crypto::{Hash, PublicKey, X25519Public};
use crate::error::Error;
use crate::staff::StaffRole;

/// What a member institution is, which decides what it may do.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum Role {
    /// A county or city hospital: enrols patients, holds archives, validates blocks.
    Hospital = 1,
    /// A maternal and child health centre, township health centre or community clinic.
    Clinic = 2,
    /// The regional health commission: audits, never holds archives or enrols patients.
    Regulator = 3,
}

impl Role {
    /// Care providers may enrol patients and hold archives; regulators only audit.
    pub fn provides_care(self) -> bool {
        matches!(self, Role::Hospital | Role::Clinic)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Hospital => "hospital",
            Role::Clinic => "clinic",
            Role::Regulator => "regulator",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "hospital" => Ok(Role::Hospital),
            "clinic" => Ok(Role::Clinic),
            "regulator" => Ok(Role::Regulator),
            other => Err(Error::UnknownRole(other.to_string())),
        }
    }
}

/// A member institution as genesis lists it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Member {
    /// Display name of the institution (institutions are public; patients never have names here).
    pub name: String,
    pub role: Role,
    pub public_key: PublicKey,
    pub x25519: X25519Public,
    /// Consensus voting power; zero for a member that does not validate (regulators).
    pub voting_power: u64,
    /// libp2p multiaddr its node listens on, if it runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_addr: Option<String>,
    /// Address of its node's HTTP API, if it runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_addr: Option<String>,
    /// The key that signs for the member now, once a vote rotated it away from `public_key`.
    /// `public_key` stays the member's identity: what its records (archives' custodian,
    /// grants' grantee, clinicians' institution) name for good, and never a signing key again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<PublicKey>,
}

impl Member {
    /// The key its transactions, votes, API requests and node identity are signed with now.
    pub fn signing_key(&self) -> PublicKey {
        self.signing_key.unwrap_or(self.public_key)
    }

    /// Whether `key` is, or ever was in this set, one of the member's keys: its identity or
    /// the key that signs for it now.
    pub fn holds(&self, key: &PublicKey) -> bool {
        &self.public_key == key || self.signing_key.as_ref() == Some(key)
    }
}

/// Consent and access policy the consortium agreed on in genesis.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Policy {
    /// Whether an institution without a grant may read an archive in an emergency (ETREAT with
    /// a justification, always flagged).
    pub break_glass_allowed: bool,
    /// The roles of the clinicians who may break the glass.
    #[serde(default = "default_break_glass_roles")]
    pub break_glass_roles: Vec<StaffRole>,
    /// How far an accessor's signed request may be from the block time, either way.
    pub access_request_ttl_ms: u64,
    /// Longest validity a patient may give one grant.
    pub grant_duration_max_ms: u64,
    /// Whether adding or removing a member, or changing its voting power, also needs the
    /// approval of a regulator (when the consortium has one).
    #[serde(default)]
    pub membership_needs_regulator: bool,
    /// How long a governance proposal stays open for approvals, by block time.
    #[serde(default = "default_proposal_ttl_ms")]
    pub proposal_ttl_ms: u64,
}

/// A week: long enough for every member's operators to see and weigh a proposal.
pub fn default_proposal_ttl_ms() -> u64 {
    7 * 24 * 3600 * 1000
}

impl Policy {
    /// Checks what would make the rules unusable: zero windows.
    pub fn validate(&self) -> Result<(), Error> {
        let ok = self.access_request_ttl_ms > 0
            && self.grant_duration_max_ms > 0
            && self.proposal_ttl_ms > 0
            && self.break_glass_roles.len() <= crate::tx::GRANT_CODES_MAX;
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidPolicy)
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            break_glass_allowed: true,
            break_glass_roles: default_break_glass_roles(),
            access_request_ttl_ms: 10 * 60 * 1000,
            grant_duration_max_ms: 5 * 365 * 24 * 3600 * 1000,
            membership_needs_regulator: false,
            proposal_ttl_ms: default_proposal_ttl_ms(),
        }
    }
}

/// Emergency physicians and obstetricians break the glass unless genesis says otherwise.
pub fn default_break_glass_roles() -> Vec<StaffRole> {
    vec![StaffRole::EmergencyPhysician, StaffRole::Obstetrician]
}

/// Size limits every node enforces on transactions and blocks.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Limits {
    pub tx_bytes_max: u32,
    pub block_txs_max: u32,
    pub block_bytes_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tx_bytes_max: 64 * 1024,
            block_txs_max: 10_000,
            block_bytes_max: 8 * 1024 * 1024,
        }
    }
}

impl Limits {
    pub fn validate(&self) -> Result<(), Error> {
        let ok = self.tx_bytes_max >= 512
            && self.tx_bytes_max <= crate::codec::TX_BYTES_HARD_MAX
            && self.block_txs_max >= 1
            && self.block_bytes_max >= self.tx_bytes_max
            && self.block_bytes_max <= crate::codec::BLOCK_BYTES_HARD_MAX;
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidLimits)
        }
    }
}

/// Who the members are, under which policy and limits: what a governance vote changes as a
/// whole. `epoch` counts the changes adopted since genesis (0).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct MemberSet {
    pub epoch: u64,
    pub members: Vec<Member>,
    pub policy: Policy,
    pub limits: Limits,
    /// Consensus timeouts voted in after genesis; `None` keeps genesis's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<cradle_consensus::Config>,
}

const TAG_MEMBER_SET: &[u8] = b"cradle.ledger.member-set.v1\0";

impl MemberSet {
    /// SHA-256 over a tag and the set's canonical encoding: what a block header names as the
    /// set in force at the next height.
    pub fn hash(&self) -> Hash {
        let mut bytes = TAG_MEMBER_SET.to_vec();
        // Writing into a Vec cannot fail.
        let _ = borsh::to_writer(&mut bytes, self);
        crate::crypto::sha256(&bytes)
    }
}

/// Everything the rules need to know about the consortium at one height: the chain, and the
/// member set in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consortium {
    /// The hash of the genesis document: every signature binds it.
    pub chain_id: Hash,
    /// Time of genesis, milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    /// How many governance changes were adopted before this set: 0 for genesis.
    pub epoch: u64,
    pub members: Vec<Member>,
    pub policy: Policy,
    pub limits: Limits,
    /// Consensus timeouts voted in after genesis; `None` keeps genesis's.
    pub timeouts: Option<cradle_consensus::Config>,
    validators: ValidatorSet,
    members_hash: Hash,
}

impl Consortium {
    /// The genesis consortium (epoch 0); see [`Consortium::with_set`] for its checks.
    pub fn new(
        chain_id: Hash,
        genesis_time_ms: u64,
        members: Vec<Member>,
        policy: Policy,
        limits: Limits,
    ) -> Result<Self, Error> {
        Self::of_set(
            chain_id,
            genesis_time_ms,
            MemberSet {
                epoch: 0,
                members,
                policy,
                limits,
                timeouts: None,
            },
        )
    }

    /// The consortium of the same chain under `set`, with the same checks as genesis.
    pub fn with_set(&self, set: MemberSet) -> Result<Self, Error> {
        Self::of_set(self.chain_id, self.genesis_time_ms, set)
    }

    /// Checks the members (unique signing and X25519 keys, at least one validator, no
    /// regulator validating, a bounded number of regulators), the policy and the limits, and
    /// builds the validator set in member order.
    fn of_set(chain_id: Hash, genesis_time_ms: u64, set: MemberSet) -> Result<Self, Error> {
        set.limits.validate()?;
        set.policy.validate()?;
        if let Some(t) = &set.timeouts {
            t.validate().map_err(Error::Consensus)?;
        }
        let members = &set.members;
        if members.len() > cradle_consensus::types::VALIDATORS_MAX {
            return Err(Error::TooMany {
                len: members.len(),
                max: cradle_consensus::types::VALIDATORS_MAX,
            });
        }
        // A break-glass justification is sealed for the patient and every regulator, and its
        // readers are bounded.
        let regulators = members.iter().filter(|m| m.role == Role::Regulator).count();
        if regulators >= crate::justification::JUSTIFICATION_READERS_MAX {
            return Err(Error::TooManyRegulators {
                count: regulators,
                max: crate::justification::JUSTIFICATION_READERS_MAX - 1,
            });
        }
        for (i, m) in members.iter().enumerate() {
            // Identities and signing keys are one namespace: no key names two members, or
            // signs for one member while it names another.
            let clash = |o: &Member| o.holds(&m.public_key) || o.holds(&m.signing_key());
            if members[..i].iter().any(clash) || m.signing_key == Some(m.public_key) {
                return Err(Error::DuplicateMember(m.public_key));
            }
            if members[..i].iter().any(|o| o.x25519 == m.x25519) {
                return Err(Error::DuplicateX25519(m.public_key));
            }
            if m.role == Role::Regulator && m.voting_power > 0 {
                return Err(Error::RegulatorValidates(m.public_key));
            }
            m.public_key.verifying_key()?;
            m.signing_key().verifying_key()?;
        }
        let validators: Vec<Validator> = members
            .iter()
            .filter(|m| m.voting_power > 0)
            .map(|m| Validator {
                public_key: m.signing_key().0,
                voting_power: m.voting_power,
            })
            .collect();
        let validators = ValidatorSet::new(validators).map_err(Error::Consensus)?;
        let members_hash = set.hash();
        Ok(Self {
            chain_id,
            genesis_time_ms,
            epoch: set.epoch,
            members: set.members,
            policy: set.policy,
            limits: set.limits,
            timeouts: set.timeouts,
            validators,
            members_hash,
        })
    }

    /// The member set this consortium is made of.
    pub fn member_set(&self) -> MemberSet {
        MemberSet {
            epoch: self.epoch,
            members: self.members.clone(),
            policy: self.policy.clone(),
            limits: self.limits.clone(),
            timeouts: self.timeouts,
        }
    }

    /// [`MemberSet::hash`] of [`Consortium::member_set`], computed once.
    pub fn members_hash(&self) -> Hash {
        self.members_hash
    }

    /// The member whose identity is `key`: what records name. Not a signer check: a member
    /// whose key was rotated keeps its identity, which signs nothing any more (see
    /// [`Consortium::signer`]).
    pub fn member(&self, key: &PublicKey) -> Option<&Member> {
        self.members.iter().find(|m| &m.public_key == key)
    }

    /// The member that `key` signs for now: who a signed transaction, vote or API request
    /// comes from. A key rotated away from is no member's signer.
    pub fn signer(&self, key: &PublicKey) -> Option<&Member> {
        self.members.iter().find(|m| &m.signing_key() == key)
    }

    /// The member `key` names or signs for, to show who an event names (an access made
    /// before or after the member's key rotated).
    pub fn member_by_any_key(&self, key: &PublicKey) -> Option<&Member> {
        self.members.iter().find(|m| m.holds(key))
    }

    /// Whether `key` is one of a member's keys, as identity or as signer: such a key can be
    /// no patient's or clinician's.
    pub fn holds_key(&self, key: &PublicKey) -> bool {
        self.members.iter().any(|m| m.holds(key))
    }

    /// The regulators, in genesis order: who reads break-glass justifications with the patient.
    pub fn regulators(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.role == Role::Regulator)
    }

    /// The validators, in genesis order, as consensus counts them.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }
}
