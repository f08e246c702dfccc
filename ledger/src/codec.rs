//! Canonical encoding: borsh behind a version byte, with bounded decoding.

/// No transaction may ever exceed this, whatever genesis says.
pub const TX_BYTES_HARD_MAX: u32 = 1024 * 1024;
/// No block may ever exceed this, whatever genesis says.
pub const BLOCK_BYTES_HARD_MAX: u32 = 64 * 1024 * 1024;
