//! Searching what the page sent for a secret, in the forms it could take.

/// Standard base64, with and without padding, and its URL-safe alphabet.
pub(crate) fn base64_forms(bytes: &[u8]) -> Vec<String> {
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
pub(crate) fn leaks(requests: &[Vec<u8>], secrets: &[String]) -> Vec<String> {
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

/// Standard base64 (padded) decoded: for the files the page offers as `data:` links.
pub(crate) fn base64_decode(text: &str) -> Vec<u8> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = STD.iter().position(|&s| s == c).expect("base64") as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits & 0xff) as u8);
        }
    }
    out
}
