//! The browser portal in a real headless Chromium, against a real 4-member localnet.
//!
//! A mother enrolled by hospital 1 grants hospital 2, which reads her record; the clinic asks
//! without a grant and is denied. In the page served by the nodes (through a recording proxy in
//! front of node 0), she loads her genesis file and her `cradle keygen` key file, opens her
//! access history and sees both accesses "verified"; the proxy then alters the answer and the
//! page says "untrustworthy" with the reason. The page is switched to Simplified Chinese, and
//! screenshots are taken at a phone's width (375x812) and a desktop's (1280x900). Every byte
//! the page sent went through the proxy, and none of them holds a secret of her key file.
//!
//! Chromium is launched with `--ignore-certificate-errors`: each node's TLS certificate is
//! self-signed over its member key (the CLI pins it from genesis, a browser cannot). A real
//! deployment gives browsers a CA-issued certificate with the node's `api.tls_cert_file`.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cradle_ledger::audit::{AuditAnswer, AuditEvents};
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::tx::Purpose;
use cradle_tests::Cluster;
use cradle_tests::cli::{clinician, cradle, mother_with_archive, ok, shared_record};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const RECORD: &str = "Nona_Kris_5f72d2e8-c56b-4288-a829-c1c1ebfad423.json";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A TLS-terminating proxy in front of a node: it records every request the browser sends
/// (head and body, decrypted) and, once told to lie, alters the first event of every patient
/// history it passes on. One thread per connection, one request per connection.
struct Proxy {
    url: String,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    lie: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// In front of member `i`, with its TLS setup: the member certificate, and the operator's
    /// (`cert`) for browsers that ask for `localhost`.
    fn start(c: &Cluster, i: usize, cert: &OperatorFiles) -> Self {
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

    fn recorded(&self) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
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
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
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
fn alter_first_event(body: &mut Vec<u8>) {
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

/// One raw `GET` to a node: the status line, the headers (lowercase names) and the body.
fn raw_get(api: &str, path: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut tls = cradle_tests::tls::connect(api, Duration::from_secs(30)).unwrap();
    let host = cradle_tests::tls::addr_of(api);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    tls.flush().unwrap();
    let raw = cradle_tests::tls::read_answer(&mut tls).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.lines();
    let status = lines.next().unwrap().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every portal answer is hardened, the files have their types, and nothing else is served.
fn check_static_serving(api: &str) {
    let cases = [
        ("/portal/", "200", Some("text/html")),
        ("/portal/app/app.css", "200", Some("text/css")),
        ("/portal/app/js/main.js", "200", Some("text/javascript")),
        ("/portal/js/history.js", "200", Some("text/javascript")),
        ("/portal/nothing.js", "404", None),
        ("/portal/../Cargo.toml", "404", None),
        ("/portal/app/../../Cargo.toml", "404", None),
        ("/portal/%2e%2e/Cargo.toml", "404", None),
        ("/portal/test/genesis.test.mjs", "404", None),
        ("/portal/README.md", "404", None),
        ("/portal", "308", None),
    ];
    for (path, status, ctype) in cases {
        let (line, headers, body) = raw_get(api, path);
        assert!(line.contains(status), "GET {path}: {line}, wanted {status}");
        assert_eq!(
            header(&headers, "content-security-policy"),
            Some(CSP),
            "GET {path}"
        );
        assert_eq!(
            header(&headers, "x-content-type-options"),
            Some("nosniff"),
            "GET {path}"
        );
        assert_eq!(
            header(&headers, "referrer-policy"),
            Some("no-referrer"),
            "GET {path}"
        );
        match ctype {
            Some(t) => assert!(
                header(&headers, "content-type").is_some_and(|v| v.starts_with(t)),
                "GET {path}: {headers:?}"
            ),
            None if status == "404" => {
                let v: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["code"], "not_found", "GET {path}: {v}");
            }
            None => assert_eq!(header(&headers, "location"), Some("/portal/")),
        }
    }
}

/// A certificate an operator would get from a certificate authority for the portal's name: here
/// self-signed (ECDSA P-256, which browsers take; they do not take the member certificate's
/// Ed25519) for `localhost`.
struct OperatorFiles {
    cert: PathBuf,
    key: PathBuf,
}

impl OperatorFiles {
    fn make(dir: &Path) -> Self {
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

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(log: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // A process group of its own, so that the browsers it starts end with it even when the
        // test fails before it closes them.
        let child = Command::new("chromedriver")
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver) must be installed: scripts/test.sh installs it");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group is chromedriver's and the Chromium processes it started, nothing else.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Chromium session on `profile` (its IndexedDB and local storage outlive the session): a
/// desktop window of 1280x900, or with `phone` a 375x812 phone screen (Chromium's device
/// emulation: a window cannot be narrower than 500 px).
async fn browser(driver: &Driver, profile: &Path, phone: bool) -> Client {
    let mut options = json!({
        "binary": "/usr/bin/chromium",
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--ignore-certificate-errors",
            "--lang=en-US",
            "--window-size=1280,900",
            "--hide-scrollbars",
            // Nothing but loopback resolves: the page can reach no other host.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
            format!("--user-data-dir={}", profile.display()),
        ],
        "prefs": {"intl.accept_languages": "en-US,en"},
    });
    if phone {
        options["mobileEmulation"] = json!({
            "deviceMetrics": {"width": 375, "height": 812, "pixelRatio": 2.0, "touch": true},
        });
    }
    let caps = json!({"browserName": "chrome", "acceptInsecureCerts": true, "goog:chromeOptions": options});
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    // The previous session's browser may still be letting go of the profile.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(b) => return b,
            Err(e) if Instant::now() < deadline => {
                eprintln!("no Chromium session yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("a Chromium session through chromedriver: {e}"),
        }
    }
}

/// Runs `script` (which returns a string or null) until it returns something, for up to `WAIT`.
async fn wait_for(b: &Client, what: &str, script: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Value::String(s) = b.execute(script, vec![]).await.unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let page = b.find(Locator::Css("body")).await.unwrap().text().await;
            panic!("waited {WAIT:?} for {what}; the page shows: {page:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn text(b: &Client, css: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Sizes the desktop window so that the page's viewport is `w` x `h` CSS pixels.
async fn viewport(b: &Client, w: u32, h: u32) {
    b.set_window_size(w, h).await.unwrap();
    let chrome = b
        .execute(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]",
            vec![],
        )
        .await
        .unwrap();
    let dw = chrome[0].as_u64().unwrap_or(0) as u32;
    let dh = chrome[1].as_u64().unwrap_or(0) as u32;
    b.set_window_size(w + dw, h + dh).await.unwrap();
}

/// Saves a screenshot of a `w` CSS pixels wide viewport, where the page fits: nothing wider than
/// the screen, so a phone never scrolls sideways.
async fn screenshot(b: &Client, w: u64, path: &Path) {
    // Her history, as the page shows it after an answer (a click elsewhere may have scrolled).
    b.execute(
        "document.getElementById('history-section').scrollIntoView({block: 'start'})",
        vec![],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = b
        .execute(
            "return [window.innerWidth, document.documentElement.scrollWidth]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(got[0].as_u64(), Some(w), "viewport width");
    assert!(
        got[1].as_u64().unwrap() <= w,
        "the page is {} px wide in a {w} px viewport",
        got[1]
    );
    std::fs::write(path, b.screenshot().await.unwrap()).unwrap();
}

const READY: &str = "return document.body.dataset.ready || null";
const ZH_TITLE: &str = "摇篮 Cradle：我的孕产健康档案";

/// A script that returns the `data-state` of the element `id`, once it has one.
fn state_of(id: &str) -> String {
    format!("return document.getElementById('{id}').dataset.state || null")
}

async fn verdict_code(b: &Client) -> String {
    let code = b
        .execute(
            "return document.getElementById('history-verdict').dataset.code || ''",
            vec![],
        )
        .await
        .unwrap();
    code.as_str().unwrap_or("").to_string()
}

/// Everything this page loaded or fetched, as the browser's own Resource Timing lists it, came
/// from the page's origin (the recording proxy): no other server heard from it.
async fn same_origin_only(b: &Client, page: &str) {
    let origin = page.trim_end_matches("/portal/");
    let urls = b
        .execute(
            "return performance.getEntriesByType('resource').map((e) => e.name)",
            vec![],
        )
        .await
        .unwrap();
    let urls: Vec<String> = serde_json::from_value(urls).unwrap();
    assert!(urls.len() >= 10, "the page loaded only {urls:?}");
    let elsewhere: Vec<&String> = urls
        .iter()
        .filter(|u| !u.starts_with(&format!("{origin}/")))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "the page reached beyond {origin}: {elsewhere:?}"
    );
}

/// The history's verdict once there is one, or the node's refusal.
const VERDICT: &str = "const v = document.getElementById('history-verdict'); \
    const n = document.getElementById('node-status'); \
    if (n.dataset.state === 'error') return 'error: ' + n.textContent; \
    return v.dataset.state === 'none' ? null : v.dataset.state;";

async fn show_history(b: &Client) -> String {
    b.execute(
        "document.getElementById('history-verdict').dataset.state = 'none'",
        vec![],
    )
    .await
    .unwrap();
    b.find(Locator::Id("history-load"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(b, "the history's verdict", VERDICT).await
}

/// Standard base64, with and without padding, and its URL-safe alphabet.
fn base64_forms(bytes: &[u8]) -> Vec<String> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(STD[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    let url = out.replace('+', "-").replace('/', "_");
    let padded = format!("{out}{}", "=".repeat((3 - bytes.len() % 3) % 3));
    // A secret cut anywhere is still found by its first 40 characters.
    vec![padded, out, url]
        .into_iter()
        .map(|s| s[..40].to_string())
        .collect()
}

/// What of `secrets` (lowercase hex, base64 in its forms) any recorded request holds.
fn leaks(requests: &[Vec<u8>], secrets: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for r in requests {
        let text = String::from_utf8_lossy(r);
        let lower = text.to_ascii_lowercase();
        for s in secrets {
            if text.contains(s.as_str()) || lower.contains(&s.to_ascii_lowercase()) {
                found.push(format!("{s} in {}", text.lines().next().unwrap_or("")));
            }
        }
    }
    found
}

#[test]
fn a_mother_sees_who_read_her_record_verified_in_her_browser_and_a_lying_node_is_caught() {
    // Node 0 serves browsers the operator's certificate for `localhost`, as a deployment would
    // (`api.tls_cert_file`), and every other client its member certificate.
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
        // The browser and the build share this machine's disk; the chain here is a few
        // megabytes, and the default reserve (a production disk's margin) is not under test.
        config.archives.disk_reserve_bytes = 64 << 20;
        config.save(&config_path).unwrap();
        c.start_node(i).unwrap();
    }
    c.wait_height(0, 2, WAIT).unwrap();
    let mother = mother_with_archive(&c, &work, 0, &shared_record(RECORD));
    // She grants hospital 2, whose obstetrician reads her record; a midwife of the clinic asks
    // with no grant and is denied; an emergency physician of the fourth member breaks the glass.
    let hospital = c.genesis.members[1].name.clone();
    let clinic = c.genesis.members[2].name.clone();
    let emergency = c.genesis.members[3].name.clone();
    ok(cradle(
        &c.nodes[0].api,
        &mother.key,
        &[
            "consent",
            "grant",
            "--grantee",
            &hospital,
            "--purpose",
            "TREAT",
            "--scope",
            "all",
            "--expires",
            "30d",
        ],
    ));
    let people = work.join("people");
    let obstetrician = clinician(&c, &people, 1, "obstetrician", "obstetrics", "Zhang Wei").key;
    let midwife = clinician(&c, &people, 2, "midwife", "midwifery", "Li Mei").key;
    let physician = clinician(
        &c,
        &people,
        3,
        "emergency-physician",
        "emergency",
        "Wang Fang",
    )
    .key;
    // Asked of the custodian's node (hospital 1), which holds the archive.
    let read = |key: &Path, purpose: &str, out: &str, extra: &[&str]| {
        let out = work.join(out);
        let mut args = vec![
            "archive",
            "get",
            &mother.archive,
            "--purpose",
            purpose,
            "--out",
        ];
        let out_s = out.to_str().unwrap().to_string();
        args.push(&out_s);
        args.extend_from_slice(extra);
        cradle(&c.nodes[0].api, key, &args)
    };
    ok(read(&obstetrician, "TREAT", "read.json", &[]));
    let denied = read(&midwife, "TREAT", "denied.json", &[]);
    assert!(!denied.status.success(), "the clinic read without a grant");
    ok(read(
        &physician,
        "ETREAT",
        "glass.json",
        &[
            "--justification",
            "postpartum haemorrhage on arrival, patient unconscious",
        ],
    ));

    check_static_serving(&c.nodes[0].api);
    let proxy = Proxy::start(&c, 0, &cert);
    let shots: PathBuf = cradle_tests::cluster::bin_dir().join("portal-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let driver = Driver::start(&work.join("chromedriver.log"));
    let genesis_file = c.nodes[0].home.join("genesis.json");
    let mut other: Value =
        serde_json::from_str(&std::fs::read_to_string(&genesis_file).unwrap()).unwrap();
    other["chain_name"] = json!("cradle-elsewhere");
    let other_genesis = work.join("other-genesis.json");
    std::fs::write(&other_genesis, other.to_string()).unwrap();
    let key_hex: Value =
        serde_json::from_str(&std::fs::read_to_string(&mother.key).unwrap()).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let profile = work.join("chromium-profile");
    let page = format!("{}/portal/", proxy.url.replace("127.0.0.1", "localhost"));
    rt.block_on(async {
        // On a desktop: she loads her files, and reads her history in both languages.
        let b = browser(&driver, &profile, false).await;
        viewport(&b, 1280, 900).await;
        b.goto(&page).await.unwrap();
        wait_for(&b, "the page to start", READY).await;
        assert_eq!(text(&b, "h1").await, "Cradle: my maternal health records");

        // Her genesis file and her key file, through the file pickers.
        let input = b.find(Locator::Id("genesis-file")).await.unwrap();
        input.send_keys(genesis_file.to_str().unwrap()).await.unwrap();
        let state = wait_for(&b, "the genesis to load", &state_of("genesis-status")).await;
        let status = text(&b, "#genesis-status").await;
        assert!(state == "ok" && status.starts_with("Loaded:"), "genesis: {status}");
        let input = b.find(Locator::Id("key-file")).await.unwrap();
        input.send_keys(mother.key.to_str().unwrap()).await.unwrap();
        let state = wait_for(&b, "the key to load", &state_of("key-status")).await;
        assert_eq!(state, "ok", "key: {}", text(&b, "#key-status").await);
        assert_eq!(text(&b, "#key-public").await, key_hex["public_key"].as_str().unwrap());
        // The key is held as a non-extractable CryptoKey: the page itself cannot read it out.
        let extractable = b
            .execute_async(
                "const done = arguments[0]; const r = indexedDB.open('cradle-portal'); \
                 r.onsuccess = () => { const g = r.result.transaction('kv').objectStore('kv').get('keypair'); \
                 g.onsuccess = () => done([g.result.signing.privateKey.extractable, g.result.x25519.privateKey.extractable]); };",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(extractable, json!([false, false]));

        // A genesis file of another consortium (a changed name, the same members): the node
        // is not used, and nothing about her is shown.
        let input = b.find(Locator::Id("genesis-file")).await.unwrap();
        input.send_keys(other_genesis.to_str().unwrap()).await.unwrap();
        wait_for(&b, "the other genesis", "const s = document.getElementById('genesis-status'); \
            return s.textContent.includes('cradle-elsewhere') ? 'ok' : null").await;
        let refused = show_history(&b).await;
        assert!(refused.contains("another consortium"), "{refused}");
        assert!(b.find_all(Locator::Css("#history-list li")).await.unwrap().is_empty());
        let input = b.find(Locator::Id("genesis-file")).await.unwrap();
        input.send_keys(genesis_file.to_str().unwrap()).await.unwrap();
        wait_for(&b, "her genesis again", "const s = document.getElementById('genesis-status'); \
            return s.textContent.includes('cradle-elsewhere') ? null : 'ok'").await;

        // Her history: the three accesses, verified against her genesis.
        assert_eq!(show_history(&b).await, "verified", "{}", text(&b, "#history-section").await);
        assert_eq!(text(&b, "#history-status").await, "Verified");
        let list = text(&b, "#history-list").await;
        assert!(list.contains(&hospital) && list.contains("Treatment (TREAT)"), "{list}");
        assert!(list.contains(&clinic) && list.contains("Denied: no consent"), "{list}");
        assert!(list.contains("Obstetrician (staff ID"), "{list}");
        let entries = b.find_all(Locator::Css("#history-list li.event")).await.unwrap();
        assert_eq!(entries.len(), 3, "{list}");
        // The emergency access stands out, named as such.
        let glass = text(&b, "#history-list li[data-outcome='break_glass']").await;
        assert!(glass.contains(&emergency) && glass.contains("Emergency access (break-glass)"), "{glass}");
        assert!(glass.contains("Emergency treatment (ETREAT)"), "{glass}");
        screenshot(&b, 1280, &shots.join("history-en-1280x900.png")).await;

        // In Chinese, remembered across a reload with her genesis and key.
        b.find(Locator::Id("lang-zh")).await.unwrap().click().await.unwrap();
        assert_eq!(text(&b, "#history-status").await, "已验证");
        assert_eq!(text(&b, "h1").await, ZH_TITLE);
        let list = text(&b, "#history-list").await;
        assert!(list.contains("已准许") && list.contains("已拒绝：无授权"), "{list}");
        assert!(list.contains("紧急访问（破窗）") && list.contains("产科医生"), "{list}");
        screenshot(&b, 1280, &shots.join("history-zh-1280x900.png")).await;
        b.refresh().await.unwrap();
        wait_for(&b, "the page to start again", READY).await;
        assert_eq!(text(&b, "h1").await, ZH_TITLE);
        assert!(text(&b, "#genesis-status").await.starts_with("已加载"), "the genesis is kept");
        assert_eq!(text(&b, "#key-public").await, key_hex["public_key"].as_str().unwrap());

        // The node lies about her history: the page says so, with the reason, and lists nothing.
        proxy.lie.store(true, Ordering::Relaxed);
        assert_eq!(show_history(&b).await, "untrustworthy", "{}", text(&b, "#history-section").await);
        assert_eq!(text(&b, "#history-status").await, "不可信");
        assert_eq!(verdict_code(&b).await, "altered-entry");
        assert!(text(&b, "#history-detail").await.contains("记录被篡改"));
        assert!(b.find_all(Locator::Css("#history-list li")).await.unwrap().is_empty());
        b.find(Locator::Id("lang-en")).await.unwrap().click().await.unwrap();
        assert_eq!(text(&b, "#history-status").await, "Untrustworthy");
        assert!(text(&b, "#history-detail").await.contains("(altered-entry): an entry was altered"));
        screenshot(&b, 1280, &shots.join("lying-en-1280x900.png")).await;

        // Once it stops lying, her history verifies again from the checkpoint she kept.
        proxy.lie.store(false, Ordering::Relaxed);
        assert_eq!(show_history(&b).await, "verified");

        // The obstetrician reads again: the access log grew past the checkpoint this browser
        // kept, so the page asks for a consistency proof from it and checks it.
        ok(read(&obstetrician, "TREAT", "again.json", &[]));
        assert_eq!(show_history(&b).await, "verified", "{}", text(&b, "#history-section").await);
        let entries = b.find_all(Locator::Css("#history-list li.event")).await.unwrap();
        assert_eq!(entries.len(), 4);
        let asked = proxy.recorded().iter().any(|r| {
            String::from_utf8_lossy(r).starts_with("GET /v1/audit/consistency?from=")
        });
        assert!(asked, "the page did not ask for a consistency proof");

        same_origin_only(&b, &page).await;

        // The node itself serves the page to a browser, with the operator's certificate.
        let node = c.nodes[0].api.replace("127.0.0.1", "localhost");
        b.goto(&format!("{node}/portal/")).await.unwrap();
        wait_for(&b, "the node's own page", READY).await;
        assert_eq!(text(&b, "h1").await, "Cradle: my maternal health records");
        b.close().await.unwrap();

        // On her phone (the same browser profile): what she loaded is still there.
        let b = browser(&driver, &profile, true).await;
        b.goto(&page).await.unwrap();
        wait_for(&b, "the page to start on a phone", READY).await;
        assert_eq!(text(&b, "#key-public").await, key_hex["public_key"].as_str().unwrap());
        assert_eq!(show_history(&b).await, "verified", "{}", text(&b, "#history-section").await);
        screenshot(&b, 375, &shots.join("history-en-375x812.png")).await;
        b.find(Locator::Id("lang-zh")).await.unwrap().click().await.unwrap();
        assert_eq!(text(&b, "#history-status").await, "已验证");
        screenshot(&b, 375, &shots.join("history-zh-375x812.png")).await;
        proxy.lie.store(true, Ordering::Relaxed);
        assert_eq!(show_history(&b).await, "untrustworthy");
        assert_eq!(verdict_code(&b).await, "altered-entry");
        screenshot(&b, 375, &shots.join("lying-zh-375x812.png")).await;
        proxy.lie.store(false, Ordering::Relaxed);
        same_origin_only(&b, &page).await;
        b.close().await.unwrap();
    });

    // Nothing secret left the page: every request it sent went through the proxy.
    let requests = proxy.recorded();
    let signed = requests
        .iter()
        .filter(|r| {
            String::from_utf8_lossy(r)
                .to_ascii_lowercase()
                .contains("x-cradle-auth:")
        })
        .count();
    assert!(
        requests.len() >= 20 && signed >= 4,
        "{} requests, {signed} signed",
        requests.len()
    );
    let mut secrets = Vec::new();
    for field in ["ed25519_secret", "x25519_secret"] {
        let hex_secret = key_hex[field].as_str().unwrap().to_string();
        secrets.extend(base64_forms(&hex::decode(&hex_secret).unwrap()));
        secrets.push(hex_secret);
    }
    // The search finds what the page does send: her public key, in the history's path.
    let public = key_hex["public_key"].as_str().unwrap().to_string();
    assert!(
        !leaks(&requests, &[public]).is_empty(),
        "the search finds nothing at all"
    );
    let found = leaks(&requests, &secrets);
    assert!(
        found.is_empty(),
        "secret key material left the page: {found:?}"
    );
    eprintln!(
        "the page sent {} requests ({signed} signed), none with a secret of her key file",
        requests.len()
    );

    // Two screenshots for the README: written when missing, or renewed with
    // CRADLE_WRITE_PORTAL_SCREENSHOTS=1 (an ordinary run leaves the working tree alone).
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/portal");
    let renew = std::env::var_os("CRADLE_WRITE_PORTAL_SCREENSHOTS").is_some_and(|v| v == "1");
    std::fs::create_dir_all(&docs).unwrap();
    for name in ["history-zh-375x812.png", "history-en-1280x900.png"] {
        if renew || !docs.join(name).exists() {
            std::fs::copy(shots.join(name), docs.join(name)).unwrap();
        }
    }
}
