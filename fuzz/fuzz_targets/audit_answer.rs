//! An audit answer as the `cradle audit --verify` client receives it: `AuditAnswer::decode`,
//! `verify_answer` from the test consortium's genesis, the checkpoint move the client makes,
//! and the client's table, JSON and FHIR renderings of what verified. None may panic.
#![no_main]

use cradle_fuzz::{assert_canonical, consortium};
use cradle_ledger::audit::{AuditAnswer, advance_checkpoint, verify_answer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = AuditAnswer::decode(data) else {
        return;
    };
    assert_canonical(data, &answer, AuditAnswer::decode);
    let c = consortium();
    let _ = answer.range();
    let Ok(verified) = verify_answer(c, &answer) else {
        return;
    };
    assert_eq!(verified.subject, answer.subject);
    assert_eq!(verified.range, answer.range());
    assert_eq!(verified.height, answer.header.height);
    assert_eq!(verified.header_hash, answer.header.hash());
    // Events come out in log order, each about the subject, within the range if one was asked.
    for pair in verified.events.windows(2) {
        assert!(pair[0].index < pair[1].index, "events out of log order");
    }
    for e in &verified.events {
        assert!(e.index < verified.log_size);
        assert!(
            answer.subject.matches(&e.event),
            "event not about the subject"
        );
        if let Some((from, to)) = verified.range {
            assert!(from <= e.event.time_ms && e.event.time_ms <= to);
        }
    }
    // What the client does next with a verified answer and no remembered checkpoint.
    if let Err(e) = advance_checkpoint(c, None, &answer.header, &answer.certificate, None) {
        panic!("a verified answer's header does not make a checkpoint: {e}");
    }
    let _ = cradle_client::audit::render_table(&verified.events, c);
    let _ = cradle_client::audit::render_json(&verified, c);
    let _ = cradle_client::fhir::audit_bundle(&verified.events, c, &hex::encode(c.chain_id));
});
