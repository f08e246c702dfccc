//! `cradle-node`: the daemon each member institution runs.
//!
//! The networking, storage and consensus driver arrive with the node issue; until then the binary
//! only explains itself.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("usage: cradle-node run --home DIR");
    eprintln!("cradle-node: the node daemon is not built yet in this version of Cradle");
    ExitCode::from(2)
}
