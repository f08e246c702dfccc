//! The genesis document: who the members are, how consensus is paced, the consortium's policy.
//!
//! The document is written as JSON (`genesis.json`) for people, and hashed as borsh for
//! machines: [`GenesisDoc::chain_id`] is SHA-256 over a tag and the canonical borsh encoding, so
//! it does not depend on JSON whitespace or key order, and changes when any field changes. Every
//! signature in Cradle binds that chain id.
//!
//! [`GenesisDoc::validate`] reports every problem at once; [`GenesisDoc::load`] only returns a
//! document that passed it.

use std::collections::HashMap;
use std::path::Path;

use borsh::{BorshDeserialize, BorshSerialize};
use cradle_ledger::crypto::sha256_parts;
use cradle_ledger::{Consortium, Hash, Limits, Member, Policy, PublicKey, Role, X25519Public};
use serde::{Deserialize, Serialize};

use crate::addr::{P2pAddr, parse_api_addr};
use crate::error::{GenesisError, GenesisErrors};
use crate::fsutil;

/// Domain tag of the chain id hash.
pub const CHAIN_ID_TAG: &[u8] = b"cradle.genesis.v1\0";
/// Most members a genesis may list (the consensus crate's validator bound).
pub const MEMBERS_MAX: usize = cradle_consensus::types::VALIDATORS_MAX;
/// Longest chain name, in bytes.
pub const CHAIN_NAME_LEN_MAX: usize = 64;
/// Longest member name, in bytes.
pub const MEMBER_NAME_LEN_MAX: usize = 128;
/// Largest genesis file read, in bytes.
pub const GENESIS_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// A member institution as genesis lists it, with where its node can be reached.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisMember {
    /// Display name of the institution (never a person's name).
    pub name: String,
    pub role: Role,
    pub public_key: PublicKey,
    pub x25519: X25519Public,
    /// Consensus voting power; regulators must have 0.
    pub voting_power: u64,
    /// libp2p multiaddr peers dial, like `/ip4/127.0.0.1/tcp/26600`. Required for validators;
    /// a member that runs no node (a regulator that only audits) has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_addr: Option<String>,
    /// Address of the node's HTTP API, like `127.0.0.1:8600`, if it runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_addr: Option<String>,
}

impl GenesisMember {
    /// The member as the ledger's rules see it.
    pub fn to_member(&self) -> Member {
        Member {
            name: self.name.clone(),
            role: self.role,
            public_key: self.public_key,
            x25519: self.x25519,
            voting_power: self.voting_power,
            p2p_addr: self.p2p_addr.clone(),
            api_addr: self.api_addr.clone(),
            signing_key: None,
        }
    }

    pub fn is_validator(&self) -> bool {
        self.voting_power > 0
    }
}

/// How Tendermint is paced: the consensus crate's timeouts (round `r` waits
/// `timeout_X_ms + r * timeout_delta_ms`) and the proposer's pacing (a short batching window for
/// pending transactions, one empty block per heartbeat while idle).
///
/// Both are flattened, so the JSON object and the borsh encoding (hence the chain id) are those
/// of six plain fields in this order.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParams {
    #[serde(flatten)]
    pub timeouts: cradle_consensus::Config,
    #[serde(flatten)]
    pub pacing: cradle_consensus::Pacing,
}

impl ConsensusParams {
    /// The timeouts as [`cradle_consensus::Config::problems`] checks them and the pacing as
    /// [`cradle_consensus::Pacing::problems`] does.
    pub fn validate(&self) -> Result<(), GenesisErrors> {
        let mut errs = GenesisErrors::default();
        self.check(&mut errs);
        errs.into_result()
    }

    fn check(&self, errs: &mut GenesisErrors) {
        let problems = self.timeouts.problems().into_iter();
        for problem in problems.chain(self.pacing.problems(&self.timeouts)) {
            errs.push(GenesisError::from_consensus_config(problem));
        }
    }
}

/// The consortium's founding document.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisDoc {
    pub chain_name: String,
    /// Milliseconds since the Unix epoch; the first block's time is after it.
    pub genesis_time_ms: u64,
    /// In genesis order, which is also the validator order consensus uses.
    pub members: Vec<GenesisMember>,
    pub consensus: ConsensusParams,
    pub policy: Policy,
    pub limits: Limits,
}

impl GenesisDoc {
    /// SHA-256 over [`CHAIN_ID_TAG`] and the borsh encoding of the document.
    pub fn chain_id(&self) -> Hash {
        let mut bytes = Vec::with_capacity(1024);
        // Serialising into a Vec cannot fail: the writer never errors and no field has a
        // length borsh refuses.
        let _ = borsh::to_writer(&mut bytes, self);
        sha256_parts(&[CHAIN_ID_TAG, &bytes])
    }

    /// The chain id as lowercase hex.
    pub fn chain_id_hex(&self) -> String {
        hex::encode(self.chain_id())
    }

    /// Checks the whole document and returns every problem found, one error each.
    pub fn validate(&self) -> Result<(), GenesisErrors> {
        let mut errs = GenesisErrors::default();
        self.check_chain_name(&mut errs);
        self.check_members(&mut errs);
        self.check_validators(&mut errs);
        self.consensus.check(&mut errs);
        if let Err(e) = self.limits.validate() {
            errs.push(GenesisError::InvalidLimits(e));
        }
        errs.into_result()
    }

    fn check_chain_name(&self, errs: &mut GenesisErrors) {
        let name = &self.chain_name;
        if name.trim().is_empty() {
            errs.push(GenesisError::EmptyChainName);
        } else if let Some(reason) = name_problem(name, CHAIN_NAME_LEN_MAX) {
            errs.push(GenesisError::BadChainName {
                name: name.clone(),
                reason,
            });
        }
    }

    fn check_members(&self, errs: &mut GenesisErrors) {
        let members = &self.members;
        if members.is_empty() {
            errs.push(GenesisError::NoMembers);
            return;
        }
        if members.len() > MEMBERS_MAX {
            errs.push(GenesisError::TooManyMembers {
                count: members.len(),
                max: MEMBERS_MAX,
            });
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut keys: HashMap<PublicKey, usize> = HashMap::new();
        let mut xkeys: HashMap<X25519Public, usize> = HashMap::new();
        let mut p2p: HashMap<String, usize> = HashMap::new();
        let mut api: HashMap<std::net::SocketAddr, usize> = HashMap::new();
        for (i, m) in members.iter().enumerate() {
            let name_of = |j: usize| members[j].name.clone();
            if let Some(reason) = name_problem(&m.name, MEMBER_NAME_LEN_MAX) {
                errs.push(GenesisError::BadMemberName {
                    index: i,
                    name: m.name.clone(),
                    reason,
                });
            }
            if let Some(&first) = names.get(m.name.as_str()) {
                errs.push(GenesisError::DuplicateName {
                    name: m.name.clone(),
                    first,
                    second: i,
                });
            } else {
                names.insert(&m.name, i);
            }
            if let Some(&first) = keys.get(&m.public_key) {
                errs.push(GenesisError::DuplicatePublicKey {
                    key: m.public_key,
                    first: name_of(first),
                    second: m.name.clone(),
                });
            } else {
                keys.insert(m.public_key, i);
            }
            if let Some(&first) = xkeys.get(&m.x25519) {
                errs.push(GenesisError::DuplicateX25519 {
                    key: m.x25519,
                    first: name_of(first),
                    second: m.name.clone(),
                });
            } else {
                xkeys.insert(m.x25519, i);
            }
            if m.public_key.verifying_key().is_err() {
                errs.push(GenesisError::InvalidPublicKey {
                    member: m.name.clone(),
                    key: m.public_key,
                });
            }
            if let Some(addr) = &m.p2p_addr {
                match P2pAddr::parse(addr) {
                    Err(reason) => errs.push(GenesisError::BadP2pAddr {
                        member: m.name.clone(),
                        addr: addr.clone(),
                        reason,
                    }),
                    Ok(parsed) if parsed.port == 0 => errs.push(GenesisError::BadP2pAddr {
                        member: m.name.clone(),
                        addr: addr.clone(),
                        reason: "port 0 cannot be dialed".into(),
                    }),
                    Ok(_) => {
                        if let Some(&first) = p2p.get(addr) {
                            errs.push(GenesisError::DuplicateP2pAddr {
                                addr: addr.clone(),
                                first: name_of(first),
                                second: m.name.clone(),
                            });
                        } else {
                            p2p.insert(addr.clone(), i);
                        }
                    }
                }
            } else if m.is_validator() {
                errs.push(GenesisError::MissingP2pAddr {
                    member: m.name.clone(),
                });
            }
            if let Some(addr) = &m.api_addr {
                match parse_api_addr(addr) {
                    Err(reason) => errs.push(GenesisError::BadApiAddr {
                        member: m.name.clone(),
                        addr: addr.clone(),
                        reason,
                    }),
                    Ok(sa) if sa.port() == 0 => errs.push(GenesisError::BadApiAddr {
                        member: m.name.clone(),
                        addr: addr.clone(),
                        reason: "port 0 cannot be reached".into(),
                    }),
                    Ok(sa) => {
                        if let Some(&first) = api.get(&sa) {
                            errs.push(GenesisError::DuplicateApiAddr {
                                addr: addr.clone(),
                                first: name_of(first),
                                second: m.name.clone(),
                            });
                        } else {
                            api.insert(sa, i);
                        }
                    }
                }
            }
            if m.role == Role::Regulator && m.voting_power > 0 {
                errs.push(GenesisError::RegulatorWithPower {
                    member: m.name.clone(),
                    power: m.voting_power,
                });
            }
        }
    }

    fn check_validators(&self, errs: &mut GenesisErrors) {
        if self.members.is_empty() {
            return; // Already reported as no members.
        }
        let validators: Vec<&GenesisMember> =
            self.members.iter().filter(|m| m.is_validator()).collect();
        if validators.is_empty() {
            errs.push(GenesisError::NoValidator);
        }
        if validators.len() > cradle_consensus::types::VALIDATORS_MAX {
            errs.push(GenesisError::TooManyValidators {
                count: validators.len(),
                max: cradle_consensus::types::VALIDATORS_MAX,
            });
        }
        let total = validators
            .iter()
            .try_fold(0u64, |acc, m| acc.checked_add(m.voting_power));
        if total.is_none() {
            errs.push(GenesisError::VotingPowerOverflow);
        }
    }

    /// The consortium the ledger's rules read, after full validation.
    pub fn consortium(&self) -> Result<Consortium, GenesisError> {
        self.validate().map_err(GenesisError::Invalid)?;
        let members = self.members.iter().map(GenesisMember::to_member).collect();
        Ok(Consortium::new(
            self.chain_id(),
            self.genesis_time_ms,
            members,
            self.policy.clone(),
            self.limits.clone(),
        )?)
    }

    /// Reads and parses `path` without validating it (for tools that report the problems).
    pub fn load_unvalidated(path: impl AsRef<Path>) -> Result<Self, GenesisError> {
        let path = path.as_ref();
        let bytes = fsutil::read_bounded(path, GENESIS_FILE_BYTES_MAX)?;
        Self::parse_unvalidated(&bytes, path)
    }

    /// Parses the bytes of a genesis file read from `path` (named in errors), without
    /// validating them: what [`GenesisDoc::load_unvalidated`] does after the read.
    pub fn parse_unvalidated(bytes: &[u8], path: &Path) -> Result<Self, GenesisError> {
        serde_json::from_slice(bytes).map_err(|error| GenesisError::Json {
            path: path.into(),
            error,
        })
    }

    /// Reads, parses and validates `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, GenesisError> {
        let doc = Self::load_unvalidated(path)?;
        doc.validate().map_err(GenesisError::Invalid)?;
        Ok(doc)
    }

    /// Pretty JSON, with a final newline.
    pub fn to_json_pretty(&self) -> String {
        // Cannot fail: every map key is a string and every value serialises.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Writes pretty JSON to `path` atomically (temporary file, then rename), mode 0644. Does
    /// not validate: call [`GenesisDoc::validate`] first.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), GenesisError> {
        fsutil::write_replace(path.as_ref(), self.to_json_pretty().as_bytes(), 0o644)
    }

    /// The member with this ed25519 key, with its index in genesis order.
    pub fn member_by_key(&self, key: &PublicKey) -> Option<(usize, &GenesisMember)> {
        self.members
            .iter()
            .enumerate()
            .find(|(_, m)| &m.public_key == key)
    }

    /// The member with this name, with its index in genesis order.
    pub fn member_by_name(&self, name: &str) -> Option<(usize, &GenesisMember)> {
        self.members
            .iter()
            .enumerate()
            .find(|(_, m)| m.name == name)
    }

    /// The members with voting power, in genesis order.
    pub fn validators(&self) -> impl Iterator<Item = &GenesisMember> {
        self.members.iter().filter(|m| m.is_validator())
    }
}

/// Why `name` is not a good display name, if it is not: empty, too long, control characters, or
/// surrounding whitespace (which would make two names look the same).
fn name_problem(name: &str, max: usize) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("empty")
    } else if name.len() > max {
        Some("too long")
    } else if name.chars().any(char::is_control) {
        Some("contains control characters")
    } else if name.trim() != name {
        Some("leading or trailing whitespace")
    } else {
        None
    }
}
