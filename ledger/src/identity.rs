//! Who takes part: member institutions (from genesis), their roles, and the consortium's policy.
//!
//! [`Consortium`] is the part of the genesis document that the rules read. Members are listed in
//! genesis and never change on the ledger; patients are enrolled by members and clinicians
//! registered by their institutions (see [`crate::state`] and [`crate::staff`]).

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
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            break_glass_allowed: true,
            break_glass_roles: default_break_glass_roles(),
            access_request_ttl_ms: 10 * 60 * 1000,
            grant_duration_max_ms: 5 * 365 * 24 * 3600 * 1000,
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

/// Everything the rules need to know about the consortium, derived from genesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consortium {
    /// The hash of the genesis document: every signature binds it.
    pub chain_id: Hash,
    /// Time of genesis, milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    pub members: Vec<Member>,
    pub policy: Policy,
    pub limits: Limits,
    validators: ValidatorSet,
}

impl Consortium {
    /// Checks the members (unique keys, at least one validator, no regulator validating more
    /// than a care provider would) and builds the validator set in genesis order.
    pub fn new(
        chain_id: Hash,
        genesis_time_ms: u64,
        members: Vec<Member>,
        policy: Policy,
        limits: Limits,
    ) -> Result<Self, Error> {
        limits.validate()?;
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
            if members[..i].iter().any(|o| o.public_key == m.public_key) {
                return Err(Error::DuplicateMember(m.public_key));
            }
            m.public_key.verifying_key()?;
        }
        let validators: Vec<Validator> = members
            .iter()
            .filter(|m| m.voting_power > 0)
            .map(|m| Validator {
                public_key: m.public_key.0,
                voting_power: m.voting_power,
            })
            .collect();
        let validators = ValidatorSet::new(validators).map_err(Error::Consensus)?;
        Ok(Self {
            chain_id,
            genesis_time_ms,
            members,
            policy,
            limits,
            validators,
        })
    }

    pub fn member(&self, key: &PublicKey) -> Option<&Member> {
        self.members.iter().find(|m| &m.public_key == key)
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
