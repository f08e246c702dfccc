//! HTTPS to a member's node, pinned from the genesis file and the member sets verified from it.
//!
//! Each node serves TLS 1.3 with a certificate whose key is its member's ed25519 key (genesis's,
//! or the one a vote rotated it to; self-signed by that key; see `cradle_node::http::tls`). No
//! certificate authority is involved: the client accepts a server only if the certificate's
//! public key is a pinned member's and the handshake's signature verifies under it, so a proxy
//! without a member's secret key can neither read nor forge an answer. When the URL's
//! `host:port` is a member's `api_addr`, only that member's key is accepted; otherwise any
//! member's, and the first one seen is then the only one this client accepts, so a connection
//! cannot silently move to another node. Which keys those are now is [`crate::trust`]'s to say:
//! a key a vote replaced is refused, and named as such.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, PoisonError};

use cradle_genesis::GenesisDoc;
use cradle_ledger::PublicKey;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

/// The SubjectPublicKeyInfo a member's certificate must carry.
pub fn member_spki(key: &PublicKey) -> Vec<u8> {
    cradle_genesis::tlscert::ed25519_spki(&key.0)
}

/// The TLS crypto this workspace uses: rustls over ring, TLS 1.3 only.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which members' keys a client accepts from a node at one URL.
#[derive(Clone, Debug)]
pub struct Pins {
    /// (member name, key) pairs acceptable for this URL.
    members: Vec<(String, PublicKey)>,
    /// The key the first handshake presented; every later one must present the same.
    seen: Arc<Mutex<Option<(String, PublicKey)>>>,
    /// Whether a handshake presented a key none of `members` holds.
    refused: Arc<std::sync::atomic::AtomicBool>,
    /// The key a refused handshake presented, when it was an Ed25519 key.
    refused_key: Arc<Mutex<Option<PublicKey>>>,
    /// Keys that signed for a member once and do not now, each with what to say of it
    /// ("County Hospital 2's key until epoch 1"): a refusal names them.
    former: Arc<Vec<(PublicKey, String)>>,
}

impl Pins {
    /// The members acceptable at `url`: the one whose `api_addr` is the URL's `host:port`, or,
    /// when none is, any member with an API.
    pub fn for_url(genesis: &GenesisDoc, url: &str) -> Self {
        Self::for_url_among(
            genesis
                .members
                .iter()
                .map(|m| (m.name.as_str(), m.api_addr.as_deref(), m.public_key)),
            url,
        )
    }

    /// The members acceptable at `url` in a member set the client verified from genesis (see
    /// `cradle_ledger::governance::Sets`), by the keys that sign for them now: how a client
    /// reaches a node whose key a vote rotated, or a member genesis does not list.
    pub fn for_url_in(consortium: &cradle_ledger::Consortium, url: &str) -> Self {
        Self::for_url_among(
            consortium
                .members
                .iter()
                .map(|m| (m.name.as_str(), m.api_addr.as_deref(), m.signing_key())),
            url,
        )
    }

    fn for_url_among<'a>(
        members: impl Iterator<Item = (&'a str, Option<&'a str>, PublicKey)> + Clone,
        url: &str,
    ) -> Self {
        let authority = authority_of(url);
        let exact: Vec<_> = members
            .clone()
            .filter(|(_, api, _)| *api == Some(authority))
            .map(|(name, _, key)| (name.to_string(), key))
            .collect();
        let members = if exact.is_empty() {
            members
                .map(|(name, _, key)| (name.to_string(), key))
                .collect()
        } else {
            exact
        };
        Self::of(members)
    }

    fn of(members: Vec<(String, PublicKey)>) -> Self {
        Self {
            members,
            seen: Arc::new(Mutex::new(None)),
            refused: Arc::default(),
            refused_key: Arc::default(),
            former: Arc::default(),
        }
    }

    /// These pins, naming `former` keys (each with what to say of it) when a node presents
    /// one: a refusal then says whose key it was, not only that it is no member's now.
    pub fn naming_former(mut self, former: Vec<(PublicKey, String)>) -> Self {
        self.former = Arc::new(former);
        self
    }

    /// Whether a node presented a key that none of the pinned members holds.
    pub fn refused(&self) -> bool {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The Ed25519 key a refused node presented, if one was refused.
    pub fn refused_key(&self) -> Option<PublicKey> {
        *self
            .refused_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Pinned to exactly one key (a test's own server, say).
    pub fn exactly(name: &str, key: PublicKey) -> Self {
        Self::of(vec![(name.to_string(), key)])
    }

    /// The member whose key the node proved it holds, once a connection was made; or the one
    /// member this URL can be, before.
    pub fn node(&self) -> Option<(String, PublicKey)> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.clone().or_else(|| match self.members.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        })
    }

    fn accept(&self, spki: &[u8]) -> Result<(), rustls::Error> {
        let presented = self
            .members
            .iter()
            .find(|(_, k)| member_spki(k) == spki)
            .ok_or_else(|| self.refuse(spki))?;
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        match &*seen {
            Some((_, k)) if *k != presented.1 => Err(rustls::Error::General(format!(
                "the node at this address changed identity (now {})",
                presented.0
            ))),
            _ => {
                *seen = Some(presented.clone());
                Ok(())
            }
        }
    }

    /// Records a refused key and says what it is.
    fn refuse(&self, spki: &[u8]) -> rustls::Error {
        self.refused
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let key = ed25519_of_spki(spki);
        *self
            .refused_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = key;
        let former = key.and_then(|k| self.former.iter().find(|(f, _)| *f == k));
        rustls::Error::General(match (key, former) {
            (Some(k), Some((_, what))) => format!(
                "the node proves key {k}, which was {what} and signs for no member now: \
                 it was rotated out or removed, so whoever answers is not the member"
            ),
            _ => "the node's TLS key is not the key the genesis file gives it (nor a vote \
                  since): a proxy or an impostor is answering"
                .into(),
        })
    }
}

/// The Ed25519 key of a SubjectPublicKeyInfo, if it is one.
fn ed25519_of_spki(spki: &[u8]) -> Option<PublicKey> {
    let prefix = member_spki(&PublicKey([0; 32]));
    let prefix = prefix.get(..prefix.len().checked_sub(32)?)?;
    let key = spki.strip_prefix(prefix)?;
    Some(PublicKey(key.try_into().ok()?))
}

/// `host:port` of `scheme://host:port/...`.
pub fn authority_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

/// Accepts a server certificate only if its key is a pinned member's.
#[derive(Debug)]
struct PinnedVerifier {
    pins: Pins,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        self.pins.accept(cert.subject_public_key_info().as_ref())?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// The rustls client configuration for `pins`.
pub fn client_config(pins: Pins) -> Result<Arc<ClientConfig>, rustls::Error> {
    client_config_as(pins, None)
}

/// [`client_config`], presenting a certificate over `identity`'s key to a node that asks for
/// one (a node with mutual TLS for members; no other node asks).
pub fn client_config_as(
    pins: Pins,
    identity: Option<&cradle_ledger::Keypair>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = provider();
    let verifier = PinnedVerifier {
        pins,
        algorithms: provider.signature_verification_algorithms,
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(key) => {
            let made =
                cradle_genesis::tlscert::self_signed("cradle client", &key.ed25519_seed(), vec![])
                    .map_err(|e| rustls::Error::General(format!("client certificate: {e}")))?;
            builder.with_client_auth_cert(
                vec![CertificateDer::from(made.cert_der)],
                rustls::pki_types::PrivateKeyDer::Pkcs8(
                    rustls::pki_types::PrivatePkcs8KeyDer::from(made.key_pkcs8.to_vec()),
                ),
            )?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A ureq connector that wraps the TCP transport in TLS pinned to genesis members.
#[derive(Debug)]
pub struct PinnedTlsConnector {
    config: Arc<ClientConfig>,
}

impl PinnedTlsConnector {
    pub fn new(config: Arc<ClientConfig>) -> Self {
        Self { config }
    }
}

fn tls_error(e: impl std::fmt::Display) -> ureq::Error {
    ureq::Error::Io(std::io::Error::other(format!("TLS: {e}")))
}

impl<In: Transport> Connector<In> for PinnedTlsConnector {
    type Out = Either<In, PinnedTlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details
            .uri
            .host()
            .ok_or_else(|| tls_error("the URL has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let name = ServerName::try_from(host).map_err(tls_error)?;
        let mut conn = ClientConnection::new(self.config.clone(), name).map_err(tls_error)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(PinnedTlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// One TLS connection to a pinned node.
pub struct PinnedTlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for PinnedTlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedTlsTransport").finish()
    }
}

impl Transport for PinnedTlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// A ureq agent that speaks HTTPS pinned to `pins`, presenting `identity`'s certificate to a
/// node that asks for one.
pub fn agent(
    config: ureq::config::Config,
    pins: Pins,
    identity: Option<&cradle_ledger::Keypair>,
) -> Result<ureq::Agent, rustls::Error> {
    use ureq::unversioned::resolver::DefaultResolver;
    use ureq::unversioned::transport::TcpConnector;
    let tls = PinnedTlsConnector::new(client_config_as(pins, identity)?);
    Ok(ureq::Agent::with_parts(
        config,
        TcpConnector::default().chain(tls),
        DefaultResolver::default(),
    ))
}
