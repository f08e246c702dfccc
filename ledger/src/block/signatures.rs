//! Signature checks, batched, and the proof that a block passed them.
//!
//! [`verify_signatures`] checks any list of transactions in one ed25519 batch. A block to be
//! executed needs more than a passing check somewhere: it needs a [`SignaturesChecked`], which
//! only the functions here make, from a block whose envelope was checked. So the one way to
//! execute a block someone else proposed ([`super::execute()`]) cannot skip its signatures.

use std::collections::BTreeMap;

use crate::crypto::{self, Hash, PublicKey};
use crate::error::Error;
use crate::identity::Consortium;
use crate::tx::{SignedTransaction, TxBody};

use super::envelope::{Encoded, EnvelopeChecked, check_envelope};
use super::{Block, ChainTip};

/// Proof that a block's envelope was checked against the tip and that the signatures of its
/// transactions were checked: by [`EnvelopeChecked::verify_signatures`], or in part when a
/// mempool admitted them ([`EnvelopeChecked::verify_signatures_except`]). The private fields
/// keep anyone else from making one; [`super::execute()`] takes it by value.
pub struct SignaturesChecked<'a> {
    block: &'a Block,
    encoded: Vec<Encoded>,
}

impl<'a> SignaturesChecked<'a> {
    pub fn block(&self) -> &'a Block {
        self.block
    }

    /// The block and its transactions' encodings, in block order.
    pub(super) fn into_parts(self) -> (&'a Block, Vec<Encoded>) {
        (self.block, self.encoded)
    }
}

impl<'a> EnvelopeChecked<'a> {
    /// Checks the signatures of every transaction of the block, in one batch.
    pub fn verify_signatures(self, chain_id: &Hash) -> Result<SignaturesChecked<'a>, Error> {
        let (block, encoded) = self.into_parts();
        verify_batch(block.txs.iter().enumerate(), chain_id)?;
        Ok(SignaturesChecked { block, encoded })
    }

    /// Checks the signatures of the block's transactions except those for which
    /// `verified_on_admission` says yes, given a transaction's hash.
    ///
    /// For a validator whose mempool admits a transaction only after checking its signatures
    /// and chain id: most of a proposal is already in its mempool, and checking those again
    /// would double the cost of validating a block. The caller vouches for the transactions it
    /// skips; only a mempool of verified transactions may answer yes. A failure names the
    /// transaction's index in the block.
    pub fn verify_signatures_except(
        self,
        chain_id: &Hash,
        verified_on_admission: impl Fn(&Hash) -> bool,
    ) -> Result<SignaturesChecked<'a>, Error> {
        let (block, encoded) = self.into_parts();
        let unchecked = block.txs.iter().enumerate().filter(|(index, _)| {
            encoded
                .get(*index)
                .is_none_or(|e| !verified_on_admission(&e.hash))
        });
        verify_batch(unchecked, chain_id)?;
        Ok(SignaturesChecked { block, encoded })
    }
}

/// Every check of a block that needs no state: its envelope against `tip`, then the signatures
/// of all its transactions.
pub fn check_block<'a>(
    consortium: &Consortium,
    tip: &ChainTip,
    block: &'a Block,
) -> Result<SignaturesChecked<'a>, Error> {
    check_envelope(consortium, tip, block)?.verify_signatures(&consortium.chain_id)
}

/// Checks every transaction's signatures in one batch (and, for access records, the accessor's
/// signature on the request; for enrolments, the patient's proof), plus each chain id. Names the first bad transaction on failure.
pub fn verify_signatures(txs: &[SignedTransaction], chain_id: &Hash) -> Result<(), Error> {
    verify_batch(txs.iter().enumerate(), chain_id)
}

/// [`verify_signatures`] over transactions that need not sit in one slice; errors name a
/// transaction by its place in the iteration.
pub fn verify_signatures_of<'t>(
    txs: impl IntoIterator<Item = &'t SignedTransaction>,
    chain_id: &Hash,
) -> Result<(), Error> {
    verify_batch(txs.into_iter().enumerate(), chain_id)
}

/// The batch check of the `(index, transaction)` pairs given; errors name the index.
fn verify_batch<'t>(
    txs: impl IntoIterator<Item = (usize, &'t SignedTransaction)>,
    chain_id: &Hash,
) -> Result<(), Error> {
    let txs = txs.into_iter();
    let (len, _) = txs.size_hint();
    let mut messages = Vec::with_capacity(len);
    let mut signatures = Vec::with_capacity(len);
    let mut keys_ = Vec::with_capacity(len);
    let mut owner = Vec::with_capacity(len);
    // A block's signatures come from far fewer keys than it has signatures (institutions sign
    // most transactions), and parsing a key is a point decompression, a field exponentiation:
    // parse each distinct key once. A key that fails to parse fails at its first use, as before.
    let mut parsed: BTreeMap<PublicKey, ed25519_dalek::VerifyingKey> = BTreeMap::new();
    let mut parse = |key: &PublicKey| -> Result<ed25519_dalek::VerifyingKey, Error> {
        if let Some(k) = parsed.get(key) {
            return Ok(*k);
        }
        let k = key.verifying_key()?;
        parsed.insert(*key, k);
        Ok(k)
    };
    for (index, stx) in txs {
        let invalid = |e: Error| Error::InvalidTx {
            index,
            source: Box::new(e),
        };
        if &stx.tx.chain_id != chain_id {
            return Err(invalid(Error::WrongChain));
        }
        messages.push(stx.signing_bytes());
        signatures.push(ed25519_dalek::Signature::from_bytes(&stx.signature.0));
        keys_.push(parse(&stx.tx.signer).map_err(invalid)?);
        owner.push((index, Error::BadSignature));
        if let TxBody::RecordAccess(r) = &stx.tx.body {
            let req = &r.request;
            messages.push(crypto::signing_bytes(
                crypto::TAG_ACCESS_REQUEST,
                chain_id,
                &req.request,
            ));
            signatures.push(ed25519_dalek::Signature::from_bytes(&req.signature.0));
            keys_.push(parse(&req.request.accessor).map_err(invalid)?);
            owner.push((index, Error::BadSignature));
        }
        // The proof that the holder of a key chose the X25519 key it is enrolled or
        // registered with: a patient's, or a clinician's (new) keys.
        let proof = match &stx.tx.body {
            TxBody::EnrolPatient(e) => Some((e.patient, e.proof_signing_bytes(chain_id), e.proof)),
            TxBody::RegisterStaff(r) => Some((
                r.keys.key,
                r.keys.proof_signing_bytes(chain_id),
                r.keys.proof,
            )),
            TxBody::RotateStaffKey(r) => Some((
                r.new_keys.key,
                r.new_keys.proof_signing_bytes(chain_id),
                r.new_keys.proof,
            )),
            TxBody::RotatePatientKey(r) => Some((
                r.new_key,
                crate::tx::key_proof_signing_bytes(&r.new_key, &r.new_x25519, chain_id),
                r.proof,
            )),
            TxBody::RecoverPatient(r) => Some((
                r.new_key,
                crate::tx::key_proof_signing_bytes(&r.new_key, &r.new_x25519, chain_id),
                r.proof,
            )),
            TxBody::ProposeChange(p) => match &p.change {
                crate::governance::Change::AddMember { member, proof } => Some((
                    member.public_key,
                    crate::tx::key_proof_signing_bytes(
                        &member.public_key,
                        &member.x25519,
                        chain_id,
                    ),
                    *proof,
                )),
                crate::governance::Change::RotateMemberKey {
                    new_key,
                    new_x25519,
                    proof,
                    ..
                } => Some((
                    *new_key,
                    crate::tx::key_proof_signing_bytes(new_key, new_x25519, chain_id),
                    *proof,
                )),
                _ => None,
            },
            _ => None,
        };
        if let Some((key, message, proof)) = proof {
            let bad_proof = Error::BadEnrolmentProof(key);
            messages.push(message);
            signatures.push(ed25519_dalek::Signature::from_bytes(&proof.0));
            keys_.push(parse(&key).map_err(|_| invalid(bad_proof.clone()))?);
            owner.push((index, bad_proof));
        }
    }
    if messages.is_empty() {
        return Ok(());
    }
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    if ed25519_dalek::verify_batch(&refs, &signatures, &keys_).is_ok() {
        return Ok(());
    }
    // Batch verification says only that something is wrong; find what, strictly.
    for (i, msg) in refs.iter().enumerate() {
        if keys_[i].verify_strict(msg, &signatures[i]).is_err() {
            let (index, error) = owner.swap_remove(i);
            return Err(Error::InvalidTx {
                index,
                source: Box::new(error),
            });
        }
    }
    // Strict single checks passed where the batch failed: treat the block as bad all the same.
    Err(Error::InvalidTx {
        index: 0,
        source: Box::new(Error::BadSignature),
    })
}
