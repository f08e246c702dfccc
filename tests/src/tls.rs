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
    handshake(api, None, read_timeout)
}

/// Reads the node's whole answer until it closes the connection, without writing anything
/// more (a node that refused a request early may have stopped reading what was still being
/// sent). An answer cut short after some bytes arrived is still what arrived.
pub fn read_answer(tls: &mut TlsStream) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match tls.conn.read_tls(&mut tls.sock) {
            Ok(n) => n,
            Err(_) if !raw.is_empty() => return Ok(raw),
            Err(e) => return Err(e),
        };
        let state = tls
            .conn
            .process_new_packets()
            .map_err(std::io::Error::other)?;
        let mut pending = state.plaintext_bytes_to_read();
        while pending > 0 {
            let got = tls.conn.reader().read(&mut buf)?;
            raw.extend_from_slice(&buf[..got]);
            pending = pending.saturating_sub(got);
        }
        if n == 0 || state.peer_has_closed() {
            return Ok(raw);
        }
    }
}

/// Ends the writing side, as a client that hangs up mid-upload would.
pub fn half_close(tls: &mut TlsStream) {
    tls.conn.send_close_notify();
    let _ = tls.flush();
    let _ = tls.sock.shutdown(Shutdown::Write);
}

/// [`connect`] from the loopback address `source` (such as `127.0.0.2`), so that an attacker's
/// traffic comes from another address than the patient's, as it would in the world.
pub fn connect_from(api: &str, source: &str, read_timeout: Duration) -> anyhow::Result<TlsStream> {
    handshake(api, Some(source), read_timeout)
}

fn handshake(api: &str, source: Option<&str>, read_timeout: Duration) -> anyhow::Result<TlsStream> {
    let genesis_file =
        crate::cluster::genesis_for(api).context("no cluster of this process serves that URL")?;
    let genesis = cradle_genesis::GenesisDoc::load(genesis_file)?;
    let pins = Pins::for_url(&genesis, api);
    let addr = addr_of(api);
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    let name = ServerName::try_from(host.to_string())?;
    let conn = ClientConnection::new(client_config(pins)?, name)?;
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    if let Some(source) = source {
        let from: std::net::SocketAddr = format!("{source}:0").parse()?;
        sock.bind(&from.into())?;
    }
    let to = std::net::ToSocketAddrs::to_socket_addrs(addr)?
        .next()
        .context("the node's address resolves to nothing")?;
    sock.connect(&to.into())?;
    let sock: TcpStream = sock.into();
    sock.set_read_timeout(Some(read_timeout))?;
    sock.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// Sends one HTTP/1.1 request on a kept-alive connection and reads its answer: the status and
/// the body (by `Content-Length`; a node's answers always carry one or close).
pub fn exchange(tls: &mut TlsStream, request: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    use std::io::Read;
    tls.write_all(request)?;
    tls.flush()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tls.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
        if head.len() > 64 * 1024 {
            return Err(std::io::Error::other("answer headers too long"));
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    tls.read_exact(&mut body)?;
    Ok((status, body))
}
