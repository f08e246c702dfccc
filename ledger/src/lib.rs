//! `cradle-ledger`: what the consortium records and the rules for it.
pub mod merkle;
