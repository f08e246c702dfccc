//! What an operator does with a node besides running it: check its home before a start
//! ([`check`]), back it up while it runs and restore it onto a fresh machine ([`backup`]).

pub mod backup;
pub mod check;
