//! Serving the router over TCP with the connection limits a public endpoint needs: most
//! connections in all and per IP address, a deadline for a request's headers (which also closes
//! a connection idle between requests), and a bound on header bytes. A client that opens
//! connections and never finishes a request holds a slot for at most the deadline, and one
//! address cannot take every slot. Over TLS ([`super::tls`]) unless the operator asked for plain
//! HTTP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
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
}

impl ServeLimits {
    pub fn from_config(api: &cradle_genesis::config::ApiConfig) -> Self {
        Self {
            connections_max: api.connections_max,
            connections_per_ip_max: api.connections_per_ip_max,
            header_read_timeout: Duration::from_millis(api.header_read_timeout_ms),
        }
    }
}

/// Open connections per address; a slot is given back when its guard drops.
#[derive(Default)]
struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

struct IpSlot {
    ip: IpAddr,
    table: Arc<PerIp>,
}

impl PerIp {
    fn take(table: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut open = table
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            table: table.clone(),
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections until the listener fails, serving each on its own task; over TLS when
/// `tls` is given (the handshake has the header deadline too, so a client that stalls in it
/// holds its slot no longer than one that stalls in its headers).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.connections_max));
    let per_ip = Arc::new(PerIp::default());
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
        let Ok(slot): Result<OwnedSemaphorePermit, _> = slots.clone().try_acquire_owned() else {
            debug!(%peer, "api connection refused: too many open");
            continue;
        };
        let Some(ip_slot) = PerIp::take(&per_ip, peer.ip(), limits.connections_per_ip_max) else {
            debug!(%peer, "api connection refused: too many from this address");
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Each request carries the address it came from, for the per-address rate.
        let service = TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(HEADER_BYTES_MAX)
                .max_headers(HEADERS_MAX);
            let served = match tls {
                None => http.serve_connection(TokioIo::new(stream), service).await,
                Some(tls) => {
                    let handshake =
                        tokio::time::timeout(limits.header_read_timeout, tls.accept(stream)).await;
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
            };
            if let Err(e) = served {
                debug!(%peer, error = %e, "api connection ended");
            }
            drop(ip_slot);
            drop(slot);
        });
    }
}
