//! The body of `PUT /v1/staff/{key}/directory`: the handler's `parse_directory_entry` (JSON
//! `{"name", "staff_number"}`), then `DirectoryEntry::validate`, which the directory runs
//! before it keeps a name that audit tables will show.
#![no_main]

use cradle_node::directory::DirectoryEntry;
use cradle_node::http::staff::parse_directory_entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = parse_directory_entry(data) else {
        return;
    };
    let valid = entry.validate().is_ok();
    if valid {
        // The directory keeps the trimmed values: those must print as what they are.
        for value in [entry.name.trim(), entry.staff_number.trim()] {
            assert!(!value.is_empty());
            assert!(!value.chars().any(char::is_control), "{value:?}");
        }
    }
    // The directory file keeps entries as JSON: one survives it unchanged.
    let json = match serde_json::to_vec(&entry) {
        Ok(json) => json,
        Err(e) => panic!("an entry does not serialise: {e}"),
    };
    match serde_json::from_slice::<DirectoryEntry>(&json) {
        Ok(back) => {
            assert_eq!(back.name, entry.name);
            assert_eq!(back.staff_number, entry.staff_number);
            assert_eq!(back.validate().is_ok(), valid);
        }
        Err(e) => panic!("an entry does not come back from JSON: {e}"),
    }
});
