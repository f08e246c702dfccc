//! Transactions: what the consortium records, signed by who may do them.
//!
//! A transaction names its chain and carries a per-signer nonce that must grow strictly, so it
//! can be applied once and only on the chain it was signed for. Its signature covers
//! `TAG_TRANSACTION || chain_id || borsh(Transaction)`.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::access::{AccessOutcome, SignedAccessRequest};
use crate::codec::{self, BoundedVec};
use crate::crypto::{
    self, ArchiveId, Digest32, GrantId, Hash, Keypair, PublicKey, Signature, TAG_ENROLMENT,
    TAG_TRANSACTION, X25519Public,
};
use crate::error::Error;
use crate::staff::{RegisterStaff, RotateStaffKey, SetStaffStatus, StaffRole};

/// Most grants a newly registered archive can carry wrapped keys for.
pub const GRANT_KEYS_MAX: usize = 256;
/// Most archive keys one grant can carry.
pub const ARCHIVE_KEYS_MAX: usize = 1024;
/// Most purposes or categories one grant can name.
pub const GRANT_CODES_MAX: usize = 16;
/// Most archive ids one grant's scope can list.
pub const SCOPE_ARCHIVES_MAX: usize = 256;
/// Most transactions in one batch: a client's `POST /v1/txs/batch`, or one gossip message
/// between nodes.
/// How far ahead of its block's time (in microseconds) a transaction's nonce may be: a day.
/// Clients and custodians take nonces from the clock, so an honest nonce is never near it.
pub const NONCE_AHEAD_MAX_US: u64 = 24 * 3600 * 1_000_000;

pub const TX_BATCH_MAX: usize = 4096;
/// Largest encoded [`TxBatch`] a node reads from a client.
pub const TX_BATCH_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Encoded signed transactions sent together, each checked by the receiver on its own.
pub type TxBatch = BoundedVec<Vec<u8>, TX_BATCH_MAX>;

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $value:expr, $code:expr, $doc:expr;)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
        #[borsh(use_discriminant = true)]
        #[repr(u8)]
        pub enum $name { $(#[doc = $doc] $variant = $value,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code,)* }
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                match s {
                    $($code => Ok($name::$variant),)*
                    other => Err(Error::UnknownCode { what: stringify!($name), code: other.to_string() }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.code())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use code_enum;

code_enum!(
    /// What kind of maternal or newborn record an archive holds.
    Category {
        PrenatalVisit = 1, "prenatal-visit", "Antenatal care visit notes and measurements.";
        Ultrasound = 2, "ultrasound", "Obstetric ultrasound reports and images.";
        LabResults = 3, "lab-results", "Laboratory results (blood group, serology, glucose tolerance, ...).";
        LabourAndDelivery = 4, "labour-and-delivery", "Labour, delivery and birth records.";
        Postpartum = 5, "postpartum", "Postpartum care of the mother.";
        NewbornScreening = 6, "newborn-screening", "Newborn screening and examination.";
        Immunization = 7, "immunization", "Immunisation records of mother or newborn.";
        Referral = 8, "referral", "Referral letters between institutions.";
        Other = 9, "other", "Any other maternal or child health record.";
    }
);

code_enum!(
    /// Why an archive is read: HL7 v3 PurposeOfUse codes.
    Purpose {
        Treat = 1, "TREAT", "Treatment.";
        EmergencyTreat = 2, "ETREAT", "Emergency treatment (break-glass when no grant covers it).";
        Research = 3, "HRESCH", "Healthcare research.";
        PublicHealth = 4, "PUBHLTH", "Public health.";
        Operations = 5, "HOPERAT", "Healthcare operations.";
        Payment = 6, "HPAYMT", "Healthcare payment.";
        PatientRequest = 7, "PATRQT", "Requested by the patient.";
        CareCoordination = 8, "COC", "Coordination of care.";
        Oversight = 9, "HSYSADMIN", "Health system administration and oversight.";
    }
);

/// An archive key sealed to one recipient: ephemeral X25519 public key and the AES-256-GCM
/// ciphertext of the 32-byte key with its 16-byte tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WrappedKey {
    pub ephemeral: X25519Public,
    pub sealed: [u8; 48],
}

impl WrappedKey {
    /// Hex of `ephemeral || sealed`, as JSON and HTTP headers carry it.
    pub fn to_hex(&self) -> String {
        let mut bytes = [0u8; 80];
        bytes[..32].copy_from_slice(&self.ephemeral.0);
        bytes[32..].copy_from_slice(&self.sealed);
        hex::encode(bytes)
    }

    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let mut bytes = [0u8; 80];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| Error::BadHex {
            what: "wrapped key",
            len: 80,
        })?;
        let mut ephemeral = [0u8; 32];
        ephemeral.copy_from_slice(&bytes[..32]);
        let mut sealed = [0u8; 48];
        sealed.copy_from_slice(&bytes[32..]);
        Ok(Self {
            ephemeral: X25519Public(ephemeral),
            sealed,
        })
    }
}

impl Serialize for WrappedKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for WrappedKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// Which of a patient's archives a grant covers.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    All,
    Categories(BoundedVec<Category, GRANT_CODES_MAX>),
    Archives(BoundedVec<ArchiveId, SCOPE_ARCHIVES_MAX>),
}

impl Scope {
    pub fn covers(&self, archive: &ArchiveId, category: Category) -> bool {
        match self {
            Scope::All => true,
            Scope::Categories(cs) => cs.contains(&category),
            Scope::Archives(ids) => ids.contains(archive),
        }
    }
}

/// A member enrols a patient: public keys only, never a name or national ID, with her proof
/// that she holds the signing key and chose the X25519 key, so no member can pair her identity
/// with an X25519 key of its own (and open the archive keys wrapped for her).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EnrolPatient {
    pub patient: PublicKey,
    pub x25519: X25519Public,
    /// The patient's signature over `TAG_ENROLMENT || chain_id || borsh((patient, x25519))`.
    pub proof: Signature,
}

/// The holder of a key pair's proof, for one chain, that she holds the signing key and chose
/// the X25519 key: her signature over `TAG_ENROLMENT || chain_id || borsh((key, x25519))`. A
/// patient's enrolment and a clinician's registration carry it.
pub fn prove_keys(holder: &Keypair, chain_id: &Hash) -> (PublicKey, X25519Public, Signature) {
    let keys = (holder.public_key(), holder.x25519_public());
    let proof = holder.sign(TAG_ENROLMENT, chain_id, &keys);
    (keys.0, keys.1, proof)
}

/// The bytes a [`prove_keys`] proof signs.
pub fn key_proof_signing_bytes(key: &PublicKey, x25519: &X25519Public, chain_id: &Hash) -> Vec<u8> {
    crypto::signing_bytes(TAG_ENROLMENT, chain_id, &(*key, *x25519))
}

/// Checks a [`prove_keys`] proof.
pub fn verify_key_proof(
    key: &PublicKey,
    x25519: &X25519Public,
    proof: &Signature,
    chain_id: &Hash,
) -> Result<(), Error> {
    key.verify(TAG_ENROLMENT, chain_id, &(*key, *x25519), proof)
        .map_err(|_| Error::BadEnrolmentProof(*key))
}

impl EnrolPatient {
    /// The patient's own enrolment on `chain_id`: her keys and her proof over both.
    pub fn prove(patient: &Keypair, chain_id: &Hash) -> Self {
        let (patient, x25519, proof) = prove_keys(patient, chain_id);
        Self {
            patient,
            x25519,
            proof,
        }
    }

    /// The bytes the patient signed for `chain_id`.
    pub fn proof_signing_bytes(&self, chain_id: &Hash) -> Vec<u8> {
        key_proof_signing_bytes(&self.patient, &self.x25519, chain_id)
    }

    /// Checks the patient's proof for `chain_id`.
    pub fn verify_proof(&self, chain_id: &Hash) -> Result<(), Error> {
        verify_key_proof(&self.patient, &self.x25519, &self.proof, chain_id)
    }
}

/// The custodian's wrapped key for one grant, carried by a new archive's registration.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GrantKey {
    pub grant: GrantId,
    pub key: WrappedKey,
}

/// A custodian registers an encrypted archive it holds for a patient.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RegisterArchive {
    pub archive: ArchiveId,
    /// The institution that holds the ciphertext: the signer, or the institution of the
    /// clinician who signs on its behalf.
    pub custodian: PublicKey,
    pub patient: PublicKey,
    /// SHA-256 of the whole ciphertext as the custodian stores and serves it.
    pub ciphertext_sha256: Hash,
    pub size_bytes: u64,
    pub category: Category,
    pub key_for_patient: WrappedKey,
    pub key_for_custodian: WrappedKey,
    /// The archive key wrapped for every active grant of the patient that covers this archive.
    pub grant_keys: BoundedVec<GrantKey, GRANT_KEYS_MAX>,
}

/// One archive key a grant hands its grantee.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ArchiveKey {
    pub archive: ArchiveId,
    pub key: WrappedKey,
}

/// A patient allows an institution to read some of her archives, for some purposes, for a time.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GrantConsent {
    pub grantee: PublicKey,
    pub scope: Scope,
    pub purposes: BoundedVec<Purpose, GRANT_CODES_MAX>,
    /// The grantee's clinicians it covers, by role; empty covers every active clinician.
    pub roles: BoundedVec<StaffRole, GRANT_CODES_MAX>,
    pub valid_from_ms: u64,
    pub expires_at_ms: u64,
    /// The key of every existing archive the scope covers, wrapped for the grantee.
    pub archive_keys: BoundedVec<ArchiveKey, ARCHIVE_KEYS_MAX>,
}

/// A patient withdraws a grant; it stops covering reads from the next block on.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RevokeConsent {
    pub grant: GrantId,
}

/// The custodian records a request to read one of its archives and the rule's outcome.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RecordAccess {
    pub request: SignedAccessRequest,
    /// The grant the rule found (for a permitted read by a grantee).
    pub grant: Option<GrantId>,
    pub outcome: AccessOutcome,
}

code_enum!(
    /// A regulator's finding on one break-glass access. A fixed code, never free text: the
    /// finding is written into the patient's history, which holds no words of anyone's.
    ReviewDecision {
        Justified = 1, "justified", "The emergency justified reading without consent.";
        NotJustified = 2, "not_justified", "The emergency did not justify reading without consent.";
    }
);

/// A regulator's review of one break-glass access, named by the hash of the transaction that
/// recorded it. One review per access, for good: a second is refused. The review is logged
/// like an access, in the patient's history and the break-glass log, so she sees the
/// commission's finding in her verified history.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReviewAccess {
    /// The hash of the `RecordAccess` transaction of the break-glass access.
    pub entry: Digest32,
    pub decision: ReviewDecision,
}

/// A patient replaces her keys, signing with her current key; the new key proves itself.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RotatePatientKey {
    pub new_key: PublicKey,
    pub new_x25519: X25519Public,
    /// The new key's proof over both new keys ([`prove_keys`]), made on her own device.
    pub proof: Signature,
}

/// A care-providing member recovers a patient who lost her key, with her present: her new
/// device proves the new keys, the member vouches for her. Flagged in her history and the
/// regulators' view.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RecoverPatient {
    /// The key she enrolled with: who she is on the ledger.
    pub patient: PublicKey,
    pub new_key: PublicKey,
    pub new_x25519: X25519Public,
    pub proof: Signature,
}

/// An archive's custodian wraps its key again for the patient's current X25519 key, after her
/// keys changed.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RewrapForPatient {
    pub archive: ArchiveId,
    pub key_for_patient: WrappedKey,
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TxBody {
    EnrolPatient(EnrolPatient),
    RegisterArchive(RegisterArchive),
    GrantConsent(GrantConsent),
    RevokeConsent(RevokeConsent),
    RecordAccess(RecordAccess),
    RegisterStaff(RegisterStaff),
    SetStaffStatus(SetStaffStatus),
    RotateStaffKey(RotateStaffKey),
    ProposeChange(crate::governance::ProposeChange),
    ApproveChange(crate::governance::ApproveChange),
    RotatePatientKey(RotatePatientKey),
    RecoverPatient(RecoverPatient),
    RewrapForPatient(RewrapForPatient),
    ReviewAccess(ReviewAccess),
}

impl TxBody {
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::EnrolPatient(_) => "enrol_patient",
            TxBody::RegisterArchive(_) => "register_archive",
            TxBody::GrantConsent(_) => "grant_consent",
            TxBody::RevokeConsent(_) => "revoke_consent",
            TxBody::RecordAccess(_) => "record_access",
            TxBody::RegisterStaff(_) => "register_staff",
            TxBody::SetStaffStatus(_) => "set_staff_status",
            TxBody::RotateStaffKey(_) => "rotate_staff_key",
            TxBody::ProposeChange(_) => "propose_change",
            TxBody::ApproveChange(_) => "approve_change",
            TxBody::RotatePatientKey(_) => "rotate_patient_key",
            TxBody::RecoverPatient(_) => "recover_patient",
            TxBody::RewrapForPatient(_) => "rewrap_for_patient",
            TxBody::ReviewAccess(_) => "review_access",
        }
    }
}

/// The signed content of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transaction {
    pub chain_id: Hash,
    pub signer: PublicKey,
    /// Must be greater than every nonce this signer used before.
    pub nonce: u64,
    pub body: TxBody,
}

/// A transaction with its signature: what clients submit and blocks carry.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

impl Transaction {
    pub fn sign(self, key: &Keypair) -> SignedTransaction {
        let signature = key.sign(TAG_TRANSACTION, &self.chain_id, &self);
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

impl SignedTransaction {
    /// The canonical bytes: what is hashed, gossiped and stored.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a transaction of at most `max_len` bytes; checks nothing else.
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Self, Error> {
        codec::decode(bytes, max_len)
    }

    /// SHA-256 of the canonical bytes.
    pub fn hash(&self) -> Hash {
        crypto::sha256(&self.encode())
    }

    /// The bytes the signer signed.
    pub fn signing_bytes(&self) -> Vec<u8> {
        crypto::signing_bytes(TAG_TRANSACTION, &self.tx.chain_id, &self.tx)
    }

    /// Checks the chain id and the signer's signature (and, for an access record, the
    /// accessor's signature on the embedded request; for an enrolment, the patient's proof; for
    /// a clinician's registration or new keys, her proof).
    pub fn verify(&self, chain_id: &Hash) -> Result<(), Error> {
        if &self.tx.chain_id != chain_id {
            return Err(Error::WrongChain);
        }
        self.tx
            .signer
            .verify(TAG_TRANSACTION, chain_id, &self.tx, &self.signature)?;
        match &self.tx.body {
            TxBody::RecordAccess(r) => r.request.verify(chain_id)?,
            TxBody::EnrolPatient(e) => e.verify_proof(chain_id)?,
            TxBody::RegisterStaff(r) => r.keys.verify_proof(chain_id)?,
            TxBody::RotateStaffKey(r) => r.new_keys.verify_proof(chain_id)?,
            TxBody::ProposeChange(p) => p.change.verify(chain_id)?,
            TxBody::RotatePatientKey(r) => {
                verify_key_proof(&r.new_key, &r.new_x25519, &r.proof, chain_id)?
            }
            TxBody::RecoverPatient(r) => {
                verify_key_proof(&r.new_key, &r.new_x25519, &r.proof, chain_id)?
            }
            _ => {}
        }
        Ok(())
    }
}

/// A grant's id: SHA-256 over a tag, the patient and the nonce of the granting transaction, so
/// the patient's client knows it before the grant is committed.
pub fn grant_id(patient: &PublicKey, nonce: u64) -> GrantId {
    GrantId(crypto::sha256_parts(&[
        b"cradle.grant-id.v1\0",
        &patient.0,
        &nonce.to_le_bytes(),
    ]))
}
