//! A member's (or any key holder's) self-signed X.509 certificate over its own ed25519 key,
//! for TLS identities pinned from genesis: the node's server certificate, and a member
//! client's certificate where a node asks for one.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ED25519};
use zeroize::Zeroizing;

/// DER prefix of an ed25519 private key in PKCS #8 v1 (RFC 8410); the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410); the 32-byte key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The SubjectPublicKeyInfo (DER) of an ed25519 public key: what a certificate over a member
/// key carries, and what a pinning peer compares.
pub fn ed25519_spki(key: &[u8; 32]) -> Vec<u8> {
    let mut spki = ED25519_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(key);
    spki
}

/// A certificate and its private key, both DER.
pub struct SelfSigned {
    pub cert_der: Vec<u8>,
    /// PKCS #8; zeroized when dropped.
    pub key_pkcs8: Zeroizing<Vec<u8>>,
}

/// A self-signed certificate whose subject key is the ed25519 key of `seed`, naming
/// `organisation`, with `names` as subject alternative names.
pub fn self_signed(
    organisation: &str,
    seed: &[u8; 32],
    names: Vec<String>,
) -> Result<SelfSigned, rcgen::Error> {
    let mut pkcs8 = Zeroizing::new(Vec::with_capacity(48));
    pkcs8.extend_from_slice(&ED25519_PKCS8_PREFIX);
    pkcs8.extend_from_slice(seed);
    let key_der = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_slice());
    let key_pair = KeyPair::from_pkcs8_der_and_sign_algo(&key_der, &PKCS_ED25519)?;
    let mut params = CertificateParams::new(names)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, organisation);
    dn.push(DnType::CommonName, "cradle member");
    params.distinguished_name = dn;
    let cert = params.self_signed(&key_pair)?;
    Ok(SelfSigned {
        cert_der: cert.der().to_vec(),
        key_pkcs8: pkcs8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_key_is_the_seed_key() {
        let seed = [7u8; 32];
        let made = self_signed("County Hospital 1", &seed, vec!["127.0.0.1".into()]).unwrap();
        let pair = KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls::pki_types::PrivatePkcs8KeyDer::from(made.key_pkcs8.as_slice()),
            &PKCS_ED25519,
        )
        .unwrap();
        let expected = cradle_ledger::Keypair::from_seed(&seed).public_key();
        assert_eq!(pair.public_key_raw(), expected.0);
        assert!(made.cert_der.len() > 100);
    }
}
