//! What nodes say to each other: consensus messages, transaction batches, and block sync.
//!
//! Every message is `VERSION || borsh(NetMessage)` and decoded under the network's size cap.
//! Decoding proves nothing: the driver verifies membership, signatures and chain id before
//! anything reaches consensus, the mempool or storage.

use borsh::{BorshDeserialize, BorshSerialize};
use cradle_consensus::{Message, SignedProposal, SignedVote};
use cradle_ledger::block::Block;
use cradle_ledger::codec::{self, BoundedVec};
use cradle_ledger::tx::TxBatch;

/// Most transactions in one gossiped batch: the ledger's one batch bound.
pub use cradle_ledger::tx::TX_BATCH_MAX;
/// Most blocks one sync response carries.
pub const SYNC_BLOCKS_MAX: usize = 64;
/// Largest message the driver accepts, whatever the transport allows: what the network
/// delivers with its default configuration.
pub const MESSAGE_BYTES_MAX: usize = crate::network::MESSAGE_BYTES_MAX_DEFAULT;

/// A broadcast or direct message between members.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum NetMessage {
    Proposal(Box<SignedProposal<Block>>),
    Vote(SignedVote),
    /// Encoded signed transactions, each verified by the receiver before its mempool takes it.
    Txs(TxBatch),
    /// "I am at this height": lets a peer that is ahead notice that we need blocks, and us
    /// notice that we are behind.
    Status {
        height: u64,
    },
}

impl NetMessage {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, cradle_ledger::Error> {
        codec::decode(bytes, MESSAGE_BYTES_MAX)
    }

    pub fn from_consensus(m: Message<Block>) -> Self {
        match m {
            Message::Proposal(p) => NetMessage::Proposal(Box::new(p)),
            Message::Vote(v) => NetMessage::Vote(v),
        }
    }
}

/// A request for decided blocks, starting at `from_height`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SyncRequest {
    pub from_height: u64,
    pub max_blocks: u16,
}

/// Encoded [`cradle_ledger::block::FinalizedBlock`]s, consecutive from the requested height,
/// and the responder's tip height.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SyncResponse {
    pub tip_height: u64,
    pub blocks: BoundedVec<Vec<u8>, SYNC_BLOCKS_MAX>,
}

impl SyncRequest {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, cradle_ledger::Error> {
        codec::decode(bytes, 64)
    }
}

impl SyncResponse {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, cradle_ledger::Error> {
        codec::decode(bytes, MESSAGE_BYTES_MAX)
    }
}
