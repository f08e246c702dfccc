//! Blocks, their headers and their commit certificates, and the pipeline a block goes through.
//!
//! A header commits to the block's transactions (an RFC 6962 root over their canonical bytes),
//! to the state after applying them (the sparse Merkle root), to the global access log (its
//! size and RFC 6962 root) and to the member set in force at the next height. Its hash is the value consensus decides, so a commit certificate
//! on the hash makes every one of those commitments final.
//!
//! A block someone else proposed goes through three steps, each taking what the one before
//! returned: [`check_envelope`] (chain, height, parent, time, proposer, sizes, tx root), then
//! [`EnvelopeChecked::verify_signatures`] (one ed25519 batch), then [`execute()`] (the rules, the
//! state root, the header's commitments). [`execute()`] takes a [`SignaturesChecked`], which only
//! the signature step makes, so no block is executed with unchecked signatures.
//! [`check_block`] runs the first two steps at once. A proposer builds its own block with
//! [`build_block`].

mod build;
mod envelope;
mod execute;
mod signatures;

use borsh::{BorshDeserialize, BorshSerialize};
use cradle_consensus::{CommitCertificate, ValueId};
use serde::{Deserialize, Serialize};

use crate::codec::{self, BoundedVec};
use crate::crypto::{self, Digest32, Hash, PublicKey};
use crate::error::Error;
use crate::identity::Consortium;
use crate::merkle::log;
use crate::tx::SignedTransaction;

pub use build::{BuiltBlock, build_block};
pub use envelope::{EnvelopeChecked, check_envelope};
pub use execute::{Executed, execute};
pub use signatures::{SignaturesChecked, check_block, verify_signatures, verify_signatures_of};

/// Hard bound on transactions per block, whatever genesis says.
pub const BLOCK_TXS_HARD_MAX: usize = 100_000;

const TAG_BLOCK_HEADER: &[u8] = b"cradle.ledger.block-header.v1\0";

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    pub chain_id: Digest32,
    pub height: u64,
    /// Proposer's time, milliseconds since the Unix epoch; strictly increasing.
    pub time_ms: u64,
    /// Hash of the previous block's header; the chain id for the first block.
    pub prev_hash: Digest32,
    pub proposer: PublicKey,
    pub tx_count: u32,
    pub tx_root: Digest32,
    pub state_root: Digest32,
    pub access_log_size: u64,
    pub access_log_root: Digest32,
    /// [`crate::identity::MemberSet::hash`] of the set in force at the next height: a light
    /// client learns of a governance change from the certified header before the new set signs.
    pub next_members_hash: Digest32,
}

impl BlockHeader {
    /// SHA-256 over a tag and the header's canonical encoding: the block's identity.
    pub fn hash(&self) -> Hash {
        let mut bytes = TAG_BLOCK_HEADER.to_vec();
        // Writing into a Vec cannot fail.
        let _ = borsh::to_writer(&mut bytes, self);
        crypto::sha256(&bytes)
    }

    pub fn value_id(&self) -> ValueId {
        ValueId(self.hash())
    }
}

/// A proposed or decided block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: BoundedVec<SignedTransaction, BLOCK_TXS_HARD_MAX>,
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Self, Error> {
        codec::decode(bytes, max_len)
    }
}

/// Consensus orders blocks; a block is identified by its header's hash.
impl cradle_consensus::Value for Block {
    fn id(&self) -> ValueId {
        self.header.value_id()
    }
}

/// The RFC 6962 root over the transactions' canonical bytes.
pub fn tx_root(txs: &[SignedTransaction]) -> Hash {
    let leaves: Vec<Hash> = txs.iter().map(|t| tx_leaf(&t.encode())).collect();
    tx_root_of_leaves(&leaves)
}

/// A transaction's leaf in the tx root, from its canonical encoding.
pub(crate) fn tx_leaf(encoded: &[u8]) -> Hash {
    log::leaf_hash(encoded)
}

/// The tx root over leaves from [`tx_leaf`], in block order.
pub(crate) fn tx_root_of_leaves(leaves: &[Hash]) -> Hash {
    log::root_of(leaves)
}

/// A decided block and the certificate that makes it final.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct FinalizedBlock {
    pub block: Block,
    pub certificate: CommitCertificate,
}

impl FinalizedBlock {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Self, Error> {
        codec::decode(bytes, max_len)
    }

    /// Checks that the certificate is valid for this consortium and decides this very block at
    /// its height; says nothing about the block's contents against state.
    pub fn verify_certificate(&self, consortium: &Consortium) -> Result<(), Error> {
        verify_header_certificate(&self.block.header, &self.certificate, consortium)
    }
}

/// Checks that `certificate` finalises `header` in `consortium`: a light client's whole check.
pub fn verify_header_certificate(
    header: &BlockHeader,
    certificate: &CommitCertificate,
    consortium: &Consortium,
) -> Result<(), Error> {
    if header.chain_id.0 != consortium.chain_id {
        return Err(Error::WrongChain);
    }
    certificate
        .verify_for(
            &consortium.chain_id,
            consortium.validators(),
            header.height,
            header.value_id(),
        )
        .map_err(Error::Consensus)
}

/// Where the chain stands: what the next block builds on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ChainTip {
    pub height: u64,
    pub hash: Hash,
    pub time_ms: u64,
}

impl ChainTip {
    /// The tip before the first block: height 0, the chain id as hash, genesis time.
    pub fn genesis(consortium: &Consortium) -> Self {
        Self {
            height: 0,
            hash: consortium.chain_id,
            time_ms: consortium.genesis_time_ms,
        }
    }

    pub fn of(header: &BlockHeader) -> Self {
        Self {
            height: header.height,
            hash: header.hash(),
            time_ms: header.time_ms,
        }
    }
}
