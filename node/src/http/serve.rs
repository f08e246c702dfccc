//! Serving the router over TCP with the connection limits a public endpoint needs: most
//! connections in all and per IP address, a deadline for a request's headers (which also closes
//! a connection idle between requests), and a bound on header bytes. Over TLS ([`super::tls`])
//! unless the operator asked for plain HTTP.
//! Which connection gives up its slot to a newcomer is [`super::slots`]'s to say.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::slots::{Slot, Slots, WAIT_FOR_SLOT, Waiting, stalled, track};

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

/// Stops a server gracefully: when `stop` turns true it accepts no more connections and waits
/// up to `grace` for the requests in flight (a download, say) to finish.
pub struct Graceful {
    pub stop: watch::Receiver<bool>,
    pub grace: Duration,
}

/// Accepts connections until told to stop, serving each on its own task; over TLS when `tls`
/// is given (the handshake has the header deadline too, so a client that stalls in it holds
/// its slot no longer than one that stalls in its headers). `evicted` counts the connections
/// closed to make room for newcomers. On a graceful stop it returns once no request is in
/// flight, or when the grace is over.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
    evicted: Option<Arc<AtomicU64>>,
    graceful: Option<Graceful>,
) -> std::io::Result<()> {
    let slots = Arc::new(evicted.map_or_else(Slots::default, Slots::counting_into));
    let waiting = Arc::new(Mutex::new(HashMap::<IpAddr, usize>::new()));
    let (mut stop, grace) = match graceful {
        Some(g) => (Some(g.stop), g.grace),
        None => (None, Duration::ZERO),
    };
    loop {
        let stopping = async {
            match stop.as_mut() {
                Some(s) => {
                    let _ = s.wait_for(|stop| *stop).await;
                }
                None => std::future::pending().await,
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopping => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin, then go on.
                warn!(error = %e, "api accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match slots.take(peer.ip(), &limits) {
            Some(slot) => slot,
            None => {
                // Every slot is busy or still within its grace: wait a moment for one to be
                // given up rather than cut a client that may be a real one. Bounded.
                let Some(wait) = Waiting::enter(&waiting, peer.ip()) else {
                    debug!(%peer, "api connection refused: every slot is busy");
                    continue;
                };
                let slots = slots.clone();
                let (router, tls) = (router.clone(), tls.clone());
                tokio::spawn(async move {
                    let until = Instant::now() + WAIT_FOR_SLOT;
                    let mut slot = None;
                    while slot.is_none() && Instant::now() < until {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        slot = slots.take(peer.ip(), &limits);
                    }
                    drop(wait);
                    match slot {
                        Some(slot) => {
                            serve_one(stream, peer, slot, router, limits, tls).await;
                        }
                        None => debug!(%peer, "api connection refused: every slot is busy"),
                    }
                });
                continue;
            }
        };
        let (router, tls) = (router.clone(), tls.clone());
        tokio::spawn(async move { serve_one(stream, peer, slot, router, limits, tls).await });
    }
    drop(listener);
    let until = Instant::now() + grace;
    loop {
        let in_flight = slots.in_flight();
        if in_flight == 0 {
            info!("api stopped: no request in flight");
            break;
        }
        if Instant::now() >= until {
            warn!(
                in_flight,
                "api stopped with requests in flight: the shutdown grace is over"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Serves one connection in its slot until it ends, is cut for a newcomer, or stalls.
async fn serve_one(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    slot: Slot,
    router: Router,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
) {
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
                    tokio::time::timeout(limits.header_read_timeout, tls.accept(stream)).await;
                match handshake {
                    Ok(Ok(stream)) => http.serve_connection(TokioIo::new(stream), service).await,
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
}
