//! Key files and public identity files (`node.key`, `patient.key.pub`): the parsers that
//! `read_key_file` and `read_public_identity` run after reading, on any text. A key file that
//! parses holds secrets whose public keys are the ones written in it, and is also a public
//! identity file naming those keys.
#![no_main]

use std::path::Path;

use cradle_genesis::keyfile::{PublicIdentity, parse_key_file, parse_public_identity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.key");
    let key = parse_key_file(text, path);
    let public = parse_public_identity(text, path);
    if let Ok(key) = key {
        // Every key file is also a public identity file, naming the same keys.
        match public {
            Ok(id) => assert_eq!(id, PublicIdentity::of(&key)),
            Err(e) => panic!("a valid key file is not a valid identity: {e}"),
        }
    }
});
