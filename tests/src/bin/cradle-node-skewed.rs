//! `cradle-node run` with a wrong clock, for the clock-fault tests only:
//! `cradle-node-skewed OFFSET_MS --home DIR` runs the member daemon of DIR exactly as
//! `cradle-node run --home DIR` would, with every read of its clock OFFSET_MS milliseconds
//! ahead (behind, if negative) of the machine's.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (offset, home) = match args.as_slice() {
        [offset, flag, home] if flag == "--home" => match offset.parse::<i64>() {
            Ok(ms) => (ms, home),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    cradle_genesis::clock::skew_for_tests(offset);
    let home = match cradle_genesis::Home::open(home) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cradle-node-skewed: {e}");
            return ExitCode::from(1);
        }
    };
    match cradle_node::daemon::start(home) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cradle-node-skewed: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: cradle-node-skewed OFFSET_MS --home DIR");
    ExitCode::from(2)
}
