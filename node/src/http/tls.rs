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

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

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
    server_config(member, seed, names, None, None)
}

/// Says whether an ed25519 key signs for a member now: the node asks its member set in force at
/// every handshake, so a member voted in is admitted and a key rotated out or removed is refused
/// from the activation height on, without a restart.
pub type MemberCheck = Arc<dyn Fn(&cradle_ledger::PublicKey) -> bool + Send + Sync>;

/// Accepts a client only with a certificate over a key that signs for a member now.
struct MemberClients {
    is_member: MemberCheck,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for MemberClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberClients").finish_non_exhaustive()
    }
}

/// The ed25519 key of a subject public key info, if it is one.
fn ed25519_key(spki: &[u8]) -> Option<cradle_ledger::PublicKey> {
    let prefix = cradle_genesis::tlscert::ed25519_spki(&[0; 32]);
    let (head, key) = spki.split_at_checked(prefix.len().checked_sub(32)?)?;
    if head != &prefix[..head.len()] {
        return None;
    }
    Some(cradle_ledger::PublicKey(key.try_into().ok()?))
}

impl rustls::server::danger::ClientCertVerifier for MemberClients {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        let member = ed25519_key(cert.subject_public_key_info().as_ref())
            .is_some_and(|key| (self.is_member)(&key));
        if member {
            Ok(rustls::server::danger::ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the client certificate is not over a key that signs for a member now".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        vec![rustls::SignatureScheme::ED25519]
    }
}

/// [`member_server_config`], also serving `operator`'s certificate to clients that ask for
/// one of its names.
/// With `member_clients`, every client must present a certificate over a key it accepts
/// (mutual TLS, for a node whose API serves member institutions only).
pub fn server_config(
    member: &str,
    seed: &[u8; 32],
    names: Vec<String>,
    operator: Option<OperatorCert<'_>>,
    member_clients: Option<MemberCheck>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let made = cradle_genesis::tlscert::self_signed(member, seed, names)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let member_key = Arc::new(CertifiedKey::from_der(
        vec![CertificateDer::from(made.cert_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pkcs8.to_vec())),
        &provider,
    )?);
    let operator = operator
        .map(|op| Ok::<_, TlsSetupError>((op.names.to_vec(), operator_key(&op, &provider)?)))
        .transpose()?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match member_clients {
        Some(is_member) => builder.with_client_cert_verifier(Arc::new(MemberClients {
            is_member,
            algorithms: provider.signature_verification_algorithms,
        })),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(ByName {
        member: member_key,
        operator,
    }));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    /// Accepts any server: the test looks at which certificate came.
    #[derive(Debug)]
    struct AnyServer;
    impl ServerCertVerifier for AnyServer {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    /// Runs a handshake in memory; the certificate the server presented.
    fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        name: &str,
    ) -> Result<CertificateDer<'static>, rustls::Error> {
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut c = ClientConnection::new(client, name)?;
        let mut s = ServerConnection::new(server)?;
        for _ in 0..8 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            s.read_tls(&mut buf.as_slice()).unwrap();
            s.process_new_packets()?;
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            c.read_tls(&mut buf.as_slice()).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                break;
            }
        }
        Ok(c.peer_certificates().unwrap()[0].clone().into_owned())
    }

    /// A client configuration presenting a certificate over `key`, trusting any server.
    fn client_with(key: &cradle_ledger::Keypair) -> Arc<ClientConfig> {
        let made =
            cradle_genesis::tlscert::self_signed("client", &key.ed25519_seed(), vec![]).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer))
            .with_client_auth_cert(
                vec![CertificateDer::from(made.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pkcs8.to_vec())),
            )
            .unwrap();
        Arc::new(config)
    }

    #[test]
    fn member_tls_admits_the_keys_that_sign_for_members_now_and_follows_a_rotation() {
        let (old, new, stranger) = (
            cradle_ledger::Keypair::generate().unwrap(),
            cradle_ledger::Keypair::generate().unwrap(),
            cradle_ledger::Keypair::generate().unwrap(),
        );
        // The set in force, as the node's member sets would answer it.
        let in_force = Arc::new(std::sync::RwLock::new(vec![old.public_key()]));
        let check = {
            let in_force = in_force.clone();
            Arc::new(move |k: &cradle_ledger::PublicKey| in_force.read().unwrap().contains(k))
                as MemberCheck
        };
        let member = cradle_ledger::Keypair::generate().unwrap();
        let server = server_config(
            "County Hospital 1",
            &member.ed25519_seed(),
            vec![],
            None,
            Some(check),
        )
        .unwrap();
        let connect = |key: &cradle_ledger::Keypair| {
            handshake(server.clone(), client_with(key), "127.0.0.1").map(drop)
        };
        assert!(connect(&old).is_ok(), "a member's key");
        assert!(connect(&stranger).is_err(), "no member's key");
        assert!(connect(&new).is_err(), "not yet voted in");
        // The vote takes force: the same server, not restarted, follows it.
        *in_force.write().unwrap() = vec![new.public_key()];
        assert!(connect(&new).is_ok(), "the rotated key");
        assert!(connect(&old).is_err(), "the key the vote rotated out");
        assert_eq!(ed25519_key(b"not a key"), None);
    }

    #[test]
    fn the_portal_name_gets_the_operator_certificate_and_every_other_client_the_member_key() {
        // The hospital's own certificate authority and its certificate for the portal.
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = CertificateParams::new(vec!["portal.hospital.example".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert_file, key_file) = (dir.path().join("portal.pem"), dir.path().join("portal.key"));
        std::fs::write(&cert_file, pem("CERTIFICATE", leaf.der())).unwrap();
        std::fs::write(&key_file, pem("PRIVATE KEY", &leaf_key.serialize_der())).unwrap();

        let member = cradle_ledger::Keypair::generate().unwrap();
        let names = ["portal.hospital.example".to_string()];
        let server = server_config(
            "County Hospital 1",
            &member.ed25519_seed(),
            vec!["127.0.0.1".into()],
            Some(OperatorCert {
                cert_file: &cert_file,
                key_file: &key_file,
                names: &names,
            }),
            None,
        )
        .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        // A browser that trusts the hospital's authority opens the portal by its name.
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let browser = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let got = handshake(server.clone(), Arc::new(browser), "portal.hospital.example").unwrap();
        assert_eq!(got.as_ref(), leaf.der().as_ref());

        // Everyone else, by address or another name, meets the member key genesis lists.
        let any = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer))
            .with_no_client_auth();
        let any = Arc::new(any);
        for name in ["127.0.0.1", "node.hospital.example"] {
            let got = handshake(server.clone(), any.clone(), name).unwrap();
            let spki = rustls::server::ParsedCertificate::try_from(&got)
                .unwrap()
                .subject_public_key_info();
            let expected = cradle_genesis::tlscert::ed25519_spki(&member.public_key().0);
            assert_eq!(spki.as_ref(), expected.as_slice(), "{name}");
        }
    }
}
