//! Signed transactions a member or patient would submit.

use std::sync::atomic::{AtomicU64, Ordering};

use cradle_ledger::tx::{EnrolPatient, Transaction, TxBody};
use cradle_ledger::{Hash, Keypair};

/// Nonces only have to grow: microseconds since the epoch, made unique per process.
pub fn fresh_nonce() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = cradle_genesis::clock::now_us();
    let mut prev = LAST.load(Ordering::SeqCst);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// A patient identity derived from a number, so tests can name many.
pub fn patient(i: u64) -> Keypair {
    let mut seed = [0x5au8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(&seed)
}

/// Encoded enrolment of `patient` by `member`.
pub fn enrol(chain_id: Hash, member: &Keypair, patient: &Keypair) -> Vec<u8> {
    Transaction {
        chain_id,
        signer: member.public_key(),
        nonce: fresh_nonce(),
        body: TxBody::EnrolPatient(EnrolPatient::prove(patient, &chain_id)),
    }
    .sign(member)
    .encode()
}
