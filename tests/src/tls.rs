//! Raw HTTPS to a node, for tests that write HTTP by hand: a TLS stream pinned from the
//! cluster's genesis exactly as the client library pins it.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use anyhow::Context;
use cradle_client::tls::{Pins, client_config};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

/// A TLS 1.3 stream to a node, pinned to a genesis member's key.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// `host:port` of `https://host:port`.
pub fn addr_of(api: &str) -> &str {
    api.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
}

/// Connects to the node at `api` (`https://host:port`) and completes the handshake, pinned from
/// the genesis of the cluster that serves it.
pub fn connect(api: &str, read_timeout: Duration) -> anyhow::Result<TlsStream> {
    let genesis_file =
        crate::cluster::genesis_for(api).context("no cluster of this process serves that URL")?;
    let genesis = cradle_genesis::GenesisDoc::load(genesis_file)?;
    let pins = Pins::for_url(&genesis, api);
    let addr = addr_of(api);
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    let name = ServerName::try_from(host.to_string())?;
    let conn = ClientConnection::new(client_config(pins)?, name)?;
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(read_timeout))?;
    sock.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// Ends the writing side, as a client that hangs up mid-upload would.
pub fn half_close(tls: &mut TlsStream) {
    tls.conn.send_close_notify();
    let _ = tls.flush();
    let _ = tls.sock.shutdown(Shutdown::Write);
}
