//! The API's connection slots: which connection gives up its place when a newcomer needs one.
//!
//! Each open connection is a [`Conn`] in the [`Slots`] table, in all and per address. When every
//! slot (or every slot of one address) is taken, a newcomer takes the slot of, in order: a
//! connection that has done nothing since its 1 s of grace (a handshake or first request never
//! finished); an idle one that never made a signed request; one trickling a request body under
//! 16 KiB/s; an idle one that did, after 2 s. A connection serving a request otherwise keeps
//! its slot, unless the request makes no progress for `api.answer_stall_ms` ([`stalled`]). A
//! newcomer that finds no slot to take waits a moment ([`Waiting`]) rather than being cut, so a
//! burst of half-open connections does not refuse the next real client.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Notify;

use super::serve::ServeLimits;

/// How long a new connection is left to finish its handshake and first request before a
/// newcomer may take its slot: a real client needs milliseconds.
pub const PENDING_GRACE: Duration = Duration::from_secs(1);
/// How long a connection whose requests all went unsigned (or were refused) must have idled:
/// not at all. Anyone can open such connections as fast as they are cut, so they give way to
/// every newcomer between their requests.
pub const ANONYMOUS_IDLE_EVICTABLE: Duration = Duration::ZERO;
/// How long a connection that made a signed request must have idled.
pub const IDLE_EVICTABLE: Duration = Duration::from_secs(2);
/// Slowest a request body may arrive, once it has had [`PENDING_GRACE`], without its slot
/// being taken when a newcomer needs one: far below any real link's upload.
pub const SLOW_BODY_BYTES_PER_S: u64 = 16 * 1024;

/// One open connection, as the slot table sees it.
pub(super) struct Conn {
    ip: IpAddr,
    opened: Instant,
    requests: AtomicU64,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` of the last progress: a request's start or end, a piece of
    /// its body read or of its answer taken.
    last_ms: AtomicU64,
    /// A request of this connection was signed by a known key and answered with success.
    signed: AtomicBool,
    /// The current request's body is still arriving: since when, and how much so far.
    receiving: AtomicBool,
    body_from_ms: AtomicU64,
    body_bytes: AtomicU64,
    pub(super) close: Notify,
}

/// How early a connection should give up its slot: lower ranks first, then the longer waited.
type Eviction = (u8, Duration);

impl Conn {
    fn since_opened(&self, ms: &AtomicU64) -> Instant {
        self.opened + Duration::from_millis(ms.load(Ordering::Acquire))
    }

    /// Whether a newcomer may take this slot, and how early it should go. First a connection
    /// that has done nothing since its grace; then an idle one that never made a signed
    /// request; then one trickling a request body; then an idle one that did.
    fn evictable(&self, now: Instant) -> Option<Eviction> {
        let age = now.saturating_duration_since(self.opened);
        let idle = now.saturating_duration_since(self.since_opened(&self.last_ms));
        if self.in_flight.load(Ordering::Acquire) > 0 {
            if !self.receiving.load(Ordering::Acquire) {
                return None;
            }
            let receiving_for =
                now.saturating_duration_since(self.since_opened(&self.body_from_ms));
            let secs = receiving_for.as_secs_f64();
            let rate = self.body_bytes.load(Ordering::Acquire) as f64 / secs.max(0.001);
            return (receiving_for >= PENDING_GRACE && rate < SLOW_BODY_BYTES_PER_S as f64)
                .then_some((2, receiving_for));
        }
        if self.requests.load(Ordering::Acquire) == 0 {
            return (age >= PENDING_GRACE).then_some((0, age));
        }
        if !self.signed.load(Ordering::Acquire) {
            return (idle >= ANONYMOUS_IDLE_EVICTABLE).then_some((1, idle));
        }
        (idle >= IDLE_EVICTABLE).then_some((3, idle))
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
            .filter_map(|(id, c)| c.evictable(now).map(|(rank, waited)| (rank, waited, *id)))
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
pub(super) struct Slots {
    table: Mutex<Table>,
    /// Connections closed to make room for a newcomer (the operator's metric, if given).
    evicted: Arc<AtomicU64>,
}

impl Slots {
    /// Requests being served now, answers still streaming included.
    pub(super) fn in_flight(&self) -> usize {
        let table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table
            .open
            .values()
            .map(|c| c.in_flight.load(Ordering::Acquire))
            .sum()
    }
}

/// A connection's place in [`Slots`], given back when dropped.
pub(super) struct Slot {
    id: u64,
    pub(super) conn: Arc<Conn>,
    slots: Arc<Slots>,
}

impl Slots {
    pub(super) fn counting_into(evicted: Arc<AtomicU64>) -> Self {
        Self {
            table: Mutex::default(),
            evicted,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for a connection from `ip`, taking one that may go if the table is full.
    pub(super) fn take(self: &Arc<Self>, ip: IpAddr, limits: &ServeLimits) -> Option<Slot> {
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
            signed: AtomicBool::new(false),
            receiving: AtomicBool::new(false),
            body_from_ms: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
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
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.conn.touch();
                if this._in_flight.is_none()
                    && let Some(data) = frame.data_ref()
                {
                    this.conn
                        .body_bytes
                        .fetch_add(data.len() as u64, Ordering::AcqRel);
                }
            }
            Poll::Ready(None) if this._in_flight.is_none() => {
                this.conn.receiving.store(false, Ordering::Release);
            }
            _ => {}
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
pub(super) async fn track(conn: Arc<Conn>, request: Request, next: Next) -> Response {
    let in_flight = InFlight::new(conn.clone());
    let has_body = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || request
            .headers()
            .contains_key(axum::http::header::TRANSFER_ENCODING);
    conn.body_bytes.store(0, Ordering::Release);
    conn.body_from_ms
        .store(conn.last_ms.load(Ordering::Acquire), Ordering::Release);
    conn.receiving.store(has_body, Ordering::Release);
    let signed = request
        .headers()
        .contains_key(cradle_ledger::api_request::AUTH_HEADER);
    let request = request.map(|inner| {
        Body::new(Progress {
            inner,
            conn: conn.clone(),
            _in_flight: None,
        })
    });
    let response = next.run(request).await;
    // Whatever is left of the body will not be read now.
    conn.receiving.store(false, Ordering::Release);
    // A signature the node accepted: this connection is someone's, not anyone's.
    if signed && response.status().is_success() {
        conn.signed.store(true, Ordering::Release);
    }
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
pub(super) async fn stalled(conn: &Conn, max: Duration) {
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

/// Most connections waiting at once for a slot to be given up, in all and from one address (so
/// that one address cannot fill the waiting room either).
pub const WAITING_MAX: usize = 256;
pub const WAITING_PER_IP_MAX: usize = 8;

/// A connection's place among those waiting for a slot, given back when dropped.
pub(super) struct Waiting {
    ip: IpAddr,
    table: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Waiting {
    fn lock(
        table: &Mutex<HashMap<IpAddr, usize>>,
    ) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn enter(table: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr) -> Option<Self> {
        let mut waiting = Self::lock(table);
        let total: usize = waiting.values().sum();
        let mine = waiting.get(&ip).copied().unwrap_or(0);
        if total >= WAITING_MAX || mine >= WAITING_PER_IP_MAX {
            return None;
        }
        waiting.insert(ip, mine + 1);
        Some(Self {
            ip,
            table: table.clone(),
        })
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waiting = Self::lock(&self.table);
        if let Some(n) = waiting.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                waiting.remove(&self.ip);
            }
        }
    }
}
/// Longest a connection waits for a slot before it is closed.
pub const WAIT_FOR_SLOT: Duration = Duration::from_millis(1_500);
