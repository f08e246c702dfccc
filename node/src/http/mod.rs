//! The HTTP layer: parses requests and formats answers, nothing more.
//!
//! Each resource has its module — [`txs`], [`blocks`], [`records`] (committed ledger records),
//! [`archives`] (upload and fetch), [`audit`], and [`node`] (status, genesis, metrics) — over
//! the services that know nothing of HTTP: the store, the [`Submitter`], the [`Custodian`] and
//! [`crate::audit`]. [`auth`] checks signed requests, [`policy`] says who may read what, and
//! [`serve`] and [`tls`] carry it over TLS with connection limits. Every error answer is one [`HttpError`]:
//! a status, a stable machine-readable `code` and a one-line `error`
//! (see [`cradle_ledger::contract`]).

pub mod archives;
pub mod audit;
pub mod auth;
pub mod blocks;
pub mod bodies;
pub mod deadline;
pub mod governance;
pub mod node;
pub mod patient_keys;
pub mod policy;
pub mod portal;
pub mod rate;
pub mod records;
pub mod serve;
pub mod slots;
pub mod staff;
pub mod tls;
pub mod transfers;
pub mod txs;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use cradle_ledger::contract::{ErrorAnswer, ErrorCode, TX_BATCH_BYTES_MAX};
use cradle_ledger::{Consortium, PublicKey};
use serde_json::Value;
use tokio::sync::watch;

use crate::custodian::Custodian;
use crate::driver::{Status, SubmitError};
use crate::metrics::Metrics;
use crate::storage::Store;
use crate::submit::{Submitter, WaitError};
use auth::ReplayCache;

impl HttpState {
    /// The consortium in force at the next block.
    pub fn consortium(&self) -> Arc<Consortium> {
        self.members.current()
    }

    /// The member this node runs as, by its identity (what its records name), whichever key
    /// it signs with now.
    pub fn node_identity(&self) -> cradle_ledger::PublicKey {
        let c = self.consortium();
        c.signer(&self.node_key)
            .map_or(self.node_key, |m| m.public_key)
    }
}

/// What the handlers share.
pub struct HttpState {
    /// The member sets by height: requests are judged by the set in force at the next block.
    pub members: Arc<crate::members::Members>,
    /// This node's member name.
    pub member: String,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub status: watch::Receiver<Status>,
    pub submitter: Submitter,
    pub custodian: Arc<Custodian>,
    /// Nonces of signed requests seen within the allowed skew.
    pub replay: Mutex<ReplayCache>,
    /// How far a signed request's time may be from this node's clock.
    pub request_skew_ms: u64,
    /// This node's member key: signed requests must name it.
    pub node_key: PublicKey,
    /// When this process started: requests signed before it are refused (the replay cache
    /// does not survive a restart).
    pub started_ms: u64,
    /// The genesis document, as served at `/v1/genesis`.
    pub genesis: Value,
    /// Request rates per address and per key.
    pub rate: rate::RateLimiter,
    /// This institution's staff directory: its clinicians' names, off the ledger.
    pub directory: Arc<crate::directory::Directory>,
    /// Places for archive transfers served at once, in all and per key.
    pub transfers: Arc<transfers::Transfers>,
    /// How old the last block may be for `/readyz` to call the node synced.
    pub ready_lag_ms: u64,
    /// Where `POST /admin/checkpoint` writes (inside the data directory), and one at a time.
    pub backups: Arc<crate::ops::backup::Checkpoints>,
}

/// An error answer: a status, a stable code and a one-line reason.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    code: ErrorCode,
    error: String,
    /// Seconds to wait before trying again, for a refusal of load.
    retry_after_s: Option<u64>,
}

impl HttpError {
    pub fn new(status: StatusCode, code: ErrorCode, error: impl Into<String>) -> Self {
        Self {
            status,
            code,
            error: error.into(),
            retry_after_s: None,
        }
    }
    /// Tells the client when to try again.
    pub fn retry_after_s(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }
    pub fn bad(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, error)
    }
    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, error)
    }
    pub fn forbidden(error: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, error)
    }
    pub fn unavailable(error: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            error,
        )
    }
    /// A fault inside the node: logged here, and the caller learns only that it happened.
    pub fn internal(reason: impl std::fmt::Display) -> Self {
        tracing::error!(%reason, "api internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error",
        )
    }
    pub fn status(&self) -> StatusCode {
        self.status
    }
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let answer = ErrorAnswer {
            error: self.error.replace('\n', " "),
            code: self.code,
        };
        // A refusal of load always says when to come back.
        let retry = self
            .retry_after_s
            .or((self.status == StatusCode::SERVICE_UNAVAILABLE
                || self.status == StatusCode::TOO_MANY_REQUESTS)
                .then_some(1));
        let mut response = (self.status, axum::Json(answer)).into_response();
        if let Some(s) = retry {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        response
    }
}

impl From<SubmitError> for HttpError {
    fn from(e: SubmitError) -> Self {
        use crate::mempool::MempoolError;
        let (status, code) = match &e {
            SubmitError::Invalid(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidTx),
            SubmitError::UnknownSigner => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            SubmitError::Mempool(MempoolError::Full { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::MempoolFull)
            }
            SubmitError::Mempool(MempoolError::SignerBacklog(_) | MempoolError::SignerBytes(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Busy)
            }
            SubmitError::Mempool(_) => (StatusCode::CONFLICT, ErrorCode::TxConflict),
            SubmitError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            SubmitError::Busy => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Busy),
            SubmitError::DiskLow { .. } => (
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorCode::InsufficientStorage,
            ),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<WaitError> for HttpError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Submit(e) => e.into(),
            WaitError::Rejected { .. } => {
                Self::new(StatusCode::CONFLICT, ErrorCode::TxRejected, e.to_string())
            }
            WaitError::Timeout { .. } => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                ErrorCode::CommitTimeout,
                e.to_string(),
            ),
        }
    }
}

pub type HttpResult = Result<Response, HttpError>;

/// One route: its path, the methods it answers, and its handlers.
pub struct Route {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    handler: MethodRouter<Arc<HttpState>>,
}

fn route(
    path: &'static str,
    methods: &'static [&'static str],
    handler: MethodRouter<Arc<HttpState>>,
) -> Route {
    Route {
        path,
        methods,
        handler,
    }
}

/// Every route of the API, the one list the router is built from (and that the authorization
/// test walks, so no route escapes it). Each `GET` goes through [`policy::identify`] and its
/// handler asks [`policy`] before it reads anything.
pub fn routes() -> Vec<Route> {
    vec![
        route("/healthz", &["GET"], get(node::healthz)),
        route("/readyz", &["GET"], get(node::readyz)),
        route("/v1/status", &["GET"], get(node::status)),
        route("/v1/genesis", &["GET"], get(node::genesis)),
        route("/v1/txs", &["POST"], post(txs::submit)),
        route(
            "/v1/txs/batch",
            &["POST"],
            post(txs::submit_batch).layer(DefaultBodyLimit::max(TX_BATCH_BYTES_MAX)),
        ),
        route("/v1/txs/{hash}", &["GET"], get(txs::get)),
        route("/v1/nonce/{key}", &["GET"], get(txs::nonce)),
        route("/v1/blocks/{height}", &["GET"], get(blocks::get)),
        route("/v1/blocks/{height}/raw", &["GET"], get(blocks::raw)),
        route(
            "/v1/archives/{id}",
            &["GET", "PUT"],
            get(records::archive)
                .put(archives::put)
                .layer(DefaultBodyLimit::disable()),
        ),
        route("/v1/archives/{id}/fetch", &["POST"], post(archives::fetch)),
        route(
            "/v1/archives/{id}/proof",
            &["GET"],
            get(records::archive_proof),
        ),
        route(
            "/v1/patients/{key}/proof",
            &["GET"],
            get(records::patient_proof),
        ),
        route(
            "/v1/patients/{key}/identity/proof",
            &["GET"],
            get(records::patient_identity_proof),
        ),
        route("/v1/patients/{key}", &["GET"], get(records::patient)),
        route(
            "/v1/patients/{key}/keys",
            &["GET"],
            get(patient_keys::changes),
        ),
        route(
            "/v1/patients/{key}/archives",
            &["GET"],
            get(records::patient_archives),
        ),
        route(
            "/v1/patients/{key}/grants",
            &["GET"],
            get(records::patient_grants),
        ),
        route("/v1/grants/{id}", &["GET"], get(records::grant)),
        route(
            "/v1/grants/{id}/keys/{archive}",
            &["GET"],
            get(records::grant_key),
        ),
        route("/v1/members", &["GET"], get(records::members)),
        route("/v1/members/{key}/staff", &["GET"], get(staff::list)),
        route("/v1/staff/{key}", &["GET"], get(staff::get)),
        route(
            "/v1/staff/{key}/directory",
            &["GET", "PUT"],
            get(staff::directory).put(staff::set_directory),
        ),
        route("/v1/audit/patient/{key}", &["GET"], get(audit::patient)),
        route("/v1/audit/archive/{id}", &["GET"], get(audit::archive)),
        route("/v1/audit/accessor/{key}", &["GET"], get(audit::accessor)),
        route("/v1/audit/break-glass", &["GET"], get(audit::break_glass)),
        route("/v1/audit/consistency", &["GET"], get(audit::consistency)),
        route("/v1/audit/evidence", &["GET"], get(audit::evidence)),
        route(
            "/v1/audit/recoveries",
            &["GET"],
            get(patient_keys::recoveries),
        ),
        route("/v1/governance/sets", &["GET"], get(governance::sets)),
        route(
            "/v1/governance/proposals",
            &["GET"],
            get(governance::proposals),
        ),
        // The browser portal's static files: public, they hold no data.
        route("/portal", &["GET"], get(portal::redirect)),
        route("/portal/", &["GET"], get(portal::index)),
        route("/portal/{*path}", &["GET"], get(portal::file)),
    ]
}

/// The API's router, built from [`routes`].
pub fn router(state: Arc<HttpState>) -> Router {
    let body_max = state.consortium().limits.tx_bytes_max as usize;
    let mut router = Router::new();
    for r in routes() {
        router = router.route(r.path, r.handler);
    }
    router
        .fallback(|| async { HttpError::not_found("no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            policy::identify,
        ))
        .layer(axum::middleware::from_fn_with_state(
            bodies::BodyLimits::new(body_max),
            bodies::body_limits,
        ))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn(deadline::body_deadline))
        .layer(DefaultBodyLimit::max(body_max))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate::per_ip,
        ))
        .with_state(state)
}

/// Answers the framework makes itself (a body over its limit, a path or query that does not
/// parse, a method the route does not take) in the API's one error shape, with a code, like
/// every other refusal.
async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::LENGTH_REQUIRED => ErrorCode::LengthRequired,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    };
    // The framework's own reason is one short line; keep at most a little of it.
    let reason = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let reason = if reason.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase()
    } else {
        reason
    };
    HttpError::new(status, code, reason).into_response()
}

/// The operator's own endpoint, on `api.metrics_listen` (loopback by default), never on the
/// API's address: Prometheus metrics, `/healthz` and `/readyz` for a load balancer, and
/// `POST /admin/checkpoint`, which `cradle-node backup` asks for a consistent copy of the ledger
/// while the node runs (written inside the data directory only).
pub fn metrics_router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/metrics", get(node::metrics))
        .route("/healthz", get(node::healthz))
        .route("/readyz", get(node::readyz))
        .route(
            "/admin/checkpoint",
            axum::routing::post(crate::ops::backup::checkpoint_handler),
        )
        .fallback(|| async { HttpError::not_found("no such endpoint") })
        .with_state(state)
}

/// 32 bytes from 64 hex digits in a path.
pub fn hex32(s: &str, what: &str) -> Result<[u8; 32], HttpError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| HttpError::bad(format!("{what} must be 64 hex digits")))?;
    Ok(out)
}
