//! The crate's one error type, and the list of problems a genesis validation reports.
//!
//! Validation does not stop at the first problem: an operator founding a consortium should see
//! everything wrong with a draft genesis at once, so [`GenesisErrors`] carries one
//! [`GenesisError`] per problem, in a stable order.

use std::fmt;
use std::path::PathBuf;

use cradle_ledger::{PublicKey, X25519Public};

/// Everything that can go wrong reading, checking or writing genesis, key and config files.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    // Files.
    // The underlying error is part of the message rather than a `source`, so a report of the
    // whole chain does not say it twice.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: malformed json: {error}", path.display())]
    Json {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("{}: malformed toml: {reason}", path.display())]
    Toml { path: PathBuf, reason: String },
    #[error("{}: file of {len} bytes exceeds the limit of {max}", path.display())]
    FileTooLarge { path: PathBuf, len: u64, max: u64 },

    // The genesis document.
    #[error("chain name is empty")]
    EmptyChainName,
    #[error("chain name {name:?} is invalid: {reason}")]
    BadChainName { name: String, reason: &'static str },
    #[error("no members")]
    NoMembers,
    #[error("{count} members exceed the limit of {max}")]
    TooManyMembers { count: usize, max: usize },
    #[error("member #{index} name {name:?} is invalid: {reason}")]
    BadMemberName {
        index: usize,
        name: String,
        reason: &'static str,
    },
    #[error("members #{first} and #{second} are both named {name:?}")]
    DuplicateName {
        name: String,
        first: usize,
        second: usize,
    },
    #[error("members {first:?} and {second:?} share public key {key}")]
    DuplicatePublicKey {
        key: PublicKey,
        first: String,
        second: String,
    },
    #[error("members {first:?} and {second:?} share x25519 key {key}")]
    DuplicateX25519 {
        key: X25519Public,
        first: String,
        second: String,
    },
    #[error("member {member:?} has an invalid ed25519 public key {key}")]
    InvalidPublicKey { member: String, key: PublicKey },
    #[error("member {member:?} has an unparsable p2p address {addr:?}: {reason}")]
    BadP2pAddr {
        member: String,
        addr: String,
        reason: String,
    },
    #[error("member {member:?} has an unparsable api address {addr:?}: {reason}")]
    BadApiAddr {
        member: String,
        addr: String,
        reason: String,
    },
    #[error("members {first:?} and {second:?} share p2p address {addr}")]
    DuplicateP2pAddr {
        addr: String,
        first: String,
        second: String,
    },
    #[error("members {first:?} and {second:?} share api address {addr}")]
    DuplicateApiAddr {
        addr: String,
        first: String,
        second: String,
    },
    #[error("validator {member:?} has no p2p address")]
    MissingP2pAddr { member: String },
    #[error("no validator: at least one member needs voting power above zero")]
    NoValidator,
    #[error("{count} validators exceed the limit of {max}")]
    TooManyValidators { count: usize, max: usize },
    #[error("total voting power overflows")]
    VotingPowerOverflow,
    #[error("regulator {member:?} has voting power {power}: regulators must have 0")]
    RegulatorWithPower { member: String, power: u64 },
    #[error("consensus {name} of {value_ms} ms is outside {min_ms}..={max_ms} ms")]
    BadTimeout {
        name: &'static str,
        value_ms: u64,
        min_ms: u64,
        max_ms: u64,
    },
    #[error("consensus timeout_delta_ms {delta_ms} exceeds timeout_propose_ms {propose_ms}")]
    DeltaExceedsPropose { delta_ms: u64, propose_ms: u64 },
    /// A consensus parameter problem with no genesis-specific variant.
    #[error("consensus parameters: {0}")]
    Consensus(cradle_consensus::Error),
    #[error("invalid limits: {0}")]
    InvalidLimits(cradle_ledger::Error),
    #[error("invalid genesis: {0}")]
    Invalid(GenesisErrors),
    #[error(transparent)]
    Ledger(#[from] cradle_ledger::Error),

    // Key files.
    #[error("{}: already exists; refusing to overwrite a key", path.display())]
    KeyFileExists { path: PathBuf },
    #[error("{}: malformed key file: {reason}", path.display())]
    MalformedKeyFile { path: PathBuf, reason: String },
    #[error("{}: public keys do not match the secret keys", path.display())]
    KeyMismatch { path: PathBuf },

    // Node config and home.
    #[error("config {field}: {reason}")]
    BadConfig { field: &'static str, reason: String },
    #[error("key {key} is not a member of the genesis")]
    NotAMember { key: PublicKey },
    #[error("config names member {config:?} but the node key belongs to {genesis:?}")]
    MemberMismatch { config: String, genesis: String },
    #[error("node key's x25519 key {key} differs from the genesis entry of {member:?}")]
    X25519Mismatch { member: String, key: X25519Public },

    // Localnet.
    #[error("{}: directory is not empty; refusing to write a localnet into it", path.display())]
    OutputNotEmpty { path: PathBuf },
    #[error("localnet {what} of {value} is outside {min}..={max}")]
    BadLocalnet {
        what: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
}

impl GenesisError {
    /// A problem [`cradle_consensus::Config::problems`] found, in genesis terms.
    pub(crate) fn from_consensus_config(problem: cradle_consensus::Error) -> Self {
        match problem {
            cradle_consensus::Error::InvalidConfig {
                field,
                value,
                min,
                max,
            } => Self::BadTimeout {
                name: field,
                value_ms: value,
                min_ms: min,
                max_ms: max,
            },
            cradle_consensus::Error::TimeoutDeltaExceedsPropose {
                delta_ms,
                propose_ms,
            } => Self::DeltaExceedsPropose {
                delta_ms,
                propose_ms,
            },
            other => Self::Consensus(other),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |error| Self::Io { path, error }
    }
}

/// Every problem a validation found, in the order it checks them; never empty when returned as
/// an error.
#[derive(Debug, Default)]
pub struct GenesisErrors(pub Vec<GenesisError>);

impl GenesisErrors {
    pub fn as_slice(&self) -> &[GenesisError] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, GenesisError> {
        self.0.iter()
    }

    pub(crate) fn push(&mut self, e: GenesisError) {
        self.0.push(e);
    }

    /// `Ok` when nothing was found.
    pub(crate) fn into_result(self) -> Result<(), GenesisErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for GenesisErrors {
    /// One line: `N problems: first; second; ...`, so a binary can report it as its one-line
    /// reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("no problems"),
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems: ", many.len())?;
                for (i, e) in many.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for GenesisErrors {}

impl<'a> IntoIterator for &'a GenesisErrors {
    type Item = &'a GenesisError;
    type IntoIter = std::slice::Iter<'a, GenesisError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
