//! The portal's vector files (`node/portal/test/vectors/`), made by the Rust tests that include
//! this module: by default a test checks that the file in the repository says what it builds;
//! with `CRADLE_WRITE_PORTAL_VECTORS=1` it writes the file instead. Who wrote a file (its
//! `source` field) is not part of what it says.
#![allow(dead_code, clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::path::PathBuf;

use serde_json::Value;

/// What a test says when a file is stale.
pub const STALE: &str = "differs from what the Rust implementation makes; rerun with \
                         CRADLE_WRITE_PORTAL_VECTORS=1 and then run `node --test node/portal/test/`";

pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../node/portal/test/vectors")
        .join(name)
}

/// Whether this run writes the files instead of checking them.
pub fn writing() -> bool {
    std::env::var_os("CRADLE_WRITE_PORTAL_VECTORS").is_some()
}

pub fn write(name: &str, doc: &Value) {
    let path = path(name);
    let text = serde_json::to_string_pretty(doc).unwrap() + "\n";
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The file as the repository keeps it.
pub fn read(name: &str) -> Value {
    let path = path(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Whether `doc` says what `kept` says, `source` aside.
pub fn same(mut kept: Value, mut doc: Value) -> bool {
    kept["source"] = Value::Null;
    doc["source"] = Value::Null;
    kept == doc
}

/// Writes `doc` to the file `name`, or checks that the file says the same.
pub fn check_or_write(name: &str, doc: Value) {
    if writing() {
        write(name, &doc);
        return;
    }
    assert!(same(read(name), doc), "{name} {STALE}");
}
