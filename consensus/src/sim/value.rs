//! The value the simulated cluster orders, and the stand-in for the ledger's validity rules.

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};

use crate::proposal::Value;
use crate::types::{Height, Round, ValidatorIndex, ValueId};

/// A simulated block: who proposed it where, a nonce, and whether the ledger would accept it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SimValue {
    pub height: Height,
    pub round: Round,
    pub proposer: ValidatorIndex,
    pub nonce: u64,
    /// Byzantine proposers sometimes propose blocks that break the ledger's rules.
    pub acceptable: bool,
}

impl Value for SimValue {
    fn id(&self) -> ValueId {
        let bytes = borsh::to_vec(self).unwrap_or_default();
        ValueId(Sha256::digest(&bytes).into())
    }
}

/// The ledger's verdict, a pure function of the block and the height it is proposed at.
pub fn validate(value: &SimValue, height: Height) -> bool {
    value.acceptable && value.height == height
}
