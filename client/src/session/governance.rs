//! Governance as a member does it: propose a change, approve one, list where they stand.
//!
//! The ledger decides: a change is adopted when its approvers hold more than two thirds of the
//! voting power (see [`cradle_ledger::governance`]); this side only signs and submits.

use std::path::Path;

use cradle_ledger::governance::{ApproveChange, Change, ProposeChange, proposal_id};
use cradle_ledger::tx::TxBody;
use cradle_ledger::{Member, ProposalId, Role};
use serde_json::Value;

use super::enrolment::read_public_key_file;
use super::{ClientError, Receipt, Session};

/// A new member as a proposal names it; its keys come from its public key file.
pub struct NewMember {
    pub name: String,
    pub role: Role,
    pub voting_power: u64,
    pub p2p_addr: Option<String>,
    pub api_addr: Option<String>,
}

impl Session {
    /// The change that adds the institution whose public key file (`cradle keygen --genesis`,
    /// run on its own machine) is at `pubkey`: the file's proof shows the institution holds its
    /// signing key and chose its X25519 key for this chain.
    pub fn add_member_change(&self, pubkey: &Path, m: NewMember) -> Result<Change, ClientError> {
        let e = read_public_key_file(pubkey)?.enrolment_for(&self.chain_id)?;
        Ok(Change::AddMember {
            member: Member {
                name: m.name,
                role: m.role,
                public_key: e.patient,
                x25519: e.x25519,
                voting_power: m.voting_power,
                p2p_addr: m.p2p_addr,
                api_addr: m.api_addr,
                signing_key: None,
            },
            proof: e.proof,
        })
    }

    /// The change that rotates `member`'s keys (its identity) to the key whose public key file
    /// is at `pubkey`, with that file's proof that the new key was made for this chain.
    pub fn rotate_member_key_change(
        &self,
        member: cradle_ledger::PublicKey,
        pubkey: &Path,
    ) -> Result<Change, ClientError> {
        let e = read_public_key_file(pubkey)?.enrolment_for(&self.chain_id)?;
        Ok(Change::RotateMemberKey {
            member,
            new_key: e.patient,
            new_x25519: e.x25519,
            proof: e.proof,
        })
    }

    /// Proposes `change`; returns the receipt and the proposal's id.
    pub fn propose(&self, change: Change) -> Result<(Receipt, ProposalId), ClientError> {
        let (receipt, nonce) =
            self.submit_nonce(TxBody::ProposeChange(ProposeChange { change }))?;
        // The ledger names the proposer by its identity, whichever key signs for it now.
        let me = self.key.public_key();
        let proposer = self.consortium().signer(&me).map_or(me, |m| m.public_key);
        Ok((receipt, proposal_id(&proposer, nonce)))
    }

    pub fn approve(&self, proposal: ProposalId) -> Result<Receipt, ClientError> {
        self.submit(TxBody::ApproveChange(ApproveChange { proposal }))
    }

    /// The proposals and where each stands, as the node's state says (members and
    /// regulators).
    pub fn proposals(&self) -> Result<Value, ClientError> {
        Ok(self.api.get_json("/v1/governance/proposals")?)
    }
}
