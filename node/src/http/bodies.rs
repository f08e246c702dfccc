//! Request bodies: each route's limit, checked against the declared length before a byte is
//! read, and a budget for the bodies that must be buffered whole before their signatures can be
//! checked (transactions and batches).
//!
//! The budget ([`BODY_BUDGET_KIB`]) is booked as the bytes arrive, so it bounds what the node
//! really holds, and such a body must arrive within [`BUFFERED_BODY_MAX`]: holding the budget
//! then costs an attacker the whole of it in bandwidth every half minute, not a trickle. Access
//! requests (at most 4 KiB, the fetch a clinician waits on) are outside it. A request that
//! finds the budget spent is answered 503 `busy`.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cradle_ledger::contract::{ACCESS_REQUEST_BYTES_MAX, ErrorCode, TX_BATCH_BYTES_MAX};
use futures::StreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::HttpError;

/// Most bytes of buffered transaction bodies held at once over all connections, in KiB.
pub const BODY_BUDGET_KIB: usize = 64 * 1024;
/// Most bytes over a route's limit that a refused body is read (and dropped) before the answer.
const DRAIN_MAX_BYTES: u64 = 1024 * 1024;
/// Longest such a body is read for.
const DRAIN_WAIT: Duration = Duration::from_secs(5);
/// Longest a buffered body may take to arrive.
pub const BUFFERED_BODY_MAX: Duration = Duration::from_secs(30);

/// The routes' limits and the shared budget.
#[derive(Clone)]
pub struct BodyLimits {
    body_max: usize,
    budget: Arc<Semaphore>,
}

impl BodyLimits {
    /// `body_max`: the limit of a route without one of its own (a transaction's).
    pub fn new(body_max: usize) -> Self {
        Self {
            body_max,
            budget: Arc::new(Semaphore::new(BODY_BUDGET_KIB)),
        }
    }
}

/// What one request booked, and whether it ran out.
#[derive(Default)]
struct Booked {
    permits: Mutex<Vec<OwnedSemaphorePermit>>,
    kib: std::sync::atomic::AtomicU64,
    spent: AtomicBool,
}

fn busy() -> Response {
    HttpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Busy,
        "too many request bodies in flight; retry shortly",
    )
    .into_response()
}

/// Refuses at once a body whose declared length is over the route's limit, rather than reading
/// up to the limit first, and a GET with a body; books a transaction body against the budget as
/// it arrives. Archive uploads stream to disk and have their own limit, checked by the
/// custodian.
pub async fn body_limits(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let (limit, what) = match path {
        "/v1/txs/batch" => (TX_BATCH_BYTES_MAX, "a transaction batch"),
        p if p.ends_with("/fetch") => (ACCESS_REQUEST_BYTES_MAX, "an access request"),
        _ if request.method() == Method::PUT => (usize::MAX, "an archive"),
        _ => (limits.body_max, "a request body"),
    };
    let buffered = request.method() == Method::POST && path.starts_with("/v1/txs");
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A read is signed over an empty body: one that carries a body is not what was signed.
    if request.method() == Method::GET && declared.is_some_and(|n| n > 0) {
        return HttpError::bad("a GET carries no body").into_response();
    }
    if let Some(declared) = declared
        && declared > u64::try_from(limit).unwrap_or(u64::MAX)
    {
        let refusal = HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("{what} is at most {limit} bytes; this one is {declared}"),
        )
        .into_response();
        // A body a little over the limit is read and dropped first: closing with it unread
        // would reset the connection, and the client would never see the answer. A huge one
        // is refused at once.
        let over = declared.saturating_sub(u64::try_from(limit).unwrap_or(u64::MAX));
        if over <= DRAIN_MAX_BYTES {
            let mut body = request.into_body().into_data_stream();
            let drain = async {
                let mut read = 0u64;
                while let Some(Ok(chunk)) = body.next().await {
                    read = read.saturating_add(chunk.len() as u64);
                    if read >= declared {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_WAIT, drain).await;
        }
        return refusal;
    }
    if !buffered {
        return next.run(request).await;
    }
    if limits.budget.available_permits() == 0 {
        return busy();
    }
    let booked = Arc::new(Booked::default());
    let request = request.map(|inner| {
        Body::new(Budgeted {
            inner,
            budget: limits.budget.clone(),
            booked: booked.clone(),
            bytes: 0,
            started: Instant::now(),
        })
    });
    let response = next.run(request).await;
    if booked.spent.load(Ordering::Acquire) {
        return busy();
    }
    // The body's bytes are released here, once its handler is done with them.
    drop(booked);
    response
}

/// A body that books its bytes against the budget as they arrive, and fails when the budget
/// is spent or the body is later than [`BUFFERED_BODY_MAX`].
struct Budgeted {
    inner: Body,
    budget: Arc<Semaphore>,
    booked: Arc<Booked>,
    bytes: u64,
    started: Instant,
}

impl http_body::Body for Budgeted {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.started.elapsed() > BUFFERED_BODY_MAX {
            return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::other(
                "the body took too long to arrive",
            )))));
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.bytes = this.bytes.saturating_add(data.len() as u64);
            let want = this.bytes.div_ceil(1024);
            let have = this.booked.kib.load(Ordering::Acquire);
            if want > have {
                let more = u32::try_from(want - have).unwrap_or(u32::MAX);
                match this.budget.clone().try_acquire_many_owned(more) {
                    Ok(permit) => {
                        this.booked.kib.store(want, Ordering::Release);
                        this.booked
                            .permits
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(permit);
                    }
                    Err(_) => {
                        this.booked.spent.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::other(
                            "the node's budget for request bodies is spent",
                        )))));
                    }
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A small request body read whole, at most `max` bytes: a larger one is refused with 413
/// (`what` names it) before it is buffered.
pub async fn read_small(
    body: axum::body::Body,
    max: usize,
    what: &str,
) -> Result<bytes::Bytes, super::HttpError> {
    axum::body::to_bytes(body, max).await.map_err(|_| {
        super::HttpError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            cradle_ledger::contract::ErrorCode::PayloadTooLarge,
            format!("{what} is at most {max} bytes"),
        )
    })
}
