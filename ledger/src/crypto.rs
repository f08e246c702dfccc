//! Keys, hashes and domain-separated signatures.
//!
//! Every signature in Cradle is ed25519 over `tag || chain_id || borsh(payload)`. Tags are
//! NUL-terminated so no tag is a prefix of another: a signature made for one kind of message, or
//! for one chain, never verifies as another.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::Error;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Signing tag of a transaction.
pub const TAG_TRANSACTION: &[u8] = b"cradle.ledger.transaction.v1\0";
/// Signing tag of an accessor's request to read an archive, embedded in an access record.
pub const TAG_ACCESS_REQUEST: &[u8] = b"cradle.ledger.access-request.v1\0";
/// Signing tag of a patient's proof that she holds the keys a member enrols her with.
pub const TAG_ENROLMENT: &[u8] = b"cradle.ledger.patient-enrolment.v1\0";
/// Signing tag of an authenticated API request (method, path, body hash, time, nonce).
pub const TAG_API_REQUEST: &[u8] = b"cradle.api.request.v1\0";

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// SHA-256 over several byte strings, in order, without copying them together.
pub fn sha256_parts(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `tag || chain_id || borsh(payload)`: the bytes every Cradle signature covers.
pub fn signing_bytes<T: BorshSerialize>(tag: &[u8], chain_id: &Hash, payload: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + 32 + 256);
    out.extend_from_slice(tag);
    out.extend_from_slice(chain_id);
    // Serialising into a Vec cannot fail: the writer never errors.
    let _ = borsh::to_writer(&mut out, payload);
    out
}

macro_rules! key_bytes_type {
    ($name:ident, $len:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize,
        )]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            pub fn from_hex(s: &str) -> Result<Self, Error> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(s.trim(), &mut out).map_err(|_| Error::BadHex {
                    what: stringify!($name),
                    len: $len,
                })?;
                Ok(Self(out))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({}…)", stringify!($name), &self.to_hex()[..12])
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as Deserialize>::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::from_hex(s)
            }
        }
    };
}

key_bytes_type!(
    PublicKey,
    32,
    "An ed25519 public key: the identity of a member, patient or clinician."
);
key_bytes_type!(
    X25519Public,
    32,
    "An X25519 public key, to which archive keys are wrapped."
);
key_bytes_type!(Signature, 64, "An ed25519 signature.");
key_bytes_type!(
    Digest32,
    32,
    "A 32-byte digest (block or transaction hash), shown as hex."
);
key_bytes_type!(
    ArchiveId,
    32,
    "An archive's identifier, chosen at random by its custodian."
);
key_bytes_type!(
    StaffId,
    16,
    "A clinician's pseudonymous id: the same across her key rotations, never her name."
);
key_bytes_type!(
    GrantId,
    32,
    "A consent grant's identifier, derived from the patient and nonce."
);
key_bytes_type!(
    ProposalId,
    32,
    "A governance proposal's identifier, derived from its proposer and nonce."
);

impl PublicKey {
    /// Parses the key as an ed25519 point; an invalid point can never have signed anything.
    pub fn verifying_key(&self) -> Result<VerifyingKey, Error> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| Error::InvalidPublicKey)
    }

    /// Verifies `signature` over `tag || chain_id || borsh(payload)`.
    pub fn verify<T: BorshSerialize>(
        &self,
        tag: &[u8],
        chain_id: &Hash,
        payload: &T,
        signature: &Signature,
    ) -> Result<(), Error> {
        let key = self.verifying_key()?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(&signing_bytes(tag, chain_id, payload), &sig)
            .map_err(|_| Error::BadSignature)
    }
}

/// An identity's secret keys: ed25519 for signing, X25519 for receiving wrapped archive keys.
/// Both are zeroized when dropped.
pub struct Keypair {
    signing: SigningKey,
    x25519: x25519_dalek::StaticSecret,
}

impl Keypair {
    /// A fresh identity from the operating system's random source.
    pub fn generate() -> Result<Self, Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| Error::Random(e.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// A deterministic identity derived from a 32-byte seed (for reproducible test consortia).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let x_secret = Zeroizing::new(sha256_parts(&[b"cradle.x25519-from-seed.v1\0", seed]));
        Self::from_secret_parts(seed, &x_secret)
    }

    /// Rebuilds an identity from its two 32-byte secrets (as stored in a key file).
    pub fn from_secret_parts(ed25519_seed: &[u8; 32], x25519_secret: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(ed25519_seed),
            x25519: x25519_dalek::StaticSecret::from(*x25519_secret),
        }
    }

    pub fn ed25519_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    pub fn x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.x25519.to_bytes())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    pub fn x25519_public(&self) -> X25519Public {
        X25519Public(x25519_dalek::PublicKey::from(&self.x25519).to_bytes())
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    pub fn x25519_static(&self) -> &x25519_dalek::StaticSecret {
        &self.x25519
    }

    /// Signs `tag || chain_id || borsh(payload)`.
    pub fn sign<T: BorshSerialize>(&self, tag: &[u8], chain_id: &Hash, payload: &T) -> Signature {
        Signature(
            self.signing
                .sign(&signing_bytes(tag, chain_id, payload))
                .to_bytes(),
        )
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets: only the public half identifies the key in logs.
        write!(f, "Keypair({:?})", self.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_binds_tag_chain_and_payload() {
        let kp = Keypair::from_seed(&[7; 32]);
        let chain = [1u8; 32];
        let sig = kp.sign(TAG_TRANSACTION, &chain, &42u64);
        let pk = kp.public_key();
        pk.verify(TAG_TRANSACTION, &chain, &42u64, &sig).unwrap();
        assert_eq!(
            pk.verify(TAG_ACCESS_REQUEST, &chain, &42u64, &sig),
            Err(Error::BadSignature)
        );
        assert_eq!(
            pk.verify(TAG_TRANSACTION, &[2; 32], &42u64, &sig),
            Err(Error::BadSignature)
        );
        assert_eq!(
            pk.verify(TAG_TRANSACTION, &chain, &43u64, &sig),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn seeded_keys_are_reproducible_and_secrets_round_trip() {
        let a = Keypair::from_seed(&[9; 32]);
        let b = Keypair::from_seed(&[9; 32]);
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.x25519_public(), b.x25519_public());
        let c = Keypair::from_secret_parts(&a.ed25519_seed(), &a.x25519_secret());
        assert_eq!(c.public_key(), a.public_key());
        assert_eq!(c.x25519_public(), a.x25519_public());
        assert!(!format!("{a:?}").contains(&hex::encode(*a.ed25519_seed())));
    }

    #[test]
    fn hex_round_trip_and_bad_hex_is_an_error() {
        let pk = Keypair::from_seed(&[3; 32]).public_key();
        assert_eq!(PublicKey::from_hex(&pk.to_hex()).unwrap(), pk);
        assert!(PublicKey::from_hex("zz").is_err());
        assert!(PublicKey::from_hex(&"ab".repeat(31)).is_err());
    }
}
