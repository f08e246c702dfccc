//! A patient's public key file with her proof for enrolment.
//!
//! A member enrols a patient only with her proof: her signature, for one chain, over both her
//! public keys ([`EnrolPatient::prove`]), so no member can enrol her signing key with an X25519
//! key it holds. She makes the proof on her side, with her secret key, and hands it over in the
//! public file `cradle keygen` writes beside her key (`FILE.pub`):
//! ```json
//! { "public_key": "<hex ed25519>", "x25519_public": "<hex x25519>",
//!   "enrolment": { "chain_id": "<hex>", "proof": "<hex signature>" } }
//! ```
//! The file stays a public identity file (anything that reads `.pub` files reads this one), and
//! holds nothing secret.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use cradle_ledger::tx::EnrolPatient;
use cradle_ledger::{Digest32, Hash, Keypair, PublicKey, Signature, X25519Public};
use serde::{Deserialize, Serialize};

use super::{ClientError, io};

/// Largest public key file read, in bytes.
pub const PUBLIC_FILE_BYTES_MAX: u64 = 4096;

/// A patient's proof for one chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentProof {
    pub chain_id: Digest32,
    pub proof: Signature,
}

/// A public key file, with the patient's enrolment proof when she made one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyFile {
    pub public_key: PublicKey,
    pub x25519_public: X25519Public,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment: Option<EnrolmentProof>,
}

impl PublicKeyFile {
    /// The public half of `key` with its proof for enrolment on `chain_id`.
    pub fn proven(key: &Keypair, chain_id: &Hash) -> Self {
        let e = EnrolPatient::prove(key, chain_id);
        Self {
            public_key: e.patient,
            x25519_public: e.x25519,
            enrolment: Some(EnrolmentProof {
                chain_id: Digest32(*chain_id),
                proof: e.proof,
            }),
        }
    }

    /// The enrolment this file proves for `chain_id`, its proof checked here; a clear refusal
    /// when the file carries no proof, or one for another chain, or one that does not verify.
    pub fn enrolment_for(&self, chain_id: &Hash) -> Result<EnrolPatient, ClientError> {
        let Some(e) = self.enrolment else {
            return Err(ClientError::Invalid(
                "no enrolment proof: the patient makes it with her own key, \
                 `cradle --key HER_KEY patient prove-keys --genesis GENESIS`"
                    .into(),
            ));
        };
        if &e.chain_id.0 != chain_id {
            return Err(ClientError::Invalid(format!(
                "the enrolment proof is for chain {}, this node's chain is {}: the patient \
                 makes one for this consortium with `cradle --key HER_KEY patient prove-keys \
                 --genesis GENESIS`",
                e.chain_id,
                Digest32(*chain_id)
            )));
        }
        let enrolment = EnrolPatient {
            patient: self.public_key,
            x25519: self.x25519_public,
            proof: e.proof,
        };
        enrolment.verify_proof(chain_id)?;
        Ok(enrolment)
    }
}

/// Reads a public key file (at most [`PUBLIC_FILE_BYTES_MAX`] bytes).
pub fn read_public_key_file(path: &Path) -> Result<PublicKeyFile, ClientError> {
    let what = || format!("reading {}", path.display());
    let file = std::fs::File::open(path).map_err(io(what()))?;
    let mut text = String::new();
    file.take(PUBLIC_FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(io(what()))?;
    if text.len() as u64 > PUBLIC_FILE_BYTES_MAX {
        return Err(ClientError::Invalid(format!(
            "{} is larger than a public key file ({PUBLIC_FILE_BYTES_MAX} bytes)",
            path.display()
        )));
    }
    serde_json::from_str(&text).map_err(|e| {
        ClientError::Invalid(format!(
            "{} is not a public key file (line {} column {})",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

/// Writes a public key file (mode 0644), replacing any file at `path` atomically.
pub fn write_public_key_file(path: &Path, file: &PublicKeyFile) -> Result<(), ClientError> {
    let what = || format!("writing {}", path.display());
    let mut json = serde_json::to_vec_pretty(file)
        .map_err(|e| ClientError::Invalid(format!("encoding the public key file: {e}")))?;
    json.push(b'\n');
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io(what()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_proven_file_round_trips_and_enrols_only_on_its_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("patient.key.pub");
        let key = Keypair::from_seed(&[5; 32]);
        let chain = [1u8; 32];
        write_public_key_file(&path, &PublicKeyFile::proven(&key, &chain)).unwrap();
        let file = read_public_key_file(&path).unwrap();
        let e = file.enrolment_for(&chain).unwrap();
        assert_eq!(e, EnrolPatient::prove(&key, &chain));
        let other = file.enrolment_for(&[2; 32]).unwrap_err().to_string();
        assert!(other.contains("is for chain"), "{other}");
        // Another X25519 key put in the file breaks the proof.
        let swapped = PublicKeyFile {
            x25519_public: Keypair::from_seed(&[6; 32]).x25519_public(),
            ..file
        };
        assert!(matches!(
            swapped.enrolment_for(&chain),
            Err(ClientError::Ledger(
                cradle_ledger::Error::BadEnrolmentProof(_)
            ))
        ));
        let bare = PublicKeyFile {
            enrolment: None,
            ..file
        };
        let none = bare.enrolment_for(&chain).unwrap_err().to_string();
        assert!(none.contains("prove-keys"), "{none}");
    }
}
