//! A deadline on reading a request's body: a client that stops sending mid-body, or trickles
//! it slower than any real upload, loses its connection instead of holding a slot forever.
//!
//! Each body frame must arrive within [`BODY_STALL_MAX`] of the previous one, and after the
//! first [`BODY_GRACE`] the body must have come at [`BODY_RATE_MIN`] bytes a second on
//! average, which a township clinic's slowest link clears a hundred times over.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Longest wait for the next piece of a body.
pub const BODY_STALL_MAX: Duration = Duration::from_secs(10);
/// How long a body may come slowly before its average rate counts.
pub const BODY_GRACE: Duration = Duration::from_secs(10);
/// Slowest average rate accepted after the grace, in bytes per second.
pub const BODY_RATE_MIN: u64 = 1024;

/// Wraps every request's body in [`Deadline`].
pub async fn body_deadline(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = Body::new(Deadline::new(body));
    next.run(Request::from_parts(parts, body)).await
}

/// A body that fails when it stalls or trickles.
pub struct Deadline {
    inner: Body,
    stall: Pin<Box<Sleep>>,
    started: Instant,
    received: u64,
}

impl Deadline {
    pub fn new(inner: Body) -> Self {
        Self {
            inner,
            stall: Box::pin(tokio::time::sleep(BODY_STALL_MAX)),
            started: Instant::now(),
            received: 0,
        }
    }
}

fn too_slow(what: &str) -> axum::Error {
    axum::Error::new(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("the request body {what}"),
    ))
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                self.received = self.received.saturating_add(len);
                let elapsed = self.started.elapsed();
                if elapsed > BODY_GRACE {
                    let floor = BODY_RATE_MIN.saturating_mul(elapsed.as_secs());
                    if self.received < floor {
                        return Poll::Ready(Some(Err(too_slow("arrives too slowly"))));
                    }
                }
                let next = Instant::now() + BODY_STALL_MAX;
                self.stall.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match self.stall.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(too_slow("stalled")))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
