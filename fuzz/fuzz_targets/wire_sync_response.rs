//! A peer's answer with blocks: `SyncResponse::decode`, then each carried block decoded under
//! the bound the sync driver uses and its certificate checked against the test consortium, as
//! the catch-up path does before storing anything.
#![no_main]

use cradle_fuzz::{assert_canonical, consortium};
use cradle_ledger::block::FinalizedBlock;
use cradle_node::wire::{SYNC_BLOCKS_MAX, SyncResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(resp) = SyncResponse::decode(data) else {
        return;
    };
    assert_canonical(data, &resp, SyncResponse::decode);
    assert!(resp.blocks.len() <= SYNC_BLOCKS_MAX);
    let c = consortium();
    // node/src/driver/sync.rs: genesis block bound plus room for the certificate.
    let block_max = c.limits.block_bytes_max as usize + 64 * 1024;
    for bytes in &resp.blocks {
        let Ok(fb) = FinalizedBlock::decode(bytes, block_max) else {
            continue;
        };
        assert_canonical(bytes, &fb, |b| FinalizedBlock::decode(b, block_max));
        if fb.verify_certificate(c).is_ok() {
            assert_eq!(fb.block.header.chain_id.0, c.chain_id);
        }
    }
});
