//! chromedriver, Chromium sessions, and what the test asks of the page.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// chromedriver on a free loopback port, killed when dropped.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub(crate) fn start(log: &Path) -> Self {
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
pub(crate) async fn browser(driver: &Driver, profile: &Path, phone: bool) -> Client {
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
pub(crate) async fn wait_for(b: &Client, what: &str, script: &str) -> String {
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

pub(crate) async fn text(b: &Client, css: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Sizes the desktop window so that the page's viewport is `w` x `h` CSS pixels.
pub(crate) async fn viewport(b: &Client, w: u32, h: u32) {
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
pub(crate) async fn screenshot(b: &Client, w: u64, path: &Path) {
    // Her history, as the page shows it after an answer (a click elsewhere may have scrolled).
    screenshot_of(b, "history-section", w, path).await;
}

/// Like [`screenshot`], with the section `id` scrolled to the top.
pub(crate) async fn screenshot_of(b: &Client, id: &str, w: u64, path: &Path) {
    b.execute(
        &format!("document.getElementById('{id}').scrollIntoView({{block: 'start'}})"),
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

pub(crate) const READY: &str = "return document.body.dataset.ready || null";
pub(crate) const ZH_TITLE: &str = "摇篮 Cradle：我的孕产健康档案";

/// A script that returns the `data-state` of the element `id`, once it has one.
pub(crate) fn state_of(id: &str) -> String {
    format!("return document.getElementById('{id}').dataset.state || null")
}

pub(crate) async fn verdict_code(b: &Client) -> String {
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
pub(crate) async fn same_origin_only(b: &Client, page: &str) {
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
pub(crate) const VERDICT: &str = "const v = document.getElementById('history-verdict'); \
    const n = document.getElementById('node-status'); \
    if (n.dataset.state === 'error') return 'error: ' + n.textContent; \
    return v.dataset.state === 'none' ? null : v.dataset.state;";

pub(crate) async fn show_history(b: &Client) -> String {
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
