//! The ledger's one error type. A function that returns an error has changed nothing.

use crate::crypto::{ArchiveId, GrantId, PublicKey};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // Encoding.
    #[error("bad hex for {what}: want {len} bytes")]
    BadHex { what: &'static str, len: usize },
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("list of {len} items exceeds the limit of {max}")]
    TooMany { len: usize, max: usize },
    #[error("unsupported encoding version {0}")]
    UnsupportedVersion(u8),
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("unknown {what} code {code:?}")]
    UnknownCode { what: &'static str, code: String },

    // Keys and signatures.
    #[error("invalid ed25519 public key")]
    InvalidPublicKey,
    #[error("bad signature")]
    BadSignature,
    #[error("random source failed: {0}")]
    Random(String),
    #[error("signed for another chain")]
    WrongChain,
    #[error("the recipient's X25519 key is a low-order point; no key can be wrapped for it")]
    LowOrderKey,
    #[error("the wrapped key does not open for this recipient and archive")]
    KeyUnwrap,
    #[error("invalid justification: {0}")]
    InvalidJustification(&'static str),
    #[error("the justification is not sealed for this key")]
    NotAJustificationReader,
    #[error("the sealed justification does not open for this request, or was altered")]
    JustificationUnreadable,

    // Consortium.
    #[error("unknown role {0:?}: want hospital, clinic or regulator")]
    UnknownRole(String),
    #[error("member {0} is listed twice")]
    DuplicateMember(PublicKey),
    #[error("{count} regulators: a break-glass justification can be sealed for at most {max}")]
    TooManyRegulators { count: usize, max: usize },
    #[error("invalid size limits")]
    InvalidLimits,
    #[error("invalid policy: every window must be positive and break-glass roles few")]
    InvalidPolicy,
    #[error("the change changes nothing: {0}")]
    Unchanged(&'static str),
    #[error("regulator {0} cannot have voting power")]
    RegulatorValidates(PublicKey),
    #[error("member {0} has an X25519 key another member has")]
    DuplicateX25519(PublicKey),

    // Governance.
    #[error("{0} is not a member")]
    UnknownMember(PublicKey),
    #[error("invalid member: {0}")]
    InvalidMember(&'static str),
    #[error("the change would leave the consortium without a validator")]
    NoValidatorLeft,
    #[error("no proposal {0}")]
    UnknownProposal(crate::crypto::ProposalId),
    #[error("proposal {id} is closed: {why}")]
    ProposalClosed {
        id: crate::crypto::ProposalId,
        why: &'static str,
    },
    #[error("invalid key change: {0}")]
    InvalidKeyChange(&'static str),
    #[error("key {0} was rotated out: its patient signs with her new key")]
    KeyRotatedOut(PublicKey),
    #[error("{0} already approved this proposal")]
    AlreadyApproved(PublicKey),
    #[error("an adopted change takes effect at height {activation}: propose after it")]
    ChangePending { activation: u64 },
    #[error("the member set of epoch {got} is not the one in force (epoch {want})")]
    WrongMemberSet { got: u64, want: u64 },
    #[error(
        "the header of height {height} names a member set this client has not followed: \
         fetch the governance changes first"
    )]
    UnfollowedSetChange { height: u64 },
    #[error("a member set change at height {height} (epoch {epoch}) is out of order")]
    SetChangeOutOfOrder { height: u64, epoch: u64 },
    #[error("{open} proposals are open: at most {max}")]
    TooManyProposals { open: u32, max: u32 },
    #[error("consensus: {0}")]
    Consensus(cradle_consensus::Error),

    // Storage.
    #[error("storage: {0}")]
    Storage(String),
    #[error("corrupt state: {0}")]
    Corrupt(String),
    #[error("no block has been committed yet")]
    NoBlocks,
    #[error("proof: {0}")]
    Proof(crate::merkle::ProofError),

    // Transaction rules.
    #[error("nonce {got} is not above the signer's last nonce {last}")]
    StaleNonce { got: u64, last: u64 },
    #[error(
        "nonce {got} is beyond the block time's horizon {max}: nonces follow the clock in microseconds"
    )]
    NonceTooFar { got: u64, max: u64 },
    #[error("{signer} may not {action}")]
    NotAuthorized {
        action: &'static str,
        signer: PublicKey,
    },
    #[error("patient {0} is already enrolled")]
    AlreadyEnrolled(PublicKey),
    #[error(
        "patient {0} did not sign this enrolment of her keys for this chain: she makes the proof with her own key"
    )]
    BadEnrolmentProof(PublicKey),
    #[error("a member key cannot be enrolled as a patient")]
    PatientIsMember,
    #[error("key {key} is already {by}'s: a key serves one party for good")]
    KeyInUse { key: PublicKey, by: &'static str },
    #[error("{0} is not a registered clinician")]
    UnknownStaff(PublicKey),
    #[error("invalid staff change: {0}")]
    InvalidStaffChange(&'static str),
    #[error("patient {0} is not enrolled")]
    UnknownPatient(PublicKey),
    #[error("archive {0} is already registered")]
    ArchiveExists(ArchiveId),
    #[error("archive id {0} is reserved: key changes in a patient's history name it")]
    ArchiveIdReserved(ArchiveId),
    #[error("archive {0} is not registered")]
    UnknownArchive(ArchiveId),
    #[error("archive of zero bytes")]
    EmptyArchive,
    #[error("the archive key is not wrapped for active grant {0}")]
    MissingGrantKey(GrantId),
    #[error("grant {0} does not cover this archive, or is not open")]
    UnexpectedGrantKey(GrantId),
    #[error("{0} is listed twice")]
    Duplicate(String),
    #[error("grant {0} does not exist")]
    UnknownGrant(GrantId),
    #[error("grant {0} is already revoked")]
    AlreadyRevoked(GrantId),
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    #[error("the grant does not wrap the key of covered archive {0}")]
    MissingArchiveKey(ArchiveId),
    #[error("archive {0} is not the patient's or not in the grant's scope")]
    UnexpectedArchiveKey(ArchiveId),
    #[error("patient has {open} open grants, the most allowed is {max}")]
    TooManyGrants { open: u32, max: u32 },
    #[error("access request made at {requested_at_ms} is too far from block time {now_ms}")]
    StaleRequest { requested_at_ms: u64, now_ms: u64 },
    #[error("access request was already recorded")]
    RequestReplayed,
    #[error(
        "transaction {0} recorded no break-glass access: it is unknown, or recorded another kind of access"
    )]
    UnknownBreakGlass(crate::crypto::Digest32),
    #[error("the break-glass access recorded by transaction {0} was already reviewed")]
    AlreadyReviewed(crate::crypto::Digest32),
    #[error("recorded outcome {recorded} differs from the access rule's {rule}")]
    OutcomeMismatch { recorded: String, rule: String },

    // Blocks.
    #[error("block height {got}, expected {want}")]
    WrongHeight { got: u64, want: u64 },
    #[error("block does not extend the current tip")]
    WrongParent,
    #[error("block time {got} is not after the previous block's {prev}")]
    TimeNotIncreasing { got: u64, prev: u64 },
    #[error("proposer {0} is not a validator")]
    NotAValidator(PublicKey),
    #[error("header field {0} does not match the block")]
    HeaderMismatch(&'static str),
    #[error("transaction {index}: {source}")]
    InvalidTx { index: usize, source: Box<Error> },
}

impl From<crate::merkle::smt::SmtError> for Error {
    fn from(e: crate::merkle::smt::SmtError) -> Self {
        Error::Storage(e.to_string())
    }
}
