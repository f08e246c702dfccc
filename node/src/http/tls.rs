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
//!
//! Browsers cannot pin from genesis. For the portal an operator can add a certificate of its
//! own (from the hospital's or a public certificate authority) with the DNS names it is for;
//! a client that asks for one of those names by SNI gets it, every other client the member
//! certificate. Cradle's client connects by the address genesis gives (an IP or a name the
//! operator keeps off the portal's certificate), so it always meets the member key it pins.

use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ED25519};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
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
    #[error("reading the operator's certificate or key {path}: {reason}")]
    OperatorFile { path: String, reason: String },
}

/// A certificate the operator provides for the portal, and the names it is served for.
pub struct OperatorCert<'a> {
    pub cert_file: &'a std::path::Path,
    pub key_file: &'a std::path::Path,
    pub names: &'a [String],
}

/// The member certificate for every client, the operator's for those that ask by name.
#[derive(Debug)]
struct ByName {
    member: Arc<CertifiedKey>,
    operator: Option<(Vec<String>, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let (Some(asked), Some((names, key))) = (hello.server_name(), &self.operator)
            && names.iter().any(|n| n.eq_ignore_ascii_case(asked))
        {
            return Some(key.clone());
        }
        Some(self.member.clone())
    }
}

fn operator_key(
    op: &OperatorCert<'_>,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsSetupError> {
    let file_error = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |e: rustls::pki_types::pem::Error| TlsSetupError::OperatorFile {
            path,
            reason: e.to_string(),
        }
    };
    let chain = CertificateDer::pem_file_iter(op.cert_file)
        .map_err(file_error(op.cert_file))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(file_error(op.cert_file))?;
    if chain.is_empty() {
        return Err(TlsSetupError::OperatorFile {
            path: op.cert_file.display().to_string(),
            reason: "no certificate in it".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(op.key_file).map_err(file_error(op.key_file))?;
    Ok(Arc::new(CertifiedKey::from_der(chain, key, provider)?))
}

/// The TLS 1.3 server configuration for a member whose ed25519 secret seed is `seed`.
/// `names` go into the certificate's subject alternative names (the API's host, for tools
/// like curl that check names; Cradle's client checks only the key).
pub fn member_server_config(
    member: &str,
    seed: &[u8; 32],
    names: Vec<String>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    server_config(member, seed, names, None)
}

/// [`member_server_config`], also serving `operator`'s certificate to clients that ask for
/// one of its names.
pub fn server_config(
    member: &str,
    seed: &[u8; 32],
    names: Vec<String>,
    operator: Option<OperatorCert<'_>>,
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
    let member_key = Arc::new(CertifiedKey::from_der(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.to_vec())),
        &provider,
    )?);
    let operator = operator
        .map(|op| Ok::<_, TlsSetupError>((op.names.to_vec(), operator_key(&op, &provider)?)))
        .transpose()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(ByName {
            member: member_key,
            operator,
        }));
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
