//! The command line: what `cradle` accepts.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use cradle_ledger::staff::{Department, StaffRole};
use cradle_ledger::tx::{Category, Purpose};

#[derive(Parser)]
#[command(
    name = "cradle",
    version,
    about = "Cradle: consent-based maternal health records"
)]
pub(crate) struct Cli {
    /// The node's API URL, e.g. https://127.0.0.1:26601 (the address genesis gives it).
    #[arg(long, global = true)]
    pub(crate) node: Option<String>,
    /// The genesis document you trust: the chain, the members' keys and each node's TLS
    /// identity come from it, never from a node's answer.
    #[arg(long, global = true, env = "CRADLE_GENESIS")]
    pub(crate) genesis: Option<PathBuf>,
    /// Talk plain HTTP to a node whose operator turned TLS off (`api.plaintext`): nothing it
    /// answers is authenticated, and anyone on the way can read what you send.
    #[arg(long, global = true)]
    pub(crate) insecure_plaintext: bool,
    /// Your key file (a member's, a patient's or a clinician's).
    #[arg(long, global = true)]
    pub(crate) key: Option<PathBuf>,
    /// How long, in seconds, the member sets another member's node last confirmed are taken
    /// as the newest before one is asked again: a key a vote rotated out is refused at most
    /// this long after the vote. 0 asks every time.
    #[arg(long, global = true, env = "CRADLE_SETS_MAX_AGE", value_name = "SECS")]
    pub(crate) sets_max_age: Option<u64>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Format {
    Table,
    Json,
}

/// Output of commands that can also export FHIR R4.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum RecordFormat {
    Table,
    Json,
    Fhir,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Write a new key (a patient's or clinician's) and print its public key. FILE.pub is
    /// public; given the consortium's genesis (--genesis or CRADLE_GENESIS), a patient's
    /// FILE.pub also carries her proof that she holds both keys, which a member needs to enrol
    /// her.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// The node's view of the chain: height, last block, state root, peers.
    Status {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// A committed block's header.
    Block {
        height: u64,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Patients (a member enrols them by their public keys).
    #[command(subcommand)]
    Patient(PatientCommand),
    /// Encrypted archives: put one for a patient, get one you may read.
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// A patient's consent: grant, revoke, list.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// An institution's clinicians (for its administrator): add, suspend, reinstate, retire,
    /// rotate-key, list.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// The consortium's members, voting power, limits and policy, changed by a vote of more
    /// than two thirds of the voting power: propose, approve, list.
    #[command(subcommand)]
    Governance(GovernanceCommand),
    /// Who read what: a patient's, an archive's or an institution's access history, or every
    /// break-glass access; or (for regulators) the validators caught equivocating. With
    /// --verify, checked from genesis without trusting the node.
    Audit(AuditArgs),
}

#[derive(clap::Args)]
#[command(
    group(clap::ArgGroup::new("subject").required(true)),
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    pub(crate) action: Option<AuditAction>,
    /// A patient's history: her public key (hex) or public key file.
    #[arg(long, group = "subject")]
    pub(crate) patient: Option<String>,
    /// One archive's history.
    #[arg(long, group = "subject")]
    pub(crate) archive: Option<String>,
    /// What one institution accessed: its name in genesis or its public key.
    #[arg(long, group = "subject")]
    pub(crate) accessor: Option<String>,
    /// Every break-glass access.
    #[arg(long, group = "subject")]
    pub(crate) break_glass: bool,
    /// The equivocation evidence the node holds: validators that signed two conflicting
    /// messages for one height, round and step (regulators only).
    #[arg(long, group = "subject", conflicts_with_all = ["from_ms", "checkpoint"])]
    pub(crate) evidence: bool,
    /// Only events from this time on (milliseconds since the Unix epoch, UTC).
    #[arg(long, requires = "to_ms")]
    pub(crate) from_ms: Option<u64>,
    /// Only events up to this time (inclusive).
    #[arg(long, requires = "from_ms")]
    pub(crate) to_ms: Option<u64>,
    /// Check the commit certificate, the state proof and completeness from genesis, and the
    /// log's consistency with the last checkpoint this client verified.
    #[arg(long)]
    pub(crate) verify: bool,
    /// With --verify, refuse an answer proven against a block older than this many seconds: a
    /// stale node could hide every access since (default: genesis's block interval plus 5 s).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) max_age: Option<u64>,
    /// Where the last verified checkpoint is kept (default ~/.cradle/checkpoint-CHAIN.json).
    #[arg(long)]
    pub(crate) checkpoint: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: RecordFormat,
}

#[derive(Subcommand)]
pub(crate) enum AuditAction {
    /// Record the commission's finding on a break-glass access (regulators only): ENTRY is
    /// the hash of the transaction that recorded it (`audit --break-glass --format json`,
    /// `tx_hash`). One review per access; the patient's history shows it.
    Review {
        entry: String,
        /// The emergency justified reading without consent.
        #[arg(long, group = "decision", required = true)]
        justified: bool,
        /// The emergency did not justify it.
        #[arg(long, group = "decision")]
        not_justified: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
pub(crate) enum PatientCommand {
    /// Enrol a patient: PUBKEY is her public key file with her proof (`cradle keygen` with the
    /// genesis, or `patient prove-keys`, wrote it), or her ed25519 public key in hex with
    /// --x25519 and --proof.
    Enrol {
        pubkey: String,
        /// Her X25519 public key in hex, when PUBKEY is given in hex.
        #[arg(long)]
        x25519: Option<String>,
        /// Her enrolment proof (a signature) in hex, when PUBKEY is given in hex.
        #[arg(long)]
        proof: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// A patient replaces her keys (signing with her current key, --key): NEW_PUBKEY is the
    /// public key file `cradle keygen --genesis` wrote on her new device. Her current key is
    /// refused from the next block; she stays the patient she enrolled as.
    RotateKey {
        new_pubkey: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// A member, with the patient present, recovers a patient who lost her key: PATIENT is the
    /// key she enrolled with (hex or file), NEW_PUBKEY the public key file made on her new
    /// device. Flagged in her history and to the regulators; the keys of the archives in your
    /// custody are wrapped again for her new key.
    Recover {
        patient: String,
        new_pubkey: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// A custodian wraps again, for the patient's current key, the keys of her archives in
    /// its custody (after she rotated her keys, or another member recovered her).
    Rewrap {
        patient: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// A patient proves, with her own key (--key), that she holds both her keys, for the
    /// consortium of --genesis: writes her public key file with the proof a member needs to
    /// enrol her.
    ProveKeys {
        /// Where to write it (default: KEY.pub beside --key).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
pub(crate) enum ArchiveCommand {
    /// Encrypt FILE here, upload it to your node and register it for the patient; prints the
    /// archive id.
    Put {
        file: PathBuf,
        /// The patient's public key (hex) or public key file.
        #[arg(long)]
        patient: String,
        /// prenatal-visit, ultrasound, lab-results, labour-and-delivery, postpartum,
        /// newborn-screening, immunization, referral or other.
        #[arg(long)]
        category: Category,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Fetch an archive from its custodian (the access is recorded on the ledger first),
    /// check it against the ledger and decrypt it into --out.
    Get {
        id: String,
        /// HL7 PurposeOfUse: TREAT, ETREAT, HRESCH, PUBHLTH, HOPERAT, HPAYMT, PATRQT, COC, ...
        #[arg(long)]
        purpose: Purpose,
        /// Why emergency (ETREAT) access is needed; required for break-glass. Sealed here for
        /// the patient and the regulators: it never leaves this machine in clear.
        #[arg(long)]
        justification: Option<String>,
        #[arg(long)]
        out: PathBuf,
        /// The custodian's node, when it is not --node.
        #[arg(long)]
        custodian: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
pub(crate) enum ConsentCommand {
    /// Allow a member institution to read your archives; prints the grant id.
    Grant {
        /// The member's name as genesis lists it, or its public key in hex.
        #[arg(long)]
        grantee: String,
        /// Purposes, comma-separated (TREAT, ETREAT, HRESCH, ...).
        #[arg(long, value_delimiter = ',', required = true)]
        purpose: Vec<Purpose>,
        /// all, categories:ultrasound,lab-results, or archives:ID,ID
        #[arg(long, default_value = "all")]
        scope: String,
        /// Only the grantee's clinicians of these roles, comma-separated (obstetrician,
        /// midwife, nurse, general-practitioner, emergency-physician, paediatrician,
        /// administrator); all its clinicians by default.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<StaffRole>,
        /// How long the grant lasts: 30d, 12h, 15m or 90s.
        #[arg(long)]
        expires: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Withdraw a grant; it stops covering reads from the next block on.
    Revoke {
        grant: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Your grants (or a patient's, with --patient), active and past.
    List {
        #[arg(long)]
        patient: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: RecordFormat,
    },
}

#[derive(Subcommand)]
pub(crate) enum StaffCommand {
    /// Register a clinician of your institution: PUBKEY is her public key file with her proof
    /// (`cradle keygen --genesis ...` wrote it on her machine). Her name and staff number stay
    /// in your node's directory, never on the ledger.
    Add {
        pubkey: String,
        /// obstetrician, midwife, nurse, general-practitioner, emergency-physician,
        /// paediatrician or administrator.
        #[arg(long)]
        role: StaffRole,
        /// obstetrics, midwifery, neonatology, emergency, maternal-child-health,
        /// general-practice, laboratory, imaging or administration.
        #[arg(long)]
        department: Department,
        #[arg(long)]
        name: String,
        #[arg(long)]
        staff_number: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Suspend a clinician (her current key, or its file): refused from the next block.
    Suspend {
        staff: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Reinstate a suspended clinician.
    Reinstate {
        staff: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Retire a clinician who left: refused for good from the next block.
    Retire {
        staff: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Replace a clinician's keys (a lost or stolen device): the old key is refused from the
    /// next block; NEW_PUBKEY is her new public key file with her proof.
    RotateKey {
        staff: String,
        new_pubkey: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Your institution's clinicians (or --institution's, for a regulator), every key ever
    /// registered, with names when asked of the institution's own node.
    List {
        #[arg(long)]
        institution: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
pub(crate) enum GovernanceCommand {
    /// Propose a change; your proposal counts as your approval. Prints its id.
    #[command(subcommand)]
    Propose(ProposeCommand),
    /// Approve an open proposal, by its id.
    Approve {
        id: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// The proposals and where each stands (open, adopted, expired, superseded).
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
pub(crate) enum ProposeCommand {
    /// Add an institution: PUBKEY is its public key file with its proof (`cradle keygen
    /// --genesis ...` on its own machine).
    AddMember {
        pubkey: PathBuf,
        #[arg(long)]
        name: String,
        /// hospital, clinic or regulator.
        #[arg(long)]
        role: cradle_ledger::Role,
        /// Its voting power; 0 for a member that does not validate (regulators).
        #[arg(long, default_value_t = 1)]
        power: u64,
        /// Its node's libp2p address, like /ip4/10.0.0.5/tcp/26600.
        #[arg(long)]
        p2p: Option<String>,
        /// Its node's API address, like 10.0.0.5:8600.
        #[arg(long)]
        api: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Remove a member (by name or public key): its key is refused for good from the height the
    /// change takes effect at.
    RemoveMember {
        member: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Replace a member's keys (by name or identity key) with the key whose public key file
    /// (`cradle keygen --genesis`, made where the new key stays) is PUBKEY: from the height
    /// the change takes effect at, the member signs, votes and decrypts with the new key, and
    /// its old signing key is refused. Install the key with `cradle-genesis rotate-key`.
    RotateKey {
        member: String,
        #[arg(long)]
        pubkey: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Give a member (by name or public key) another voting power.
    SetPower {
        member: String,
        power: u64,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// A new consent and access policy, from a JSON file shaped like genesis's `policy`.
    SetPolicy {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// New size limits, from a JSON file shaped like genesis's `limits`.
    SetLimits {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// New consensus timeouts, from a JSON file shaped like genesis's `consensus` timeouts
    /// (`timeout_propose_ms`, `timeout_prevote_ms`, `timeout_precommit_ms`,
    /// `timeout_delta_ms`).
    #[command(alias = "set-timeouts")]
    SetParam {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}
