//! `cradle-testkit`: the fixtures that several crates' tests share, defined once.
//!
//! - [`consortium`]: seeded keys, the four-member test consortium (two hospitals, a clinic and
//!   a regulator), patient keys, placeholder wrapped keys;
//! - [`records`]: synthetic access events and grant records, for code that renders or checks
//!   them without running the ledger's rules.
//!
//! Every key comes from a fixed seed, so a failing test names the same identities on every run.
//! This crate is a dev-dependency only. It may depend on the ledger, genesis and consensus
//! crates, never on the node or the client, which test with it.

pub mod consortium;
pub mod records;

pub use consortium::{
    DAY_MS, GENESIS_MS, TestConsortium, member, outsider_key, patient_key, seeded_key, wrapped,
};
pub use records::{EVENT_ARCHIVE, access_event, grant_record};
