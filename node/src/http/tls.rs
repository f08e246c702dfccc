//! The API's TLS: a certificate over the member's own key, so a client pins the node from the
//! genesis file without any certificate authority.
//!
//! At start the node makes a self-signed X.509 certificate whose subject public key is its
//! member's ed25519 key (the one genesis lists), and serves TLS 1.3 only. The handshake's
//! CertificateVerify is signed with that key, so only the holder of the member's secret key can
//! complete it; `cradle_client::tls` accepts a server only if the certificate's key is the
//! genesis key. Reusing the member key is safe across protocols: TLS 1.3 signs 64 spaces and a
//! context string before its transcript hash, a certificate signs a DER `SEQUENCE`, and every
//! ledger and consensus signature starts with a `cradle.` tag, so no signature of one kind
//! verifies as another.

use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ED25519};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

/// DER prefix of an ed25519 private key in PKCS #8 v1 (RFC 8410); the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("making the node's certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("configuring TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The TLS 1.3 server configuration for a member whose ed25519 secret seed is `seed`.
/// `names` go into the certificate's subject alternative names (the API's host, for tools
/// like curl that check names; Cradle's client checks only the key).
pub fn member_server_config(
    member: &str,
    seed: &[u8; 32],
    names: Vec<String>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let mut pkcs8 = Zeroizing::new(Vec::with_capacity(48));
    pkcs8.extend_from_slice(&ED25519_PKCS8_PREFIX);
    pkcs8.extend_from_slice(seed);
    let key_der = PrivatePkcs8KeyDer::from(pkcs8.as_slice());
    let key_pair = KeyPair::from_pkcs8_der_and_sign_algo(&key_der, &PKCS_ED25519)?;
    let mut params = CertificateParams::new(names)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, member);
    dn.push(DnType::CommonName, "cradle member node");
    params.distinguished_name = dn;
    let cert = params.self_signed(&key_pair)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.to_vec())),
        )?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cradle_ledger::Keypair;

    #[test]
    fn the_certificate_key_is_the_member_key() {
        let key = Keypair::generate().expect("key");
        let seed = key.ed25519_seed();
        member_server_config("County Hospital 1", &seed, vec!["127.0.0.1".into()])
            .expect("a TLS configuration from the member key");
        // The certificate's key is the member's own: the PKCS #8 encoding above is right.
        let pkcs8: Vec<u8> = ED25519_PKCS8_PREFIX
            .iter()
            .chain(seed.iter())
            .copied()
            .collect();
        let pair = KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
            &PKCS_ED25519,
        )
        .expect("key pair");
        assert_eq!(pair.public_key_raw(), key.public_key().0);
    }
}
