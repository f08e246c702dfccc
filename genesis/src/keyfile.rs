//! Key files: a member's secret keys on disk, and the public identity it shares.
//!
//! A key file (mode 0600) is JSON:
//! ```json
//! { "kind": "cradle-key", "version": 1,
//!   "public_key": "<hex ed25519>", "x25519_public": "<hex x25519>",
//!   "ed25519_secret": "<hex 32-byte seed>", "x25519_secret": "<hex 32-byte secret>" }
//! ```
//! Beside it, `FILE.pub` (mode 0644) holds only `{ "public_key", "x25519_public" }`, for an
//! operator to send to the others when founding a consortium.
//!
//! Promises: a key file is created atomically and never overwritten; reading one checks that the
//! public keys written in it belong to its secrets; secret bytes and their hex live only in
//! memory that is zeroed when dropped, and are never logged.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cradle_ledger::{Keypair, PublicKey, X25519Public};
use serde::{Deserialize, Deserializer, Serialize};
use zeroize::Zeroizing;

use crate::error::GenesisError;
use crate::fsutil;

/// The `kind` field of a key file.
pub const KEY_FILE_KIND: &str = "cradle-key";
/// The `version` field of a key file.
pub const KEY_FILE_VERSION: u32 = 1;
/// Largest key or public-identity file read, in bytes.
pub const KEY_FILE_BYTES_MAX: u64 = 4096;

/// The public half of an identity, as `FILE.pub` holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIdentity {
    pub public_key: PublicKey,
    pub x25519_public: X25519Public,
}

impl PublicIdentity {
    pub fn of(keypair: &Keypair) -> Self {
        Self {
            public_key: keypair.public_key(),
            x25519_public: keypair.x25519_public(),
        }
    }
}

/// `FILE.pub` for a key file at `FILE`.
pub fn public_file_path(key_path: impl AsRef<Path>) -> PathBuf {
    let mut s = key_path.as_ref().as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

#[derive(Serialize)]
struct KeyFileOut<'a> {
    kind: &'a str,
    version: u32,
    public_key: PublicKey,
    x25519_public: X25519Public,
    ed25519_secret: &'a str,
    x25519_secret: &'a str,
}

/// A hex secret as read from a file, zeroed when dropped.
struct SecretHex(Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretHex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretHex(Zeroizing::new(s)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileIn {
    kind: String,
    version: u32,
    public_key: String,
    x25519_public: String,
    ed25519_secret: SecretHex,
    x25519_secret: SecretHex,
}

/// Both the `.pub` layout and the key file layout: only the public fields are read.
#[derive(Deserialize)]
struct PublicIn {
    #[serde(default)]
    kind: Option<String>,
    public_key: PublicKey,
    x25519_public: X25519Public,
}

fn hex_secret(secret: &[u8; 32]) -> Zeroizing<[u8; 64]> {
    let mut out = Zeroizing::new([0u8; 64]);
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(secret, out.as_mut());
    out
}

/// Describes a JSON error without echoing values, which could be secrets.
fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if e.is_data() && (msg.starts_with("missing field") || msg.starts_with("unknown field")) {
        msg
    } else {
        format!(
            "not valid key json (line {} column {})",
            e.line(),
            e.column()
        )
    }
}

/// Creates a key file at `path` (mode 0600) and its public identity at `FILE.pub` (mode 0644).
/// Refuses to overwrite an existing file at `path`. Returns the `.pub` path.
pub fn write_key_file(path: impl AsRef<Path>, keypair: &Keypair) -> Result<PathBuf, GenesisError> {
    let path = path.as_ref();
    let ed = hex_secret(&keypair.ed25519_seed());
    let x = hex_secret(&keypair.x25519_secret());
    // Hex digits are ASCII, so the conversions to str below cannot fail.
    let file = KeyFileOut {
        kind: KEY_FILE_KIND,
        version: KEY_FILE_VERSION,
        public_key: keypair.public_key(),
        x25519_public: keypair.x25519_public(),
        ed25519_secret: std::str::from_utf8(ed.as_ref()).unwrap_or_default(),
        x25519_secret: std::str::from_utf8(x.as_ref()).unwrap_or_default(),
    };
    // Sized so serialising never reallocates and leaves copies of the secrets in freed memory.
    let mut buf = Zeroizing::new(Vec::with_capacity(1024));
    serde_json::to_writer_pretty(&mut *buf, &file).map_err(|error| GenesisError::Json {
        path: path.into(),
        error,
    })?;
    buf.push(b'\n');
    fsutil::write_new(path, &buf, 0o600)?;
    let pub_path = public_file_path(path);
    write_public_file(&pub_path, &PublicIdentity::of(keypair))?;
    tracing::debug!(path = %path.display(), public_key = %keypair.public_key(), "wrote key file");
    Ok(pub_path)
}

/// Writes a public identity file (mode 0644), replacing any file there.
pub fn write_public_file(
    path: impl AsRef<Path>,
    identity: &PublicIdentity,
) -> Result<(), GenesisError> {
    let path = path.as_ref();
    let mut json = serde_json::to_string_pretty(identity).map_err(|error| GenesisError::Json {
        path: path.into(),
        error,
    })?;
    json.push('\n');
    fsutil::write_replace(path, json.as_bytes(), 0o644)
}

/// Reads a key file: well-formed, of the right kind and version, and its public keys derived
/// from its secrets. Warns if group or others may read it.
pub fn read_key_file(path: impl AsRef<Path>) -> Result<Keypair, GenesisError> {
    let path = path.as_ref();
    let mode = std::fs::metadata(path)
        .map_err(GenesisError::io(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "key file is readable by group or others; run chmod 600 on it"
        );
    }
    let text = fsutil::read_bounded_string(path, KEY_FILE_BYTES_MAX)?;
    parse_key_file(&text, path)
}

/// Parses the text of a key file read from `path` (named in errors): the checks of
/// [`read_key_file`] after the read, the same code it runs.
pub fn parse_key_file(text: &str, path: &Path) -> Result<Keypair, GenesisError> {
    let malformed = |reason: String| GenesisError::MalformedKeyFile {
        path: path.into(),
        reason,
    };
    let file: KeyFileIn = serde_json::from_str(text).map_err(|e| malformed(json_reason(&e)))?;
    if file.kind != KEY_FILE_KIND {
        return Err(malformed(format!(
            "kind is {:?}, want {KEY_FILE_KIND:?}",
            file.kind
        )));
    }
    if file.version != KEY_FILE_VERSION {
        return Err(malformed(format!(
            "version {} is not supported, want {KEY_FILE_VERSION}",
            file.version
        )));
    }
    let mut ed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(file.ed25519_secret.0.trim(), ed.as_mut())
        .map_err(|_| malformed("ed25519_secret is not 32 bytes of hex".into()))?;
    let mut x = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(file.x25519_secret.0.trim(), x.as_mut())
        .map_err(|_| malformed("x25519_secret is not 32 bytes of hex".into()))?;
    let public_key = PublicKey::from_hex(&file.public_key)
        .map_err(|_| malformed("public_key is not 32 bytes of hex".into()))?;
    let x25519_public = X25519Public::from_hex(&file.x25519_public)
        .map_err(|_| malformed("x25519_public is not 32 bytes of hex".into()))?;
    let keypair = Keypair::from_secret_parts(&ed, &x);
    if keypair.public_key() != public_key || keypair.x25519_public() != x25519_public {
        return Err(GenesisError::KeyMismatch { path: path.into() });
    }
    Ok(keypair)
}

/// Reads the public identity from either a `.pub` file or a key file; from a key file only the
/// public fields are used, and the secrets are not decoded.
pub fn read_public_identity(path: impl AsRef<Path>) -> Result<PublicIdentity, GenesisError> {
    let path = path.as_ref();
    let text = fsutil::read_bounded_string(path, KEY_FILE_BYTES_MAX)?;
    parse_public_identity(&text, path)
}

/// Parses the text of a `.pub` or key file read from `path` (named in errors), as
/// [`read_public_identity`] does after the read.
pub fn parse_public_identity(text: &str, path: &Path) -> Result<PublicIdentity, GenesisError> {
    let file: PublicIn =
        serde_json::from_str(text).map_err(|e| GenesisError::MalformedKeyFile {
            path: path.into(),
            reason: json_reason(&e),
        })?;
    if let Some(kind) = file.kind.filter(|k| k != KEY_FILE_KIND) {
        return Err(GenesisError::MalformedKeyFile {
            path: path.into(),
            reason: format!("kind is {kind:?}, want {KEY_FILE_KIND:?}"),
        });
    }
    Ok(PublicIdentity {
        public_key: file.public_key,
        x25519_public: file.x25519_public,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn key_file_round_trips_with_mode_0600_and_a_0644_public_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let kp = Keypair::from_seed(&[5; 32]);
        let pub_path = write_key_file(&path, &kp).unwrap();
        assert_eq!(pub_path, dir.path().join("node.key.pub"));
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&pub_path), 0o644);

        let back = read_key_file(&path).unwrap();
        assert_eq!(back.public_key(), kp.public_key());
        assert_eq!(back.x25519_public(), kp.x25519_public());
        assert_eq!(*back.ed25519_seed(), *kp.ed25519_seed());

        let public = read_public_identity(&pub_path).unwrap();
        assert_eq!(public, PublicIdentity::of(&kp));
        assert_eq!(read_public_identity(&path).unwrap(), public);
        let pub_text = std::fs::read_to_string(&pub_path).unwrap();
        assert!(!pub_text.contains(&hex::encode(*kp.ed25519_seed())));
    }

    #[test]
    fn key_file_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_key_file(&path, &Keypair::from_seed(&[1; 32])).unwrap();
        let err = write_key_file(&path, &Keypair::from_seed(&[2; 32])).unwrap_err();
        assert!(matches!(err, GenesisError::KeyFileExists { .. }), "{err}");
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        let kept = read_key_file(&path).unwrap();
        assert_eq!(kept.public_key(), Keypair::from_seed(&[1; 32]).public_key());
    }

    #[test]
    fn tampered_public_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_key_file(&path, &Keypair::from_seed(&[1; 32])).unwrap();
        let other = Keypair::from_seed(&[2; 32]).public_key().to_hex();
        let mine = Keypair::from_seed(&[1; 32]).public_key().to_hex();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(&mine, &other);
        std::fs::write(&path, text).unwrap();
        let err = read_key_file(&path).unwrap_err();
        assert!(matches!(err, GenesisError::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn malformed_key_files_are_rejected_without_echoing_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let kp = Keypair::from_seed(&[3; 32]);
        let path = dir.path().join("k");
        write_key_file(&path, &kp).unwrap();
        let good = std::fs::read_to_string(&path).unwrap();
        let secret = hex::encode(*kp.ed25519_seed());
        let cases = [
            ("not json", "{".to_string()),
            ("wrong kind", good.replace("cradle-key", "other-key")),
            (
                "wrong version",
                good.replace("\"version\": 1", "\"version\": 2"),
            ),
            ("short secret", good.replace(&secret, &secret[..62])),
            (
                "missing secret",
                good.replace(&format!("\"ed25519_secret\": \"{secret}\","), ""),
            ),
            ("extra field", good.replace("{", "{\"extra\": 1,")),
        ];
        for (what, text) in cases {
            let p = dir.path().join(what.replace(' ', "-"));
            std::fs::write(&p, &text).unwrap();
            let err = read_key_file(&p).unwrap_err();
            assert!(
                matches!(err, GenesisError::MalformedKeyFile { .. }),
                "{what}: {err}"
            );
            assert!(!err.to_string().contains(&secret[..16]), "{what}: {err}");
        }
    }

    #[test]
    fn group_readable_key_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_key_file(&path, &Keypair::from_seed(&[4; 32])).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        // The warning goes to tracing; the key itself is still usable.
        assert!(read_key_file(&path).is_ok());
    }
}
