//! A decided block with its commit certificate, as sync or a light client receives it:
//! `FinalizedBlock::decode`, the certificate against the test consortium, then the envelope and
//! signature checks a validator runs on the genesis tip, and execution on an empty state.
#![no_main]

use cradle_fuzz::{assert_canonical, consortium};
use cradle_ledger::block::{self, ChainTip, FinalizedBlock};
use cradle_ledger::state::MemoryStore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = consortium();
    let max = c.limits.block_bytes_max as usize + 64 * 1024;
    let Ok(fb) = FinalizedBlock::decode(data, max) else {
        return;
    };
    assert_canonical(data, &fb, |b| FinalizedBlock::decode(b, max));
    let certified = fb.verify_certificate(c).is_ok();
    if certified {
        assert_eq!(fb.block.header.chain_id.0, c.chain_id);
    }
    let tip = ChainTip::genesis(c);
    let Ok(checked) = block::check_block(c, &tip, &fb.block) else {
        return;
    };
    assert_eq!(fb.block.header.height, 1);
    assert_eq!(fb.block.txs.len(), fb.block.header.tx_count as usize);
    assert_eq!(fb.block.header.tx_root.0, block::tx_root(&fb.block.txs));
    let store = MemoryStore::new();
    if let Ok(executed) = block::execute(&store, c, checked) {
        // Execution checked the header's commitments against what it computed.
        assert_eq!(executed.state_root, fb.block.header.state_root.0);
        assert_eq!(executed.access_log.size(), fb.block.header.access_log_size);
    }
});
