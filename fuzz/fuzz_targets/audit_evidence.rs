//! A page of equivocation evidence (`/v1/audit/evidence`) as a regulator's client receives it:
//! `EvidenceAnswer::decode`, `verify_evidence` from genesis, and the client's renderings.
#![no_main]

use cradle_fuzz::{assert_canonical, consortium};
use cradle_ledger::audit::{EvidenceAnswer, describe, verify_evidence};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(page) = EvidenceAnswer::decode(data) else {
        return;
    };
    assert_canonical(data, &page, EvidenceAnswer::decode);
    let c = consortium();
    let described: Vec<_> = page.items.iter().map(|e| describe(c, e)).collect();
    let _ = cradle_client::evidence::render_evidence_table(&described);
    let _ = cradle_client::evidence::render_evidence_json(&described, false);
    let sets = cradle_ledger::governance::Sets::new(c.clone());
    if let Ok(items) = verify_evidence(&sets, &page) {
        assert_eq!(items.len(), page.items.len());
        let _ = cradle_client::evidence::render_evidence_table(&items);
    }
});
