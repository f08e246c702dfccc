//! The browser portal: static files embedded in the binary, served under `/portal/`.
//!
//! The page (`node/portal/app/`) and its verification library (`node/portal/js/`) are plain
//! HTML, CSS and JavaScript modules, compiled into `cradle-node` with `include_bytes!` so that
//! every node serves the same files as the binary it runs, and none is read from disk at run
//! time. A path is answered only when it is one of [`ASSETS`], by exact match: nothing is
//! resolved against a directory, so no path can reach outside the list. One file is third-party
//! code, vendored whole with its licence header: the QR encoder `app/vendor/qrcode-generator.mjs`
//! (qrcode-generator 2.0.4, MIT), served from here like the rest, so the page reaches no other
//! origin.
//!
//! These are public, unauthenticated files (they hold no data): what the page shows comes from
//! signed API requests the page makes with the patient's own key, and what it believes it checks
//! from the genesis document she loads, never from the node that served the page.
//!
//! Every answer under `/portal/`, a refusal included, carries [`CONTENT_SECURITY_POLICY`]
//! (scripts, styles and connections to this origin only, no inline script or style, no framing),
//! `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpError;

/// What the page may load and where it may connect: this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The file served at `/portal/`.
const INDEX: &str = "app/index.html";

macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/portal/", $path)))),*]
    };
}

/// Every file the portal serves, by its path under `/portal/` (and under `node/portal/`). The
/// unit test below fails when a file of `app/` or `js/` is missing from this list.
pub static ASSETS: &[(&str, &[u8])] = assets![
    "app/index.html",
    "app/app.css",
    "app/js/main.js",
    "app/js/i18n.js",
    "app/js/lang/en.js",
    "app/js/lang/zh-CN.js",
    "app/js/store.js",
    "app/js/node.js",
    "app/js/keyring.js",
    "app/js/history_view.js",
    "app/js/identity.js",
    "app/js/members.js",
    "app/js/consent_view.js",
    "app/js/records_panel.js",
    "app/js/key_panel.js",
    "app/js/qr_view.js",
    "app/vendor/qrcode-generator.mjs",
    "app/js/dom.js",
    "app/regulator.html",
    "app/regulator.css",
    "app/js/regulator/main.js",
    "app/js/regulator/review.js",
    "app/js/regulator/chart.js",
    "app/js/regulator/fhir.js",
    "app/js/regulator/lang/en.js",
    "app/js/regulator/lang/zh-CN.js",
    "js/audit.js",
    "js/bytes.js",
    "js/chain.js",
    "js/genesis.js",
    "js/history.js",
    "js/keys.js",
    "js/keywrap.js",
    "js/merkle.js",
    "js/recovery.js",
    "js/request.js",
    "js/sets.js",
    "js/smt.js",
    "js/tx.js",
    "js/archive.js",
    "js/justification.js",
    "app/mother.css",
    "app/js/download.js",
    "app/js/record_view.js",
    "app/js/rotate.js",
    "app/js/rotate_view.js",
    "app/js/alerts_view.js",
];

/// The content type of a served file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// The embedded file at `path`, if it is one.
pub fn asset(path: &str) -> Option<&'static [u8]> {
    ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, body)| *body)
}

/// Adds the portal's security headers to any answer.
fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn serve(path: &str) -> Response {
    let Some(body) = asset(path) else {
        return harden(HttpError::not_found("no such portal file").into_response());
    };
    harden(
        (
            [
                (header::CONTENT_TYPE, content_type(path)),
                // The files change with the binary: a browser asks again each time.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
    )
}

/// `GET /portal`: to `/portal/`, so the page's relative paths resolve under it.
pub async fn redirect() -> Response {
    harden(
        (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, "/portal/")],
        )
            .into_response(),
    )
}

/// `GET /portal/`: the page.
pub async fn index() -> Response {
    serve(INDEX)
}

/// `GET /portal/{*path}`: one of the embedded files, or 404.
pub async fn file(Path(path): Path<String>) -> Response {
    serve(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `node/portal/{app,js}` on disk, as a path under `/portal/`.
    fn on_disk() -> Vec<String> {
        fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("portal directory") {
                let path = entry.expect("directory entry").path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    let rel = path.strip_prefix(root).expect("under the root");
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("portal");
        let mut out = Vec::new();
        walk(&root, &root.join("app"), &mut out);
        walk(&root, &root.join("js"), &mut out);
        out.sort();
        out
    }

    #[test]
    fn every_file_of_the_page_and_library_is_embedded_and_nothing_else() {
        let mut listed: Vec<String> = ASSETS.iter().map(|(p, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(
            listed,
            on_disk(),
            "ASSETS and node/portal/{{app,js}} differ"
        );
    }

    #[test]
    fn paths_are_matched_exactly_never_resolved() {
        assert!(asset("app/index.html").is_some());
        for path in [
            "",
            "app",
            "app/",
            "../Cargo.toml",
            "app/../js/bytes.js",
            "js//bytes.js",
            "./js/bytes.js",
            "%2e%2e/Cargo.toml",
            "README.md",
            "test/bytes.test.mjs",
        ] {
            assert!(asset(path).is_none(), "{path:?} is served");
        }
    }

    #[test]
    fn no_html_file_holds_inline_script_or_style() {
        for (path, body) in ASSETS.iter().filter(|(p, _)| p.ends_with(".html")) {
            let text = String::from_utf8_lossy(body).to_lowercase();
            for bad in [
                "<script>",
                "<style",
                " style=",
                " onclick=",
                " onload=",
                "javascript:",
            ] {
                assert!(!text.contains(bad), "{path} holds {bad:?}");
            }
        }
    }

    #[test]
    fn scripts_are_served_as_javascript() {
        assert_eq!(
            content_type("js/bytes.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("app/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("app/x.unknown"), "application/octet-stream");
    }
}
