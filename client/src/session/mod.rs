//! What a member, patient or clinician does through a node: enrol patients, put and get
//! encrypted archives, grant and revoke consent.
//!
//! Everything secret happens here, on the client: archive keys are made here, archives are
//! encrypted here before upload and decrypted here after download, and archive keys leave only
//! wrapped for their recipients. The node sees ciphertext, hashes and wrapped keys.
//! Putting and getting archives is in [`archives`]; a patient's public key file with her proof
//! for enrolment in [`enrolment`]; break-glass justifications, sealed for the patient and the
//! regulators and opened in their audits, in [`justification`].

use std::time::Duration;

use cradle_ledger::access::{AccessRequest, SignedAccessRequest};
use cradle_ledger::api_request::AUTH_HEADER;
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::crypto::{TAG_ACCESS_REQUEST, sha256};
use cradle_ledger::keywrap::{unwrap_key, wrap_key};
use cradle_ledger::state::{ArchiveRecord, GrantRecord, PatientRecord};
use cradle_ledger::tx::{
    ArchiveKey as GrantArchiveKey, Category, EnrolPatient, GrantConsent, GrantKey, Purpose,
    RegisterArchive, RevokeConsent, Scope, Transaction, TxBody, WrappedKey, grant_id,
};
use cradle_ledger::{ArchiveId, GrantId, Hash, Keypair, PublicKey, X25519Public};
use serde::Deserialize;
use serde_json::Value;

use cradle_genesis::GenesisDoc;
use cradle_genesis::clock::{now_ms, now_us};
use cradle_genesis::durable::FlushingFile;
use cradle_ledger::audit::{
    AuditSubject, RecordAnswer, verify_answer, verify_archive, verify_patient,
};

use crate::api::{ApiClient, ApiError};
use crate::seal::{self, ArchiveKey, SealError};
use crate::tls::Pins;
use crate::trust::{Checked, TrustConfig, TrustError};

mod archives;
pub mod enrolment;
pub mod governance;
pub mod justification;
pub mod patient_keys;
pub mod review;
pub mod staff;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("{0}")]
    Ledger(#[from] cradle_ledger::Error),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The custodian recorded the request and refused it.
    #[error("{reason} (recorded on the ledger in transaction {access_tx})")]
    Denied { reason: String, access_tx: String },
    #[error("{0}")]
    Invalid(String),
    /// A node's answer did not prove what it claimed, from genesis.
    #[error("the node's answer is not proven: {0}")]
    Unproven(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClientError {
    let what = what.into();
    move |source| ClientError::Io { what, source }
}

fn bad_answer(what: &str) -> ClientError {
    ClientError::Api(ApiError::BadAnswer(format!("missing or malformed {what}")))
}

/// A member of the consortium as the trusted genesis file lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct MemberInfo {
    pub name: String,
    pub role: String,
    pub public_key: PublicKey,
    pub x25519_public: X25519Public,
}

/// A committed transaction.
#[derive(Clone, Debug)]
pub struct Receipt {
    pub hash: String,
    pub height: u64,
}

/// What `archive put` did.
#[derive(Clone, Debug)]
pub struct PutReceipt {
    pub archive: ArchiveId,
    pub ciphertext_sha256: Hash,
    pub ciphertext_bytes: u64,
    pub plaintext_bytes: u64,
    pub grants_covered: usize,
    pub tx: Receipt,
}

/// What `archive get` did.
#[derive(Clone, Debug)]
pub struct GetReceipt {
    pub plaintext_bytes: u64,
    pub outcome: String,
    pub access_tx: String,
}

/// Reports transfer progress, in bytes.
pub trait Progress {
    fn start(&self, _what: &str, _total: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// No progress reporting.
pub struct Quiet;
impl Progress for Quiet {}

/// A key holder talking to one node.
pub struct Session {
    pub api: ApiClient,
    pub key: Keypair,
    pub chain_id: Hash,
    /// The consortium as the genesis file this client trusts describes it: member keys come
    /// from here, never from a node's answer.
    pub genesis: GenesisDoc,
    /// The member sets from genesis on, each change proven by a certified header: proofs are
    /// checked with the set in force at their own height.
    pub sets: cradle_ledger::governance::Sets,
    /// What the client went on without while checking the node (see [`Checked::notes`]).
    pub notes: Vec<String>,
}

/// How many times a transaction is re-signed when its nonce lost a race.
const NONCE_RETRIES: usize = 4;

impl Session {
    /// A session with the node at `node_url`, trusting `genesis` for the chain id and the
    /// members' first keys, and the member sets verified from it (see [`crate::trust`]) for
    /// the keys that sign for them now, the node's TLS identity among them.
    pub fn connect(node_url: &str, genesis: GenesisDoc, key: Keypair) -> Result<Self, ClientError> {
        let config = TrustConfig::from_env()?;
        Self::connect_with(node_url, genesis, key, &config)
    }

    /// [`Session::connect`] with the trust settings given.
    pub fn connect_with(
        node_url: &str,
        genesis: GenesisDoc,
        key: Keypair,
        config: &TrustConfig,
    ) -> Result<Self, ClientError> {
        let checked = crate::trust::connect(node_url, &genesis, Some(&key), config)?;
        Ok(Self::checked(checked, genesis, key))
    }

    /// A session over a client already made (a plain-HTTP node, or one pinned by hand),
    /// whose node is checked as [`crate::trust`] says.
    pub fn over(api: ApiClient, genesis: GenesisDoc, key: Keypair) -> Result<Self, ClientError> {
        let config = TrustConfig::from_env()?;
        Self::over_with(api, genesis, key, &config)
    }

    /// [`Session::over`] with the trust settings given.
    pub fn over_with(
        api: ApiClient,
        genesis: GenesisDoc,
        key: Keypair,
        config: &TrustConfig,
    ) -> Result<Self, ClientError> {
        let api = api.signed_by(&key, genesis.chain_id());
        let checked = crate::trust::check(api, &genesis, Some(&key), config)?;
        Ok(Self::checked(checked, genesis, key))
    }

    fn checked(checked: Checked, genesis: GenesisDoc, key: Keypair) -> Self {
        Self {
            api: checked.api,
            key,
            chain_id: genesis.chain_id(),
            genesis,
            sets: checked.sets,
            notes: checked.notes,
        }
    }

    /// The consortium in force at the newest height this client followed.
    pub fn consortium(&self) -> &cradle_ledger::Consortium {
        self.sets.latest()
    }

    fn next_nonce(&self) -> Result<u64, ClientError> {
        let last = self.api.last_nonce(&self.key.public_key().to_hex())?;
        // A nonce from the node is outside input: at the top of the range this key can sign
        // nothing more, which is an error to report, not an overflow.
        let next = match last {
            None => 0,
            Some(l) => l.checked_add(1).ok_or_else(|| {
                ClientError::Invalid(
                    "this key's nonce is exhausted on the ledger: it can sign nothing more".into(),
                )
            })?,
        };
        Ok(now_us().max(next))
    }

    /// Signs `body` with a fresh nonce, submits it and waits for its commit.
    pub fn submit(&self, body: TxBody) -> Result<Receipt, ClientError> {
        self.submit_nonce(body).map(|(r, _)| r)
    }

    /// Like [`Session::submit`], also returning the nonce used (a grant's id derives from it).
    fn submit_nonce(&self, body: TxBody) -> Result<(Receipt, u64), ClientError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let nonce = self.next_nonce()?;
            let tx = Transaction {
                chain_id: self.chain_id,
                signer: self.key.public_key(),
                nonce,
                body: body.clone(),
            }
            .sign(&self.key);
            match self.api.submit(&tx.encode(), true) {
                Ok(v) => {
                    let hash = v
                        .get("hash")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad_answer("transaction hash"))?
                        .to_string();
                    let height = v
                        .get("height")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| bad_answer("height"))?;
                    return Ok((Receipt { hash, height }, nonce));
                }
                // Another client of the same key took the nonce: sign again.
                Err(ApiError::Refused {
                    status: 409,
                    reason,
                    ..
                }) if attempt < NONCE_RETRIES && reason.contains("nonce") => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The signed-request header for `method path` with a body hashing to `body_sha256`.
    fn auth(&self, method: &str, path: &str, body_sha256: Hash) -> Result<String, ClientError> {
        Ok(self
            .api
            .auth_with(&self.key, &self.chain_id, method, path, body_sha256)?)
    }

    /// The consortium's members: from the trusted genesis file, and the governance changes
    /// followed from it.
    pub fn members(&self) -> Result<Vec<MemberInfo>, ClientError> {
        Ok(self
            .consortium()
            .members
            .iter()
            .map(|m| MemberInfo {
                name: m.name.clone(),
                role: m.role.as_str().to_string(),
                public_key: m.public_key,
                x25519_public: m.x25519,
            })
            .collect())
    }

    /// A member by name or public key.
    pub fn member(&self, name_or_key: &str) -> Result<MemberInfo, ClientError> {
        let members = self.members()?;
        members
            .iter()
            .find(|m| m.name == name_or_key || m.public_key.to_hex() == name_or_key)
            .cloned()
            .ok_or_else(|| {
                ClientError::Invalid(format!(
                    "no member {name_or_key:?} in the consortium (members: {})",
                    members
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// A patient's record (her keys), proven from genesis against a certified header.
    pub fn patient(&self, patient: &PublicKey) -> Result<PatientRecord, ClientError> {
        let bytes = self
            .api
            .get_bytes(&format!("/v1/patients/{}/proof", patient.to_hex()))?;
        let answer =
            RecordAnswer::decode(&bytes).map_err(|e| ClientError::Unproven(e.to_string()))?;
        let (rec, _) = verify_patient(&self.sets, &answer, patient)
            .map_err(|e| ClientError::Unproven(e.to_string()))?;
        rec.ok_or_else(|| ClientError::Invalid("no such patient is enrolled".into()))
    }

    /// An archive's record, proven from genesis against a certified header: the hash a
    /// download is checked against cannot come from one node's word.
    pub fn archive_record(&self, id: &ArchiveId) -> Result<ArchiveRecord, ClientError> {
        let bytes = self
            .api
            .get_bytes(&format!("/v1/archives/{}/proof", id.to_hex()))?;
        let answer =
            RecordAnswer::decode(&bytes).map_err(|e| ClientError::Unproven(e.to_string()))?;
        let (rec, _) = verify_archive(&self.sets, &answer, id)
            .map_err(|e| ClientError::Unproven(e.to_string()))?;
        rec.ok_or_else(|| ClientError::Invalid("no such archive on the ledger".into()))
    }

    pub fn patient_archives(
        &self,
        patient: &PublicKey,
    ) -> Result<Vec<(ArchiveId, ArchiveRecord)>, ClientError> {
        let v = self
            .api
            .get_json(&format!("/v1/patients/{}/archives", patient.to_hex()))?;
        let list = v
            .get("archives")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_answer("archive list"))?;
        list.iter()
            .map(|item| {
                let id: ArchiveId =
                    serde_json::from_value(item.get("archive").cloned().unwrap_or(Value::Null))
                        .map_err(|_| bad_answer("archive id"))?;
                Ok((id, record(item, "archive record")?))
            })
            .collect()
    }

    /// Every grant the patient gave (revoked and expired included), with grantee names.
    pub fn grants(
        &self,
        patient: &PublicKey,
    ) -> Result<Vec<(GrantId, GrantRecord, Option<String>)>, ClientError> {
        let v = self
            .api
            .get_json(&format!("/v1/patients/{}/grants", patient.to_hex()))?;
        let list = v
            .get("grants")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_answer("grant list"))?;
        list.iter()
            .map(|item| {
                let id: GrantId =
                    serde_json::from_value(item.get("grant").cloned().unwrap_or(Value::Null))
                        .map_err(|_| bad_answer("grant id"))?;
                let name = item
                    .get("grantee_name")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                Ok((id, record(item, "grant record")?, name))
            })
            .collect()
    }

    /// A member enrols a patient by her public keys, with the proof she made for this chain
    /// ([`EnrolPatient::prove`]); the proof is checked here before anything is sent.
    pub fn enrol_patient(&self, enrolment: EnrolPatient) -> Result<Receipt, ClientError> {
        enrolment.verify_proof(&self.chain_id)?;
        self.submit(TxBody::EnrolPatient(enrolment))
    }

    /// The patient grants `grantee`'s clinicians (those of `roles`, or all if it is empty)
    /// access to the archives `scope` covers, for `purposes`, from `valid_from_ms` until
    /// `expires_at_ms`; the keys of every covered archive that exists now are unwrapped here
    /// and wrapped for the grantee.
    #[allow(clippy::too_many_arguments)]
    pub fn grant(
        &self,
        grantee: &MemberInfo,
        scope: Scope,
        purposes: Vec<Purpose>,
        roles: Vec<cradle_ledger::staff::StaffRole>,
        valid_from_ms: u64,
        expires_at_ms: u64,
    ) -> Result<(GrantId, Receipt), ClientError> {
        // Her records name the key she enrolled with, whichever key signs for her now.
        let me = self.identity()?;
        let mut archive_keys = Vec::new();
        for (id, rec) in self.patient_archives(&me)? {
            if !scope.covers(&id, rec.category) {
                continue;
            }
            let key = unwrap_key(&rec.key_for_patient, &id, &self.key)?;
            archive_keys.push(GrantArchiveKey {
                archive: id,
                key: wrap_key(&key, &id, &grantee.x25519_public)?,
            });
        }
        let (receipt, nonce) = self.submit_nonce(TxBody::GrantConsent(GrantConsent {
            grantee: grantee.public_key,
            scope,
            purposes: BoundedVec::new(purposes)?,
            roles: BoundedVec::new(roles)?,
            valid_from_ms,
            expires_at_ms,
            archive_keys: BoundedVec::new(archive_keys)?,
        }))?;
        Ok((grant_id(&me, nonce), receipt))
    }

    pub fn revoke(&self, grant: GrantId) -> Result<Receipt, ClientError> {
        self.submit(TxBody::RevokeConsent(RevokeConsent { grant }))
    }
}

fn record<T: serde::de::DeserializeOwned>(v: &Value, what: &str) -> Result<T, ClientError> {
    serde_json::from_value(v.get("record").cloned().unwrap_or(Value::Null))
        .map_err(|_| bad_answer(what))
}
