//! Genesis documents (`genesis.json`): `GenesisDoc::parse_unvalidated` (what `load` runs after
//! the read), `validate`, and for a valid one the consortium the node and client build from it.
//! A valid document survives its own pretty JSON unchanged.
#![no_main]

use std::path::Path;

use cradle_genesis::GenesisDoc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = GenesisDoc::parse_unvalidated(data, Path::new("genesis.json")) else {
        return;
    };
    let valid = doc.validate().is_ok();
    let json = doc.to_json_pretty();
    let again = match GenesisDoc::parse_unvalidated(json.as_bytes(), Path::new("again.json")) {
        Ok(again) => again,
        Err(e) => panic!("a parsed document does not re-parse from its own JSON: {e}"),
    };
    assert_eq!(again, doc, "the document changed through its own JSON");
    assert_eq!(again.validate().is_ok(), valid);
    if !valid {
        return;
    }
    match doc.consortium() {
        Ok(c) => {
            assert_eq!(c.chain_id, doc.chain_id());
            assert_eq!(c.members.len(), doc.members.len());
            let _ = doc.validators().count();
        }
        Err(e) => panic!("a valid genesis does not make a consortium: {e}"),
    }
});
