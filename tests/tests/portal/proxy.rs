//! A recording, lying TLS proxy in front of a node, and the operator certificate browsers meet.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cradle_ledger::audit::{AuditAnswer, AuditEvents};
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::tx::Purpose;
use cradle_tests::Cluster;

/// A TLS-terminating proxy in front of a node: it records every request the browser sends
/// (head and body, decrypted) and, once told to lie, alters the first event of every patient
/// history it passes on and the sealed justification in every transaction it is asked for.
/// One thread per connection, one request per connection.
pub(crate) struct Proxy {
    pub(crate) url: String,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    pub(crate) lie: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// In front of member `i`, with its TLS setup: the member certificate, and the operator's
    /// (`cert`) for browsers that ask for `localhost`.
    pub(crate) fn start(c: &Cluster, i: usize, cert: &OperatorFiles) -> Self {
        let upstream = c.nodes[i].api.clone();
        let key = c.member_key(i).unwrap();
        let names = ["localhost".to_string()];
        let tls = cradle_node::http::tls::server_config(
            &c.genesis.members[i].name,
            &key.ed25519_seed(),
            vec!["127.0.0.1".into()],
            Some(cradle_node::http::tls::OperatorCert {
                cert_file: &cert.cert,
                key_file: &cert.key,
                names: &names,
            }),
            None,
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let proxy = Self {
            url,
            requests: Arc::default(),
            lie: Arc::default(),
            stop: Arc::default(),
        };
        let (requests, lie, stop) = (
            proxy.requests.clone(),
            proxy.lie.clone(),
            proxy.stop.clone(),
        );
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (tls, upstream, requests, lie) =
                    (tls.clone(), upstream.clone(), requests.clone(), lie.clone());
                std::thread::spawn(move || {
                    let _ = conn.set_nonblocking(false);
                    let Ok(server) = rustls::ServerConnection::new(tls) else {
                        return;
                    };
                    let conn = rustls::StreamOwned::new(server, conn);
                    let _ = serve(conn, &upstream, &requests, lie.load(Ordering::Relaxed));
                });
            }
        });
        proxy
    }

    pub(crate) fn recorded(&self) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap().clone()
    }
}

/// A 4-member localnet for the browser tests, at height 2: node 0 serves browsers the
/// operator's certificate for `localhost`, as a deployment would (`api.tls_cert_file`), and
/// every other client its member certificate. The browser and the build share this machine's
/// disk; the chain here is a few megabytes, and the default disk reserve (a production disk's
/// margin) is not under test. Also the test's work folder and the operator's files.
pub(crate) fn portal_localnet() -> (Cluster, PathBuf, OperatorFiles) {
    let mut c = Cluster::write(4, &[]).unwrap();
    let work = c.dir.path().join("work");
    let cert = OperatorFiles::make(&work.join("operator"));
    for i in 0..4 {
        let config_path = c.nodes[i].home.join("config.toml");
        let mut config = cradle_genesis::config::NodeConfig::load(&config_path).unwrap();
        if i == 0 {
            config.api.tls_cert_file = Some(cert.cert.clone());
            config.api.tls_key_file = Some(cert.key.clone());
            config.api.tls_server_names = vec!["localhost".into()];
        }
        config.archives.disk_reserve_bytes = 64 << 20;
        config.save(&config_path).unwrap();
        c.start_node(i).unwrap();
    }
    c.wait_height(0, 2, crate::chromium::WAIT).unwrap();
    (c, work, cert)
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub(crate) fn serve(
    mut conn: rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    upstream: &str,
    requests: &Mutex<Vec<Vec<u8>>>,
    lie: bool,
) -> std::io::Result<()> {
    conn.sock.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
        if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&req[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while req.len() < head_end + len {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    requests.lock().unwrap().push(req.clone());
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_string();
    let mut new_head = String::new();
    for line in head.trim_end().lines() {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            new_head.push_str(line);
            new_head.push_str("\r\n");
        }
    }
    new_head.push_str("Connection: close\r\n\r\n");
    let mut up = cradle_tests::tls::connect(upstream, Duration::from_secs(30))
        .map_err(std::io::Error::other)?;
    up.write_all(new_head.as_bytes())?;
    up.write_all(&req[head_end..])?;
    let mut resp = Vec::new();
    match up.read_to_end(&mut resp) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(e),
    }
    let Some(i) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return conn.write_all(&resp);
    };
    let (resp_head, body) = resp.split_at(i + 4);
    let resp_head = String::from_utf8_lossy(resp_head).to_string();
    let chunked = resp_head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let mut body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    if lie && resp_head.starts_with("HTTP/1.1 200") && path.starts_with("/v1/audit/patient/") {
        alter_first_event(&mut body);
    }
    if lie && resp_head.starts_with("HTTP/1.1 200") && head.starts_with("GET /v1/txs/") {
        alter_justification(&mut body);
    }
    let mut out = String::new();
    for line in resp_head.trim_end().lines() {
        let lower = line.to_ascii_lowercase();
        if !lower.starts_with("content-length:")
            && !lower.starts_with("transfer-encoding:")
            && !lower.starts_with("connection:")
        {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    conn.write_all(out.as_bytes())?;
    conn.write_all(&body)?;
    conn.conn.send_close_notify();
    conn.flush()
}

/// The body of a chunked HTTP/1.1 answer, without its framing.
pub(crate) fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..eol])
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        body.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
    body
}

/// The lie: the first access of her history was for research, not treatment.
pub(crate) fn alter_first_event(body: &mut Vec<u8>) {
    let mut answer = AuditAnswer::decode(body).unwrap();
    match &mut answer.events {
        AuditEvents::Whole(list) => {
            let mut events =
                std::mem::replace(list, BoundedVec::new(Vec::new()).unwrap()).into_inner();
            if let Some(e) = events.first_mut() {
                e.purpose = Purpose::Research;
            }
            *list = BoundedVec::new(events).unwrap();
        }
        AuditEvents::Range { events: list, .. } => {
            let mut events =
                std::mem::replace(list, BoundedVec::new(Vec::new()).unwrap()).into_inner();
            if let Some(e) = events.first_mut() {
                e.event.purpose = Purpose::Research;
            }
            *list = BoundedVec::new(events).unwrap();
        }
    }
    *body = answer.encode();
}

/// The lie about a transaction: one byte of the sealed justification of an access record
/// changed, as a node showing other words than the clinician's would have to.
pub(crate) fn alter_justification(body: &mut Vec<u8>) {
    let mut answer: serde_json::Value = serde_json::from_slice(body).unwrap();
    let at = "/tx/tx/body/request/request/justification/ciphertext";
    if let Some(sealed) = answer.pointer_mut(at) {
        let mut bytes = hex::decode(sealed.as_str().unwrap()).unwrap();
        bytes[20] ^= 1;
        *sealed = serde_json::Value::String(hex::encode(bytes));
        *body = serde_json::to_vec(&answer).unwrap();
    }
}

/// A certificate an operator would get from a certificate authority for the portal's name: here
/// self-signed (ECDSA P-256, which browsers take; they do not take the member certificate's
/// Ed25519) for `localhost`.
pub(crate) struct OperatorFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl OperatorFiles {
    pub(crate) fn make(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let (cert, key) = (dir.join("portal-cert.pem"), dir.join("portal-key.pem"));
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl makes the operator certificate");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { cert, key }
    }
}
