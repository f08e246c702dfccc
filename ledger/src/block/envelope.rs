//! A block's envelope: the checks that need neither state nor signatures.
//!
//! Chain, height, parent, time, proposer, transaction count, sizes and the tx root, against the
//! chain tip and the consortium. Each transaction's canonical encoding is measured and hashed
//! here, once: [`EnvelopeChecked`] carries those figures on through the signature check to
//! execution, so a validator encodes each transaction of a block once.

use crate::crypto::{self, Hash};
use crate::error::Error;
use crate::identity::Consortium;
use crate::tx::SignedTransaction;

use super::{Block, ChainTip, tx_leaf, tx_root_of_leaves};

/// What a block's checks need of each transaction's canonical encoding, computed once: its
/// length (the size limits), its hash (its name) and its leaf hash (the tx root).
pub(super) struct Encoded {
    pub(super) len: usize,
    pub(super) hash: Hash,
    pub(super) leaf: Hash,
}

impl Encoded {
    fn new(stx: &SignedTransaction) -> Self {
        let bytes = stx.encode();
        Self {
            len: bytes.len(),
            hash: crypto::sha256(&bytes),
            leaf: tx_leaf(&bytes),
        }
    }
}

/// A block whose envelope checked out against the chain tip. Its signatures come next
/// ([`EnvelopeChecked::verify_signatures`]); only [`check_envelope`] makes one.
pub struct EnvelopeChecked<'a> {
    block: &'a Block,
    encoded: Vec<Encoded>,
}

impl<'a> EnvelopeChecked<'a> {
    pub fn block(&self) -> &'a Block {
        self.block
    }

    /// The block and its transactions' encodings, in block order.
    pub(super) fn into_parts(self) -> (&'a Block, Vec<Encoded>) {
        (self.block, self.encoded)
    }
}

/// The checks that need no state: chain, height, parent, time, proposer, sizes, tx root.
pub fn check_envelope<'a>(
    consortium: &Consortium,
    tip: &ChainTip,
    block: &'a Block,
) -> Result<EnvelopeChecked<'a>, Error> {
    let h = &block.header;
    if h.chain_id.0 != consortium.chain_id {
        return Err(Error::WrongChain);
    }
    if h.height != tip.height + 1 {
        return Err(Error::WrongHeight {
            got: h.height,
            want: tip.height + 1,
        });
    }
    if h.prev_hash.0 != tip.hash {
        return Err(Error::WrongParent);
    }
    if h.time_ms <= tip.time_ms {
        return Err(Error::TimeNotIncreasing {
            got: h.time_ms,
            prev: tip.time_ms,
        });
    }
    if consortium.validators().index_of(&h.proposer.0).is_none() {
        return Err(Error::NotAValidator(h.proposer));
    }
    let limits = &consortium.limits;
    if block.txs.len() > limits.block_txs_max as usize {
        return Err(Error::TooMany {
            len: block.txs.len(),
            max: limits.block_txs_max as usize,
        });
    }
    if h.tx_count as usize != block.txs.len() {
        return Err(Error::HeaderMismatch("tx_count"));
    }
    let encoded: Vec<Encoded> = block.txs.iter().map(Encoded::new).collect();
    let bytes: usize = encoded.iter().map(|e| e.len).sum();
    if bytes > limits.block_bytes_max as usize {
        return Err(Error::TooLarge {
            len: bytes,
            max: limits.block_bytes_max as usize,
        });
    }
    let leaves: Vec<Hash> = encoded.iter().map(|e| e.leaf).collect();
    if tx_root_of_leaves(&leaves) != h.tx_root.0 {
        return Err(Error::HeaderMismatch("tx_root"));
    }
    Ok(EnvelopeChecked { block, encoded })
}
