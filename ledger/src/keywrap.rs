//! Wrapping a 32-byte archive key for one recipient's X25519 key.
//!
//! A wrap is ephemeral-static X25519 (an ECIES-style key encapsulation): a fresh ephemeral
//! secret per wrap, HKDF-SHA256 over the shared secret, AES-256-GCM over the archive key. The
//! HKDF salt holds both public keys and its info holds the archive id and the recipient, and the
//! archive id and recipient are also the AEAD's associated data, so a wrapped key opens only for
//! the recipient and the archive it was made for: copying it onto another archive's record, or
//! handing it to another recipient, fails to open.
//!
//! Because every wrap derives its AES key from a fresh ephemeral secret, each AES key encrypts
//! exactly one message, and a zero nonce is safe.

use aes_gcm::aead::{AeadInOut, Nonce};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Tag};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey as DalekPublic, StaticSecret};
use zeroize::Zeroizing;

use crate::crypto::{ArchiveId, Keypair, X25519Public};
use crate::error::Error;
use crate::tx::WrappedKey;

/// HKDF info prefix; NUL-terminated like the signing tags so no tag is a prefix of another.
pub const TAG_KEYWRAP: &[u8] = b"cradle.keywrap.v1\0";

/// Length of the archive key being wrapped.
const KEY_BYTES: usize = 32;
/// Length of the AES-GCM tag appended to the wrapped key.
const TAG_BYTES: usize = 16;
const _: () = assert!(
    KEY_BYTES + TAG_BYTES == 48,
    "WrappedKey::sealed is 48 bytes"
);

/// Wraps `key` (an archive key) for `recipient`, bound to `archive`.
///
/// Fails only if the random source fails, or if `recipient` is a low-order point (the shared
/// secret would be all zeros, known to anyone).
pub fn wrap_key(
    key: &[u8; 32],
    archive: &ArchiveId,
    recipient: &X25519Public,
) -> Result<WrappedKey, Error> {
    wrap_key_in(TAG_KEYWRAP, key, archive, recipient)
}

/// [`wrap_key`] with the ephemeral secret given instead of drawn at random, so that another
/// implementation (the browser portal's `keywrap.js`) can be checked against it byte for byte.
///
/// Only for test vectors. The zero nonce is safe because every wrap has a fresh ephemeral
/// secret: two keys wrapped with one ephemeral secret for the same recipient and archive are
/// sealed under the same AES key and nonce, which gives both away. Nothing but tests may call it.
#[doc(hidden)]
pub fn wrap_key_with_ephemeral(
    key: &[u8; 32],
    archive: &ArchiveId,
    recipient: &X25519Public,
    ephemeral_secret: &[u8; 32],
) -> Result<WrappedKey, Error> {
    seal(TAG_KEYWRAP, key, archive, recipient, ephemeral_secret)
}

/// [`wrap_key`] under another HKDF domain `tag` (one per kind of key wrapped, so a key wrapped
/// for one use never opens as another); `archive` may then be any 32-byte context id.
pub(crate) fn wrap_key_in(
    tag: &[u8],
    key: &[u8; 32],
    archive: &ArchiveId,
    recipient: &X25519Public,
) -> Result<WrappedKey, Error> {
    let mut eph_bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(eph_bytes.as_mut()).map_err(|e| Error::Random(e.to_string()))?;
    seal(tag, key, archive, recipient, &eph_bytes)
}

/// The wrap itself, with the ephemeral secret `eph_bytes`.
fn seal(
    tag: &[u8],
    key: &[u8; 32],
    archive: &ArchiveId,
    recipient: &X25519Public,
    eph_bytes: &[u8; 32],
) -> Result<WrappedKey, Error> {
    let eph_secret = StaticSecret::from(*eph_bytes);
    let ephemeral = X25519Public(DalekPublic::from(&eph_secret).to_bytes());

    let shared = eph_secret.diffie_hellman(&DalekPublic::from(recipient.0));
    if !shared.was_contributory() {
        return Err(Error::LowOrderKey);
    }
    let cipher = wrap_cipher(tag, shared.as_bytes(), &ephemeral, archive, recipient);

    let mut sealed = [0u8; KEY_BYTES + TAG_BYTES];
    let (body, tag_out) = sealed.split_at_mut(KEY_BYTES);
    body.copy_from_slice(key);
    let tag = cipher
        .encrypt_inout_detached(&zero_nonce(), &aad(archive, recipient), body.into())
        // Only fails for inputs longer than GCM's limit; 32 bytes never are.
        .map_err(|_| Error::Malformed("aes-gcm refused a 32-byte message".into()))?;
    tag_out.copy_from_slice(&tag);
    Ok(WrappedKey { ephemeral, sealed })
}

/// Opens a key wrapped by [`wrap_key`] for `recipient`'s X25519 key and `archive`.
///
/// Every failure (another recipient, another archive, any altered byte) is the same
/// [`Error::KeyUnwrap`], so the error tells an attacker nothing about which check failed.
pub fn unwrap_key(
    wrapped: &WrappedKey,
    archive: &ArchiveId,
    recipient: &Keypair,
) -> Result<Zeroizing<[u8; 32]>, Error> {
    unwrap_key_in(TAG_KEYWRAP, wrapped, archive, recipient)
}

/// [`unwrap_key`] of a key wrapped by [`wrap_key_in`] under `tag`.
pub(crate) fn unwrap_key_in(
    tag: &[u8],
    wrapped: &WrappedKey,
    archive: &ArchiveId,
    recipient: &Keypair,
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let recipient_public = recipient.x25519_public();
    let shared = recipient
        .x25519_static()
        .diffie_hellman(&DalekPublic::from(wrapped.ephemeral.0));
    if !shared.was_contributory() {
        return Err(Error::KeyUnwrap);
    }
    let cipher = wrap_cipher(
        tag,
        shared.as_bytes(),
        &wrapped.ephemeral,
        archive,
        &recipient_public,
    );

    let (body, tag) = wrapped
        .sealed
        .split_last_chunk::<TAG_BYTES>()
        .ok_or(Error::KeyUnwrap)?;
    let tag: &Tag = tag.into();
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    key.copy_from_slice(body);
    cipher
        .decrypt_inout_detached(
            &zero_nonce(),
            &aad(archive, &recipient_public),
            key.as_mut_slice().into(),
            tag,
        )
        .map_err(|_| Error::KeyUnwrap)?;
    Ok(key)
}

/// The one-use AES-256-GCM cipher of a wrap: HKDF-SHA256 with
/// salt = ephemeral || recipient and info = tag || archive || recipient.
fn wrap_cipher(
    tag: &[u8],
    shared: &[u8; 32],
    ephemeral: &X25519Public,
    archive: &ArchiveId,
    recipient: &X25519Public,
) -> Aes256Gcm {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(&ephemeral.0);
    salt[32..].copy_from_slice(&recipient.0);
    let hkdf = Hkdf::<Sha256>::new(Some(&salt), shared);
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit of 255 * 32: expansion cannot fail.
    let expanded = hkdf.expand_multi_info(&[tag, &archive.0, &recipient.0], okm.as_mut());
    debug_assert!(expanded.is_ok());
    let key: &Key<Aes256Gcm> = (&*okm).into();
    Aes256Gcm::new(key)
}

/// Associated data: the archive and the recipient the key is wrapped for.
fn aad(archive: &ArchiveId, recipient: &X25519Public) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&archive.0);
    out[32..].copy_from_slice(&recipient.0);
    out
}

/// Each wrap's AES key is fresh (derived from a fresh ephemeral secret), so one fixed nonce never
/// repeats under a key.
fn zero_nonce() -> Nonce<Aes256Gcm> {
    Nonce::<Aes256Gcm>::from([0u8; 12])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Keypair, ArchiveId, [u8; 32]) {
        (Keypair::from_seed(&[5; 32]), ArchiveId([9; 32]), [0x42; 32])
    }

    #[test]
    fn wrapped_key_round_trips_for_its_recipient_and_archive() {
        let (kp, archive, key) = setup();
        let wrapped = wrap_key(&key, &archive, &kp.x25519_public()).unwrap();
        assert_ne!(
            &wrapped.sealed[..32],
            &key[..],
            "key must not appear in clear"
        );
        assert_eq!(*unwrap_key(&wrapped, &archive, &kp).unwrap(), key);
    }

    #[test]
    fn another_recipient_cannot_unwrap() {
        let (kp, archive, key) = setup();
        let other = Keypair::from_seed(&[6; 32]);
        let wrapped = wrap_key(&key, &archive, &kp.x25519_public()).unwrap();
        assert_eq!(
            unwrap_key(&wrapped, &archive, &other),
            Err(Error::KeyUnwrap)
        );
    }

    #[test]
    fn key_wrapped_for_one_archive_does_not_open_for_another() {
        let (kp, archive, key) = setup();
        let wrapped = wrap_key(&key, &archive, &kp.x25519_public()).unwrap();
        assert_eq!(
            unwrap_key(&wrapped, &ArchiveId([10; 32]), &kp),
            Err(Error::KeyUnwrap)
        );
    }

    #[test]
    fn any_flipped_bit_in_ephemeral_or_sealed_is_rejected() {
        let (kp, archive, key) = setup();
        let wrapped = wrap_key(&key, &archive, &kp.x25519_public()).unwrap();
        for i in 0..32 {
            let mut bad = wrapped;
            bad.ephemeral.0[i] ^= 1;
            assert_eq!(
                unwrap_key(&bad, &archive, &kp),
                Err(Error::KeyUnwrap),
                "ephemeral byte {i}"
            );
        }
        // X25519 ignores the top bit of the last byte when it decodes a point, so this flip gives
        // the same shared secret; HKDF's salt covers the bytes as sent, so it fails anyway.
        let mut top = wrapped;
        top.ephemeral.0[31] ^= 0x80;
        assert_eq!(unwrap_key(&top, &archive, &kp), Err(Error::KeyUnwrap));
        for i in 0..48 {
            let mut bad = wrapped;
            bad.sealed[i] ^= 0x80;
            assert_eq!(
                unwrap_key(&bad, &archive, &kp),
                Err(Error::KeyUnwrap),
                "sealed byte {i}"
            );
        }
    }

    #[test]
    fn two_wraps_of_one_key_differ() {
        let (kp, archive, key) = setup();
        let a = wrap_key(&key, &archive, &kp.x25519_public()).unwrap();
        let b = wrap_key(&key, &archive, &kp.x25519_public()).unwrap();
        assert_ne!(a.ephemeral, b.ephemeral);
        assert_ne!(a.sealed, b.sealed);
        assert_eq!(*unwrap_key(&b, &archive, &kp).unwrap(), key);
    }

    #[test]
    fn a_fixed_ephemeral_gives_the_same_wrap_and_it_opens() {
        let (kp, archive, key) = setup();
        let eph = [0x71; 32];
        let a = wrap_key_with_ephemeral(&key, &archive, &kp.x25519_public(), &eph).unwrap();
        let b = wrap_key_with_ephemeral(&key, &archive, &kp.x25519_public(), &eph).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.ephemeral,
            X25519Public(DalekPublic::from(&StaticSecret::from(eph)).to_bytes())
        );
        assert_eq!(*unwrap_key(&a, &archive, &kp).unwrap(), key);
    }

    #[test]
    fn low_order_recipient_key_is_refused() {
        let (_, archive, key) = setup();
        // The identity point and the order-8 point 0xe0eb7a7c…: both give an all-zero secret.
        let zero = X25519Public([0; 32]);
        assert_eq!(wrap_key(&key, &archive, &zero), Err(Error::LowOrderKey));
        let mut order8 = [0u8; 32];
        hex::decode_to_slice(
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            &mut order8,
        )
        .unwrap();
        assert_eq!(
            wrap_key(&key, &archive, &X25519Public(order8)),
            Err(Error::LowOrderKey)
        );
    }

    #[test]
    fn low_order_ephemeral_is_rejected_on_unwrap() {
        let (kp, archive, key) = setup();
        let mut wrapped = wrap_key(&key, &archive, &kp.x25519_public()).unwrap();
        wrapped.ephemeral = X25519Public([0; 32]);
        assert_eq!(unwrap_key(&wrapped, &archive, &kp), Err(Error::KeyUnwrap));
    }
}
