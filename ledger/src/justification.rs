//! Break-glass justifications, sealed for the patient and the regulators.
//!
//! A justification is a clinician's free text about an emergency ("postpartum haemorrhage on
//! arrival"): health data, never on the ledger in clear. The clinician's client seals it
//! ([`seal`]): a fresh random 256-bit key encrypts `salt || text` with AES-256-GCM, and that key
//! is wrapped ([`crate::keywrap`], under its own HKDF tag) for each reader's X25519 key: the
//! patient's and every regulator's. The ledger holds the ciphertext, the wraps and a commitment
//! `SHA-256(TAG_JUSTIFICATION_COMMIT || salt || text)`, never the text. The 128-bit salt is
//! sealed with the text, so only a reader can test the commitment against a guessed phrase, and
//! a reader can show a third party what the text said by revealing salt and text.
//!
//! Binding: the request's context ([`context`]: the chain, the accessor, the archive, the
//! purpose, the request's time and its random id) is both the AEAD's associated data and the
//! wraps' HKDF context, so a sealed justification opens only inside the access request it was
//! made for; copied into another request, onto another archive or another chain, it does not
//! open. The request, justification included, is signed by the accessor.
//!
//! Every reader checks the commitment after opening ([`open`]): AES-GCM does not commit to its
//! key, so a client that wrapped different keys for different readers could otherwise show them
//! different texts.
//!
//! The ledger cannot open it; its rule checks the shape ([`SealedJustification::is_sealed_for`]):
//! a non-empty ciphertext, and wraps for exactly the patient and the regulators.

use std::collections::BTreeSet;

use aes_gcm::aead::{AeadInOut, Nonce};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Tag};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::codec::{BoundedBytes, BoundedVec};
use crate::crypto::{self, ArchiveId, Digest32, Hash, Keypair, PublicKey, X25519Public};
use crate::error::Error;
use crate::keywrap::{unwrap_key_in, wrap_key_in};
use crate::tx::{Purpose, WrappedKey};

/// Longest justification text, in bytes. It describes the emergency, never who the patient is.
pub const JUSTIFICATION_BYTES_MAX: usize = 512;
/// Most readers one justification is sealed for: the patient and up to fifteen regulators.
pub const JUSTIFICATION_READERS_MAX: usize = 16;
/// Length of the random salt sealed in front of the text.
pub const JUSTIFICATION_SALT_BYTES: usize = 16;
/// Length of the AES-256-GCM tag that ends the ciphertext.
const GCM_TAG_BYTES: usize = 16;
/// Longest sealed justification: salt, text and tag.
pub const SEALED_JUSTIFICATION_BYTES_MAX: usize =
    JUSTIFICATION_SALT_BYTES + JUSTIFICATION_BYTES_MAX + GCM_TAG_BYTES;
/// Shortest sealed justification: salt, at least one byte of text, and tag.
const SEALED_JUSTIFICATION_BYTES_MIN: usize = JUSTIFICATION_SALT_BYTES + 1 + GCM_TAG_BYTES;

/// Domain of the request context a justification is bound to.
pub const TAG_JUSTIFICATION_CONTEXT: &[u8] = b"cradle.justification.context.v1\0";
/// Domain of the commitment to the text.
pub const TAG_JUSTIFICATION_COMMIT: &[u8] = b"cradle.justification.commit.v1\0";
/// HKDF domain of the wraps of a justification's key (an archive key's wraps use another).
pub const TAG_JUSTIFICATION_WRAP: &[u8] = b"cradle.justification.keywrap.v1\0";

/// The justification's key, wrapped for one reader.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct JustificationWrap {
    pub reader: X25519Public,
    pub key: WrappedKey,
}

/// A justification as the ledger holds it: ciphertext, wraps, commitment; no text.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SealedJustification {
    /// `SHA-256(TAG_JUSTIFICATION_COMMIT || salt || text)`.
    pub commitment: Digest32,
    /// AES-256-GCM of `salt || text` under the justification's key, with the tag at the end.
    pub ciphertext: BoundedBytes<SEALED_JUSTIFICATION_BYTES_MAX>,
    pub wraps: BoundedVec<JustificationWrap, JUSTIFICATION_READERS_MAX>,
}

impl SealedJustification {
    /// Whether the ledger accepts it for a break-glass: a ciphertext long enough to hold some
    /// text, and the key wrapped for each of `readers` exactly once and for no one else.
    pub fn is_sealed_for(&self, readers: &BTreeSet<X25519Public>) -> bool {
        let len = self.ciphertext.as_bytes().len();
        if len < SEALED_JUSTIFICATION_BYTES_MIN || self.wraps.len() != readers.len() {
            return false;
        }
        let mut seen = BTreeSet::new();
        self.wraps
            .iter()
            .all(|w| readers.contains(&w.reader) && seen.insert(w.reader))
    }

    /// Whether `reader` is one of those it is sealed for.
    pub fn is_for(&self, reader: &X25519Public) -> bool {
        self.wraps.iter().any(|w| &w.reader == reader)
    }
}

/// The context a request's justification is bound to: SHA-256 over a tag, the chain, the
/// accessor, the archive, the purpose, the request's time and its random id.
pub fn context(
    chain_id: &Hash,
    accessor: &PublicKey,
    archive: &ArchiveId,
    purpose: Purpose,
    requested_at_ms: u64,
    request_id: &[u8; 16],
) -> Hash {
    crypto::sha256_parts(&[
        TAG_JUSTIFICATION_CONTEXT,
        chain_id,
        &accessor.0,
        &archive.0,
        &[purpose as u8],
        &requested_at_ms.to_le_bytes(),
        request_id,
    ])
}

/// Seals `text` for `readers`, bound to `context`. The text must hold more than white space
/// and at most [`JUSTIFICATION_BYTES_MAX`] bytes; the readers must be distinct, at least one,
/// at most [`JUSTIFICATION_READERS_MAX`].
pub fn seal(
    text: &str,
    context: &Hash,
    readers: &[X25519Public],
) -> Result<SealedJustification, Error> {
    if text.trim().is_empty() {
        return Err(Error::InvalidJustification("it is empty"));
    }
    if text.len() > JUSTIFICATION_BYTES_MAX {
        return Err(Error::TooLarge {
            len: text.len(),
            max: JUSTIFICATION_BYTES_MAX,
        });
    }
    let distinct: BTreeSet<_> = readers.iter().collect();
    if readers.is_empty() || distinct.len() != readers.len() {
        return Err(Error::InvalidJustification(
            "it needs distinct readers, at least one",
        ));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut()).map_err(|e| Error::Random(e.to_string()))?;
    let mut salt = [0u8; JUSTIFICATION_SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|e| Error::Random(e.to_string()))?;
    let commitment = commit(&salt, text.as_bytes());

    let mut body = Zeroizing::new(Vec::with_capacity(SEALED_JUSTIFICATION_BYTES_MAX));
    body.extend_from_slice(&salt);
    body.extend_from_slice(text.as_bytes());
    let tag = cipher(&key)
        .encrypt_inout_detached(&zero_nonce(), &context[..], body.as_mut_slice().into())
        // Only fails for inputs longer than GCM's limit; a justification never is.
        .map_err(|_| Error::Malformed("aes-gcm refused a justification".into()))?;
    let mut ciphertext = body.to_vec();
    ciphertext.extend_from_slice(&tag);

    let wraps = readers
        .iter()
        .map(|reader| {
            Ok(JustificationWrap {
                reader: *reader,
                key: wrap_key_in(TAG_JUSTIFICATION_WRAP, &key, &ArchiveId(*context), reader)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(SealedJustification {
        commitment: Digest32(commitment),
        ciphertext: BoundedBytes::new(ciphertext)?,
        wraps: BoundedVec::new(wraps)?,
    })
}

/// Opens a justification sealed for `me` within `context`, and checks its commitment.
///
/// [`Error::NotAJustificationReader`] if it was not sealed for `me`; every other failure
/// (another request, an altered byte, a commitment that does not match) is the one
/// [`Error::JustificationUnreadable`].
pub fn open(sealed: &SealedJustification, context: &Hash, me: &Keypair) -> Result<String, Error> {
    let mine = me.x25519_public();
    let wrap = sealed
        .wraps
        .iter()
        .find(|w| w.reader == mine)
        .ok_or(Error::NotAJustificationReader)?;
    let key = unwrap_key_in(TAG_JUSTIFICATION_WRAP, &wrap.key, &ArchiveId(*context), me)
        .map_err(|_| Error::JustificationUnreadable)?;
    let bytes = sealed.ciphertext.as_bytes();
    if bytes.len() < SEALED_JUSTIFICATION_BYTES_MIN {
        return Err(Error::JustificationUnreadable);
    }
    let (body, tag) = bytes
        .split_last_chunk::<GCM_TAG_BYTES>()
        .ok_or(Error::JustificationUnreadable)?;
    let tag: &Tag = tag.into();
    let mut body = Zeroizing::new(body.to_vec());
    cipher(&key)
        .decrypt_inout_detached(&zero_nonce(), &context[..], body.as_mut_slice().into(), tag)
        .map_err(|_| Error::JustificationUnreadable)?;
    let (salt, text) = body.split_at(JUSTIFICATION_SALT_BYTES);
    if commit(salt, text) != sealed.commitment.0 {
        return Err(Error::JustificationUnreadable);
    }
    String::from_utf8(text.to_vec()).map_err(|_| Error::JustificationUnreadable)
}

fn commit(salt: &[u8], text: &[u8]) -> Hash {
    crypto::sha256_parts(&[TAG_JUSTIFICATION_COMMIT, salt, text])
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    let key: &Key<Aes256Gcm> = key.into();
    Aes256Gcm::new(key)
}

/// Each justification has its own fresh key, used for one message: a fixed nonce never
/// repeats under a key.
fn zero_nonce() -> Nonce<Aes256Gcm> {
    Nonce::<Aes256Gcm>::from([0u8; 12])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "postpartum haemorrhage on arrival, patient unconscious";

    fn readers() -> (Keypair, Keypair, Keypair) {
        (
            Keypair::from_seed(&[1; 32]),
            Keypair::from_seed(&[2; 32]),
            Keypair::from_seed(&[3; 32]),
        )
    }

    fn ctx(id: u8) -> Hash {
        context(
            &[7; 32],
            &Keypair::from_seed(&[9; 32]).public_key(),
            &ArchiveId([5; 32]),
            Purpose::EmergencyTreat,
            1_000,
            &[id; 16],
        )
    }

    #[test]
    fn every_reader_opens_it_and_no_one_else() {
        let (patient, regulator, stranger) = readers();
        let to = [patient.x25519_public(), regulator.x25519_public()];
        let sealed = seal(TEXT, &ctx(1), &to).unwrap();
        assert_eq!(open(&sealed, &ctx(1), &patient).unwrap(), TEXT);
        assert_eq!(open(&sealed, &ctx(1), &regulator).unwrap(), TEXT);
        assert_eq!(
            open(&sealed, &ctx(1), &stranger),
            Err(Error::NotAJustificationReader)
        );
        let bytes = crate::codec::encode(&sealed);
        assert!(
            !bytes.windows(9).any(|w| w == b"postpartu"),
            "text in clear"
        );
        let json = serde_json::to_string(&sealed).unwrap();
        assert!(!json.contains("haemorrhage"));
        let back: SealedJustification = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sealed);
    }

    #[test]
    fn it_does_not_open_in_another_request_or_altered() {
        let (patient, regulator, _) = readers();
        let to = [patient.x25519_public(), regulator.x25519_public()];
        let sealed = seal(TEXT, &ctx(1), &to).unwrap();
        assert_eq!(
            open(&sealed, &ctx(2), &patient),
            Err(Error::JustificationUnreadable)
        );
        let mut bytes = sealed.ciphertext.as_bytes().to_vec();
        bytes[20] ^= 1;
        let altered = SealedJustification {
            ciphertext: BoundedBytes::new(bytes).unwrap(),
            ..sealed.clone()
        };
        assert_eq!(
            open(&altered, &ctx(1), &patient),
            Err(Error::JustificationUnreadable)
        );
        let recommitted = SealedJustification {
            commitment: Digest32([0; 32]),
            ..sealed
        };
        assert_eq!(
            open(&recommitted, &ctx(1), &regulator),
            Err(Error::JustificationUnreadable)
        );
    }

    #[test]
    fn the_ledger_shape_check_wants_exactly_the_readers() {
        let (patient, regulator, stranger) = readers();
        let want: BTreeSet<_> = [patient.x25519_public(), regulator.x25519_public()].into();
        let ok = seal(
            TEXT,
            &ctx(1),
            &[regulator.x25519_public(), patient.x25519_public()],
        );
        assert!(ok.unwrap().is_sealed_for(&want));
        let short = seal(TEXT, &ctx(1), &[patient.x25519_public()]).unwrap();
        assert!(!short.is_sealed_for(&want), "a regulator is missing");
        let extra = seal(
            TEXT,
            &ctx(1),
            &[
                patient.x25519_public(),
                regulator.x25519_public(),
                stranger.x25519_public(),
            ],
        )
        .unwrap();
        assert!(!extra.is_sealed_for(&want), "sealed for a stranger too");
        let mut twice = short.clone();
        twice.wraps =
            BoundedVec::new(vec![short.wraps[0].clone(), short.wraps[0].clone()]).unwrap();
        assert!(!twice.is_sealed_for(&want));
        let empty = SealedJustification {
            ciphertext: BoundedBytes::new(vec![0; SEALED_JUSTIFICATION_BYTES_MIN - 1]).unwrap(),
            ..seal(
                TEXT,
                &ctx(1),
                &[patient.x25519_public(), regulator.x25519_public()],
            )
            .unwrap()
        };
        assert!(!empty.is_sealed_for(&want), "no text in it");
        assert!(seal("  \n", &ctx(1), &[patient.x25519_public()]).is_err());
        assert!(seal(&"x".repeat(513), &ctx(1), &[patient.x25519_public()]).is_err());
    }

    #[test]
    fn oversized_encodings_are_refused_before_reading() {
        let big = vec![0u8; SEALED_JUSTIFICATION_BYTES_MAX + 1];
        let mut enc = vec![crate::codec::VERSION];
        enc.extend_from_slice(&[0; 32]);
        enc.extend_from_slice(&(big.len() as u32).to_le_bytes());
        enc.extend_from_slice(&big);
        enc.extend_from_slice(&0u32.to_le_bytes());
        assert!(crate::codec::decode::<SealedJustification>(&enc, 1 << 20).is_err());
        let json = format!(
            r#"{{"commitment":"{}","ciphertext":"{}","wraps":[]}}"#,
            "00".repeat(32),
            "00".repeat(SEALED_JUSTIFICATION_BYTES_MAX + 1)
        );
        assert!(serde_json::from_str::<SealedJustification>(&json).is_err());
    }
}
