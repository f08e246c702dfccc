//! A blocking client for a node's HTTP/JSON API.

use cradle_ledger::governance::{SetChange, SetChanges};
use std::time::Duration;

use cradle_ledger::contract::{
    ACCESS_TX_HEADER, ErrorAnswer, ErrorCode, OUTCOME_HEADER, WRAPPED_KEY_HEADER,
};
use serde_json::Value;

use crate::tls::Pins;
use cradle_ledger::api_request::{AUTH_HEADER, ApiRequest};
use cradle_ledger::crypto::sha256;
use cradle_ledger::{Hash, Keypair, PublicKey};
use std::sync::{Arc, OnceLock};

/// Why a call to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The node answered with an error status, its one-line reason and, from a node that
    /// speaks the contract, the machine-readable code.
    #[error("{reason} (HTTP {status})")]
    Refused {
        status: u16,
        reason: String,
        code: Option<ErrorCode>,
    },
    #[error("cannot reach the node: {0}")]
    Transport(String),
    #[error("unexpected answer from the node: {0}")]
    BadAnswer(String),
}

/// What a fetch answered: the ciphertext stream, or a refusal.
pub enum Fetched {
    Stream(FetchStream),
    Refused {
        status: u16,
        reason: String,
        /// The access record of a denial, when the custodian logged one.
        access_tx: Option<String>,
        code: Option<ErrorCode>,
    },
}

/// A permitted fetch: the custodian's headers and the ciphertext as it arrives.
pub struct FetchStream {
    pub outcome: String,
    pub access_tx: String,
    pub wrapped_key_hex: String,
    pub body: Box<dyn std::io::Read + Send>,
}

/// How long to wait before signing a read again for a node that has just restarted (it takes
/// requests dated 2 s past its start).
const RESIGN_AFTER: Duration = Duration::from_millis(2_100);

/// Largest answer the client reads from a node.
const ANSWER_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Largest answer of member set changes read.
pub(crate) const SET_CHANGES_BYTES_MAX: usize = 32 * 1024 * 1024;

/// Whether a read may be asked again: the node said it is busy (429, 503), or the connection
/// was cut, as a node out of connection slots does.
fn busy_or_cut(e: &ApiError) -> bool {
    match e {
        ApiError::Refused {
            code: Some(ErrorCode::RateLimited | ErrorCode::Busy),
            ..
        } => true,
        // Cut, not refused: a wrong certificate or an unreachable node is not asked again.
        ApiError::Transport(reason) => {
            reason.contains("reset by peer") || reason.contains("unexpected end of file")
        }
        _ => false,
    }
}

/// Times a read is asked again when the node answers 429 or 503 (or cuts the connection), waiting
/// [`BUSY_BACKOFF`] longer each time.
pub const BUSY_RETRIES: u32 = 3;
pub const BUSY_BACKOFF: Duration = Duration::from_millis(400);

pub struct ApiClient {
    base: String,
    agent: ureq::Agent,
    /// For transfers of large archives: no overall deadline, only a per-read one.
    upload_agent: ureq::Agent,
    /// The genesis keys this node may present; `None` for a plain-HTTP node.
    pins: Option<Pins>,
    /// Signs every request when set.
    signer: Option<Signer>,
    /// The member key of the node, once learned: signed requests name it.
    node_key: OnceLock<PublicKey>,
    /// Made by [`ApiClient::with_pins_brief`]: its short timeouts outlast [`ApiClient::signed_by`].
    brief: bool,
}

/// A key that signs a client's requests, for one chain.
struct Signer {
    key: Arc<Keypair>,
    chain_id: Hash,
}

impl ApiClient {
    /// A client for the node at `base` (`https://HOST:PORT`), pinned from `genesis`: it accepts
    /// only a server that proves it holds the key genesis gives the member at that address (or,
    /// for an address genesis does not list, some member's key). Plain `http://` is refused.
    pub fn new(base: &str, genesis: &cradle_genesis::GenesisDoc) -> Result<Self, ApiError> {
        if !base.starts_with("https://") {
            return Err(ApiError::Transport(format!(
                "{base}: a node's API is HTTPS (https://HOST:PORT); plain HTTP is refused \
                 unless you ask for it"
            )));
        }
        Self::with_pins(base, Pins::for_url(genesis, base))
    }

    /// A client pinned to `pins`.
    pub fn with_pins(base: &str, pins: Pins) -> Result<Self, ApiError> {
        Self::pinned(base, pins, Self::agent_config())
    }

    /// A client pinned to `pins` that gives up sooner on a node that does not answer: for
    /// asking one member's node after another, where a node that is down should not hold up
    /// the rest.
    pub fn with_pins_brief(base: &str, pins: Pins) -> Result<Self, ApiError> {
        let mut api = Self::pinned(base, pins, Self::brief_config())?;
        api.brief = true;
        Ok(api)
    }

    fn pinned(base: &str, pins: Pins, config: ureq::config::Config) -> Result<Self, ApiError> {
        let tls = |config| {
            crate::tls::agent(config, pins.clone(), None)
                .map_err(|e| ApiError::Transport(e.to_string()))
        };
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            agent: tls(config)?,
            upload_agent: tls(Self::upload_config())?,
            pins: Some(pins),
            signer: None,
            node_key: OnceLock::new(),
            brief: false,
        })
    }

    /// Signs every request from now on with `key`, for the chain `chain_id`: a node answers most
    /// reads only to whom they concern (see the node's `http::policy`).
    /// To a node with mutual TLS for members it also presents a certificate over `key`.
    pub fn signed_by(mut self, key: &Keypair, chain_id: Hash) -> Self {
        if let Some(pins) = &self.pins {
            let with_cert = |config| crate::tls::agent(config, pins.clone(), Some(key));
            let config = if self.brief {
                Self::brief_config()
            } else {
                Self::agent_config()
            };
            if let (Ok(agent), Ok(upload)) = (with_cert(config), with_cert(Self::upload_config())) {
                self.agent = agent;
                self.upload_agent = upload;
            }
        }
        self.signer = Some(Signer {
            key: Arc::new(Keypair::from_secret_parts(
                &key.ed25519_seed(),
                &key.x25519_secret(),
            )),
            chain_id,
        });
        self
    }

    /// The member key of the node behind this client: from genesis or the TLS handshake (a
    /// first unsigned status request makes the handshake if none was made yet); from a
    /// plain-HTTP node, its own word.
    pub fn node_key(&self) -> Result<PublicKey, ApiError> {
        if let Some(k) = self.node_key.get() {
            return Ok(*k);
        }
        let key = match self.node_member() {
            Some((_, k)) => k,
            None => {
                let url = format!("{}/v1/status", self.base);
                let status = Self::json(&Self::answer(self.agent.get(&url).call())?)?;
                match self.node_member() {
                    Some((_, k)) => k,
                    None if self.pins.is_none() => status
                        .get("node_key")
                        .and_then(Value::as_str)
                        .and_then(|h| PublicKey::from_hex(h).ok())
                        .ok_or_else(|| ApiError::BadAnswer("the node names no key".into()))?,
                    None => {
                        return Err(ApiError::Transport(
                            "the node's TLS identity is unknown".into(),
                        ));
                    }
                }
            }
        };
        Ok(*self.node_key.get_or_init(|| key))
    }

    /// The signed-request header for `method path` with a body hashing to `body_sha256`,
    /// signed by `key` for this node.
    pub fn auth_with(
        &self,
        key: &Keypair,
        chain_id: &Hash,
        method: &str,
        path: &str,
        body_sha256: Hash,
    ) -> Result<String, ApiError> {
        let request = ApiRequest::new(
            key.public_key(),
            self.node_key()?,
            method,
            path,
            body_sha256,
            cradle_genesis::clock::now_ms(),
        )
        .map_err(|e| ApiError::BadAnswer(format!("cannot sign the request: {e}")))?;
        Ok(request.sign(key, chain_id).to_header())
    }

    /// `GET path`, signed when this client has a signer. A node that has just restarted
    /// refuses requests signed in its first moments (its replay cache starts empty); such a
    /// read is signed again once, a moment later.
    fn get(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        match &self.signer {
            Some(s) => self.get_signed_as(&s.key, &s.chain_id, path),
            None => {
                let url = format!("{}{}", self.base, path);
                let mut waited = 0;
                loop {
                    match Self::answer(self.agent.get(&url).call()) {
                        Err(e) if busy_or_cut(&e) && waited < BUSY_RETRIES => {
                            waited += 1;
                            std::thread::sleep(BUSY_BACKOFF * waited);
                        }
                        other => return other,
                    }
                }
            }
        }
    }

    /// `GET path` signed by `key` for the chain `chain_id`; signed again once, a moment
    /// later, if the node has just restarted, and up to [`BUSY_RETRIES`] times if it is busy.
    pub fn get_signed_as(
        &self,
        key: &Keypair,
        chain_id: &Hash,
        path: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let once = || {
            let auth = self.auth_with(key, chain_id, "GET", path, sha256(b""))?;
            self.get_bytes_signed(path, AUTH_HEADER, &auth)
        };
        let mut resigned = false;
        let mut waited = 0;
        loop {
            match once() {
                Err(ApiError::Refused {
                    code: Some(ErrorCode::StaleRequest),
                    ..
                }) if !resigned => {
                    resigned = true;
                    std::thread::sleep(RESIGN_AFTER);
                }
                // A node under load asks to come back shortly, or cuts a connection it has
                // no slot for: a read is signed afresh and asked again a few times, a little
                // later each time.
                Err(e) if busy_or_cut(&e) && waited < BUSY_RETRIES => {
                    waited += 1;
                    std::thread::sleep(BUSY_BACKOFF * waited);
                }
                other => return other,
            }
        }
    }

    /// A client for a node that serves plain HTTP because its operator said so
    /// (`api.plaintext`): nothing it answers is authenticated by the transport.
    pub fn plaintext(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent: Self::agent_config().into(),
            upload_agent: Self::upload_config().into(),
            pins: None,
            signer: None,
            node_key: OnceLock::new(),
            brief: false,
        }
    }

    /// The node's URL, as `https://HOST:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The pins this client checks the node's TLS key against (shared: a refusal on any
    /// connection shows in [`Pins::refused`]); `None` for plain HTTP.
    pub fn pins(&self) -> Option<Pins> {
        self.pins.clone()
    }

    /// Whether the node presented a TLS key that none of the pinned members holds.
    pub fn pin_refused(&self) -> bool {
        self.pins.as_ref().is_some_and(Pins::refused)
    }

    /// The member whose node this is, once known: from the URL's entry in genesis, or from the
    /// key the node proved it holds in the TLS handshake.
    pub fn node_member(&self) -> Option<(String, cradle_ledger::PublicKey)> {
        self.pins.as_ref().and_then(Pins::node)
    }

    fn agent_config() -> ureq::config::Config {
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
    }

    fn brief_config() -> ureq::config::Config {
        ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(20)))
            .http_status_as_error(false)
            .build()
    }

    fn upload_config() -> ureq::config::Config {
        ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            // A whole archive's transfer: generous, but a stalled peer still ends.
            .timeout_send_body(Some(Duration::from_secs(3600)))
            .timeout_recv_body(Some(Duration::from_secs(3600)))
            .http_status_as_error(false)
            .build()
    }

    fn answer(
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Vec<u8>, ApiError> {
        let mut response = response.map_err(|e| ApiError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(ANSWER_BYTES_MAX)
            .read_to_vec()
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        if status >= 400 {
            return Err(Self::refusal(status, &body));
        }
        Ok(body)
    }

    /// An error answer: the contract's `{"error", "code"}`, or whatever text came (a proxy's).
    fn refusal(status: u16, body: &[u8]) -> ApiError {
        match serde_json::from_slice::<ErrorAnswer>(body) {
            Ok(a) => ApiError::Refused {
                status,
                reason: a.error,
                code: Some(a.code),
            },
            Err(_) => ApiError::Refused {
                status,
                reason: serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string()),
                code: None,
            },
        }
    }

    fn json(body: &[u8]) -> Result<Value, ApiError> {
        serde_json::from_slice(body).map_err(|e| ApiError::BadAnswer(e.to_string()))
    }

    /// `GET path` as JSON, signed when this client has a signer.
    pub fn get_json(&self, path: &str) -> Result<Value, ApiError> {
        Self::json(&self.get(path)?)
    }

    /// `GET path` as bytes, signed when this client has a signer.
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        self.get(path)
    }

    /// The member set changes the node serves (`GET /v1/governance/sets`), decoded within
    /// bounds and not yet verified: [`crate::trust`] checks each against genesis, and decides
    /// what a refusal (401 or 403, which the node gives a key it does not know) means. A
    /// node's answer never stands for membership alone.
    pub fn member_set_changes(&self) -> Result<Vec<SetChange>, ApiError> {
        let bytes = self.get_bytes("/v1/governance/sets")?;
        let changes: SetChanges = cradle_ledger::codec::decode(&bytes, SET_CHANGES_BYTES_MAX)
            .map_err(|e| ApiError::BadAnswer(format!("member set changes: {e}")))?;
        Ok(changes.into_inner())
    }

    /// `GET path` with a signed-request header.
    pub fn get_bytes_signed(
        &self,
        path: &str,
        auth_header: &str,
        auth: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let url = format!("{}{}", self.base, path);
        Self::answer(self.agent.get(&url).header(auth_header, auth).call())
    }

    pub fn status(&self) -> Result<Value, ApiError> {
        self.get_json("/v1/status")
    }

    pub fn block(&self, height: u64) -> Result<Value, ApiError> {
        self.get_json(&format!("/v1/blocks/{height}"))
    }

    /// Submits an encoded signed transaction; with `wait`, returns once it is committed.
    pub fn submit(&self, tx: &[u8], wait: bool) -> Result<Value, ApiError> {
        let url = format!(
            "{}/v1/txs{}",
            self.base,
            if wait { "?wait=commit" } else { "" }
        );
        let response = self
            .agent
            .post(&url)
            .header("content-type", "application/octet-stream")
            .send(tx);
        Self::json(&Self::answer(response)?)
    }

    /// POSTs raw bytes and reads a JSON answer.
    pub fn post_bytes(&self, path: &str, body: &[u8]) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.base, path);
        let response = self
            .agent
            .post(&url)
            .header("content-type", "application/octet-stream")
            .send(body);
        Self::json(&Self::answer(response)?)
    }

    /// `PUT path` with a small JSON body, signed with `auth` in `auth_header`.
    pub fn put_json(
        &self,
        path: &str,
        auth: &str,
        auth_header: &str,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.base, path);
        let response = self
            .agent
            .put(&url)
            .header("content-type", "application/json")
            .header(auth_header, auth)
            .send(body);
        Self::json(&Self::answer(response)?)
    }

    /// Streams `len` bytes from `body` to `PUT path`, signed with `auth` in `auth_header`.
    pub fn put_reader(
        &self,
        path: &str,
        auth: &str,
        auth_header: &str,
        len: u64,
        body: &mut dyn std::io::Read,
    ) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.base, path);
        let response = self
            .upload_agent
            .put(&url)
            .header("content-type", "application/octet-stream")
            .header("content-length", len.to_string())
            // The node answers a refused upload (not a member, too large) before any of the
            // body is sent, instead of cutting the connection mid-upload.
            .header("expect", "100-continue")
            .header(auth_header, auth)
            .send(ureq::SendBody::from_reader(body));
        Self::json(&Self::answer(response)?)
    }

    /// `POST path` with a signed body; a success streams the ciphertext.
    pub fn fetch(
        &self,
        path: &str,
        auth: &str,
        auth_header: &str,
        body: &[u8],
    ) -> Result<Fetched, ApiError> {
        let url = format!("{}{}", self.base, path);
        let response = self
            .upload_agent
            .post(&url)
            .header("content-type", "application/octet-stream")
            .header(auth_header, auth)
            .send(body)
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        if status >= 400 {
            let mut response = response;
            let body = response
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_vec()
                .map_err(|e| ApiError::Transport(e.to_string()))?;
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let reason = v
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
            let access_tx = v
                .get("access_tx")
                .and_then(Value::as_str)
                .map(str::to_string);
            let code = v
                .get("code")
                .and_then(|c| serde_json::from_value::<ErrorCode>(c.clone()).ok());
            return Ok(Fetched::Refused {
                status,
                reason,
                access_tx,
                code,
            });
        }
        let header = |name: &str| -> Result<String, ApiError> {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| ApiError::BadAnswer(format!("missing {name} header")))
        };
        let outcome = header(OUTCOME_HEADER)?;
        let access_tx = header(ACCESS_TX_HEADER)?;
        let wrapped_key_hex = header(WRAPPED_KEY_HEADER)?;
        Ok(Fetched::Stream(FetchStream {
            outcome,
            access_tx,
            wrapped_key_hex,
            body: Box::new(response.into_body().into_reader()),
        }))
    }

    /// The signer's last committed nonce, if it ever signed anything.
    pub fn last_nonce(&self, key_hex: &str) -> Result<Option<u64>, ApiError> {
        let v = self.get_json(&format!("/v1/nonce/{key_hex}"))?;
        Ok(v.get("last_nonce").and_then(Value::as_u64))
    }
}
