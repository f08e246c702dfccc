//! `cradle`: the command-line tool for members, patients and regulators.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("usage: cradle --node URL --key FILE <command>");
    eprintln!("cradle: client commands are not built yet in this version of Cradle");
    ExitCode::from(2)
}
