//! Serving the router over TCP with the connection limits a public endpoint needs: most
//! connections in all and per IP address, a deadline for a request's headers (which also closes
//! a connection idle between requests), and a bound on header bytes. Over TLS ([`super::tls`])
//! unless the operator asked for plain HTTP.
//!
//! When every slot (or every slot of one address) is taken, a newcomer does not simply wait:
//! it takes the slot of a connection that has done nothing yet (still in its handshake, or no
//! request sent), the oldest first, or else of one idle between requests for a while. A
//! connection serving a request is never cut. So holding slots open with half-sent handshakes,
//! from one address or many, no longer locks anyone out: each real client's connection is
//! younger than the attacker's and is busy within milliseconds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

/// Most header bytes (and read buffer) of one request.
pub const HEADER_BYTES_MAX: usize = 64 * 1024;
/// Most header fields in one request.
pub const HEADERS_MAX: usize = 64;

/// The API's connection limits.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    pub connections_max: usize,
    pub connections_per_ip_max: usize,
    pub header_read_timeout: Duration,
    /// Longest a request in flight may go without progress.
    pub answer_stall: Duration,
}

impl ServeLimits {
    pub fn from_config(api: &cradle_genesis::config::ApiConfig) -> Self {
        Self {
            connections_max: api.connections_max,
            connections_per_ip_max: api.connections_per_ip_max,
            header_read_timeout: Duration::from_millis(api.header_read_timeout_ms),
            answer_stall: Duration::from_millis(api.answer_stall_ms),
        }
    }
}

/// How long a connection that has served requests must have been idle before a newcomer may
/// take its slot.
pub const IDLE_EVICTABLE: Duration = Duration::from_secs(2);

/// One open connection, as the slot table sees it.
struct Conn {
    ip: IpAddr,
    opened: Instant,
    requests: AtomicU64,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` of the last request's end (or start).
    last_ms: AtomicU64,
    close: Notify,
}

impl Conn {
    /// Whether a newcomer may take this slot, and how early it should go (lower first).
    fn evictable(&self, now: Instant) -> Option<(bool, Duration)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if self.requests.load(Ordering::Acquire) == 0 {
            return Some((false, now.duration_since(self.opened)));
        }
        let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Acquire));
        let idle = now.saturating_duration_since(last);
        (idle >= IDLE_EVICTABLE).then_some((true, idle))
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Release);
    }
}

#[derive(Default)]
struct Table {
    open: HashMap<u64, Arc<Conn>>,
    per_ip: HashMap<IpAddr, usize>,
    next_id: u64,
}

impl Table {
    fn forget(&mut self, id: u64) -> Option<Arc<Conn>> {
        let conn = self.open.remove(&id)?;
        if let Some(n) = self.per_ip.get_mut(&conn.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&conn.ip);
            }
        }
        Some(conn)
    }

    /// Closes the connection (of `ip`, if given) a newcomer should replace; false if none may go.
    fn evict_one(&mut self, ip: Option<IpAddr>, now: Instant) -> bool {
        let victim = self
            .open
            .iter()
            .filter(|(_, c)| ip.is_none_or(|ip| c.ip == ip))
            .filter_map(|(id, c)| c.evictable(now).map(|(active, age)| (active, age, *id)))
            // Those that never sent a request first, then the longest idle; the oldest first.
            .min_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        match victim.and_then(|(_, _, id)| self.forget(id)) {
            Some(conn) => {
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// The open connections, in all and per address.
#[derive(Default)]
struct Slots {
    table: Mutex<Table>,
    evicted: AtomicU64,
}

/// A connection's place in [`Slots`], given back when dropped.
struct Slot {
    id: u64,
    conn: Arc<Conn>,
    slots: Arc<Slots>,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for a connection from `ip`, taking one that may go if the table is full.
    fn take(self: &Arc<Self>, ip: IpAddr, limits: &ServeLimits) -> Option<Slot> {
        let now = Instant::now();
        let mut table = self.lock();
        if table.per_ip.get(&ip).copied().unwrap_or(0) >= limits.connections_per_ip_max {
            if !table.evict_one(Some(ip), now) {
                return None;
            }
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        if table.open.len() >= limits.connections_max {
            if !table.evict_one(None, now) {
                return None;
            }
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let id = table.next_id;
        table.next_id = table.next_id.wrapping_add(1);
        let conn = Arc::new(Conn {
            ip,
            opened: now,
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            close: Notify::new(),
        });
        table.open.insert(id, conn.clone());
        *table.per_ip.entry(ip).or_insert(0) += 1;
        Some(Slot {
            id,
            conn,
            slots: self.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().forget(self.id);
    }
}

/// Counts a request in flight on its connection until its answer's body is dropped (sent, or
/// the connection gone).
struct InFlight(Arc<Conn>);

impl InFlight {
    fn new(conn: Arc<Conn>) -> Self {
        conn.requests.fetch_add(1, Ordering::AcqRel);
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.touch();
        Self(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A body that marks its connection's progress with each piece that passes: a request's as
/// the handler reads it, an answer's (which also keeps its request counted in flight) as the
/// client takes it.
struct Progress {
    inner: Body,
    conn: Arc<Conn>,
    _in_flight: Option<InFlight>,
}

impl http_body::Body for Progress {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            this.conn.touch();
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

/// Marks the connection busy for the whole of each request, answer body included, and its
/// progress as either body moves.
async fn track(conn: Arc<Conn>, request: Request, next: Next) -> Response {
    let in_flight = InFlight::new(conn.clone());
    let request = request.map(|inner| {
        Body::new(Progress {
            inner,
            conn: conn.clone(),
            _in_flight: None,
        })
    });
    let response = next.run(request).await;
    response.map(|inner| {
        Body::new(Progress {
            inner,
            conn,
            _in_flight: Some(in_flight),
        })
    })
}

/// Resolves when the connection has had a request in flight without progress for `max`
/// (`api.answer_stall_ms`): a client that never reads a large answer would otherwise hold its
/// slot forever, since a busy slot is never taken.
async fn stalled(conn: &Conn, max: Duration) {
    let mut tick = tokio::time::interval((max / 4).max(Duration::from_millis(250)));
    loop {
        tick.tick().await;
        if conn.in_flight.load(Ordering::Acquire) == 0 {
            continue;
        }
        let last = conn.opened + Duration::from_millis(conn.last_ms.load(Ordering::Acquire));
        if last.elapsed() >= max {
            return;
        }
    }
}

/// Accepts connections until the listener fails, serving each on its own task; over TLS when
/// `tls` is given (the handshake has the header deadline too, so a client that stalls in it
/// holds its slot no longer than one that stalls in its headers). `evicted` counts the
/// connections closed to make room for newcomers.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
    evicted: Option<Arc<AtomicU64>>,
) -> std::io::Result<()> {
    let slots = Arc::new(Slots::default());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin, then go on.
                warn!(error = %e, "api accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let before = slots.evicted.load(Ordering::Relaxed);
        let Some(slot) = slots.take(peer.ip(), &limits) else {
            debug!(%peer, "api connection refused: every slot is busy");
            continue;
        };
        if let Some(counter) = &evicted {
            let now = slots.evicted.load(Ordering::Relaxed);
            counter.fetch_add(now.saturating_sub(before), Ordering::Relaxed);
        }
        let _ = stream.set_nodelay(true);
        // Each request carries the address it came from, for the per-address rate, and marks
        // its connection busy while it is served.
        let conn = slot.conn.clone();
        let service = TowerToHyperService::new(
            router
                .clone()
                .layer(axum::middleware::from_fn(move |request, next| {
                    track(conn.clone(), request, next)
                }))
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(HEADER_BYTES_MAX)
                .max_headers(HEADERS_MAX);
            let serve = async {
                match tls {
                    None => http.serve_connection(TokioIo::new(stream), service).await,
                    Some(tls) => {
                        let handshake =
                            tokio::time::timeout(limits.header_read_timeout, tls.accept(stream))
                                .await;
                        match handshake {
                            Ok(Ok(stream)) => {
                                http.serve_connection(TokioIo::new(stream), service).await
                            }
                            Ok(Err(e)) => {
                                debug!(%peer, error = %e, "api TLS handshake failed");
                                Ok(())
                            }
                            Err(_) => {
                                debug!(%peer, "api TLS handshake timed out");
                                Ok(())
                            }
                        }
                    }
                }
            };
            tokio::select! {
                served = serve => {
                    if let Err(e) = served {
                        debug!(%peer, error = %e, "api connection ended");
                    }
                }
                () = slot.conn.close.notified() => {
                    debug!(%peer, "api connection closed to make room for a newcomer");
                }
                () = stalled(&slot.conn, limits.answer_stall) => {
                    debug!(%peer, "api connection closed: its answer made no progress");
                }
            }
            drop(slot);
        });
    }
}
