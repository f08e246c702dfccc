//! One committed record proven against a certified header (`RecordAnswer`), as the client
//! receives it before it trusts an archive's hash or a patient's keys: decode, then
//! `verify_record` for each kind of record the client reads, on the answer's own key.
#![no_main]

use cradle_fuzz::{assert_canonical, consortium};
use cradle_ledger::audit::{RecordAnswer, verify_record};
use cradle_ledger::state::{ArchiveRecord, PatientRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = RecordAnswer::decode(data) else {
        return;
    };
    assert_canonical(data, &answer, RecordAnswer::decode);
    let c = consortium();
    let key = answer.key.to_vec();
    let archive = verify_record::<ArchiveRecord>(c, &answer, &key);
    let patient = verify_record::<PatientRecord>(c, &answer, &key);
    if let (Ok((None, h1)), Ok((None, h2))) = (&archive, &patient) {
        assert_eq!(h1, h2);
        assert!(answer.value.is_none(), "a present value was read as absent");
    }
    // Another key never verifies against the same answer.
    let mut other = key.clone();
    other.push(0);
    assert!(verify_record::<ArchiveRecord>(c, &answer, &other).is_err());
});
