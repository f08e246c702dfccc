//! How a node serves the portal's files, asked without a browser.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;

use crate::proxy::dechunk;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One raw `GET` to a node: the status line, the headers (lowercase names) and the body.
pub(crate) fn raw_get(api: &str, path: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
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

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every portal answer is hardened, the files have their types, and nothing else is served.
pub(crate) fn check_static_serving(api: &str) {
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
