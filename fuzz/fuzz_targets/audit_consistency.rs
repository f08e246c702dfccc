//! A node's consistency proof of the global access log (`/v1/audit/consistency`), as the client
//! receives it: `ConsistencyAnswer::decode`, then the checkpoint move from genesis and from a
//! remembered checkpoint derived from the input.
#![no_main]

use cradle_fuzz::{assert_canonical, consortium};
use cradle_ledger::audit::{Checkpoint, ConsistencyAnswer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = ConsistencyAnswer::decode(data) else {
        return;
    };
    assert_canonical(data, &answer, ConsistencyAnswer::decode);
    let c = consortium();
    if let Ok(cp) = answer.advance(c, None) {
        assert_eq!(cp, Checkpoint::of(&answer.header));
        // Moving to the same header again is always allowed and changes nothing.
        match answer.advance(c, Some(&cp)) {
            Ok(again) => assert_eq!(again, cp),
            Err(e) if answer.from_size != cp.access_log_size => {
                let _ = e;
            }
            Err(e) => panic!("the same checkpoint again was refused: {e}"),
        }
    }
    // A remembered checkpoint of the size the proof starts from, at a lower height.
    if answer.header.height > 0 {
        let old = Checkpoint {
            height: answer.header.height - 1,
            header_hash: answer.header.prev_hash,
            time_ms: answer.header.time_ms.saturating_sub(1),
            access_log_size: answer.from_size,
            access_log_root: answer.header.access_log_root,
        };
        if let Ok(cp) = answer.advance(c, Some(&old)) {
            assert_eq!(cp.height, answer.header.height);
            assert!(cp.access_log_size >= old.access_log_size);
        }
    }
});
