//! Following the member sets from genesis, as a light client does.

use borsh::{BorshDeserialize, BorshSerialize};
use cradle_consensus::CommitCertificate;

use crate::block::{BlockHeader, verify_header_certificate};
use crate::codec::BoundedVec;
use crate::crypto::Hash;
use crate::error::Error;
use crate::identity::{Consortium, MemberSet};

/// Most set changes one answer carries.
pub const SET_CHANGES_MAX: usize = 10_000;

/// One adopted set as a node serves it: the set, and the certified header of the height before
/// its first, which names it as the next height's set.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SetChange {
    pub set: MemberSet,
    pub header: BlockHeader,
    pub certificate: CommitCertificate,
}

/// Every set change since genesis, oldest first.
pub type SetChanges = BoundedVec<SetChange, SET_CHANGES_MAX>;

/// What a verifier trusts to check a certified header with.
pub trait HeaderTrust {
    /// The chain the verifier trusts.
    fn chain_id(&self) -> Hash;

    /// Checks that `certificate` finalises `header` under the set in force at its height, and
    /// that the header names, for the next height, the set this verifier knows there: a header
    /// after a change the verifier has not followed is refused, never judged by an old set.
    fn check_header(
        &self,
        header: &BlockHeader,
        certificate: &CommitCertificate,
    ) -> Result<(), Error>;
}

/// A verifier that knows one set only (genesis, for a client that follows no changes): it
/// checks headers up to the first change and refuses the ones after it.
impl HeaderTrust for Consortium {
    fn chain_id(&self) -> Hash {
        self.chain_id
    }

    fn check_header(
        &self,
        header: &BlockHeader,
        certificate: &CommitCertificate,
    ) -> Result<(), Error> {
        verify_header_certificate(header, certificate, self)?;
        if header.next_members_hash.0 != self.members_hash() {
            return Err(Error::UnfollowedSetChange {
                height: header.height,
            });
        }
        Ok(())
    }
}

/// The sets of a chain from genesis, each from the height it takes effect at, every one after
/// genesis proven by a certified header of the set before it.
#[derive(Clone, Debug)]
pub struct Sets {
    /// `(first height, set)`, in height order; genesis first, at height 1.
    sets: Vec<(u64, Consortium)>,
}

impl Sets {
    pub fn new(genesis: Consortium) -> Self {
        Self {
            sets: vec![(1, genesis)],
        }
    }

    /// Follows `changes` in order; see [`Sets::follow`].
    pub fn following(genesis: Consortium, changes: &[SetChange]) -> Result<Self, Error> {
        let mut sets = Self::new(genesis);
        for change in changes {
            sets.follow(change)?;
        }
        Ok(sets)
    }

    /// Takes up the next set after checking its proof: the header is certified by the set in
    /// force at its height (the newest one known), names the new set as the next height's, and
    /// the set is the next epoch.
    pub fn follow(&mut self, change: &SetChange) -> Result<(), Error> {
        let header = &change.header;
        let (last_first, prev) = self.newest();
        let first = header.height.saturating_add(1);
        if header.height < *last_first || change.set.epoch != prev.epoch.saturating_add(1) {
            return Err(Error::SetChangeOutOfOrder {
                height: header.height,
                epoch: change.set.epoch,
            });
        }
        verify_header_certificate(header, &change.certificate, prev)?;
        if header.next_members_hash.0 != change.set.hash() {
            return Err(Error::HeaderMismatch("next_members_hash"));
        }
        let next = prev.with_set(change.set.clone())?;
        self.sets.push((first, next));
        Ok(())
    }

    /// The set in force at `height`.
    pub fn at(&self, height: u64) -> &Consortium {
        let i = self
            .sets
            .partition_point(|(first, _)| *first <= height.max(1));
        // The first entry starts at height 1, so `i` is at least 1.
        &self.sets[i.saturating_sub(1)].1
    }

    /// The newest set known, and its first height.
    fn newest(&self) -> (&u64, &Consortium) {
        let (first, c) = &self.sets[self.sets.len() - 1];
        (first, c)
    }

    /// The newest set known.
    pub fn latest(&self) -> &Consortium {
        self.newest().1
    }
}

impl HeaderTrust for Sets {
    fn chain_id(&self) -> Hash {
        self.latest().chain_id
    }

    fn check_header(
        &self,
        header: &BlockHeader,
        certificate: &CommitCertificate,
    ) -> Result<(), Error> {
        verify_header_certificate(header, certificate, self.at(header.height))?;
        let next = self.at(header.height.saturating_add(1));
        if header.next_members_hash.0 != next.members_hash() {
            return Err(Error::UnfollowedSetChange {
                height: header.height,
            });
        }
        Ok(())
    }
}
