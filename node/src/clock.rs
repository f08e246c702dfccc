//! The wall clock the node reads for block times, request freshness and nonces: the workspace's
//! one clock, [`cradle_genesis::clock`].

pub use cradle_genesis::clock::{now_ms, now_us};
