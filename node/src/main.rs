//! `cradle-node`: the daemon each member institution runs (`run`), and what its operator does
//! with it besides: `check` a home before a start, `backup` it while it runs, `restore` it onto
//! a fresh machine.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cradle_genesis::Home;

#[derive(Parser)]
#[command(name = "cradle-node", version, about = "The Cradle member daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node whose config, genesis, key and data live in DIR. SIGTERM (or Ctrl-C) stops
    /// it gracefully: no new connections, transfers in flight finish (up to
    /// `shutdown_grace_ms`), the consensus driver stops between blocks.
    Run {
        #[arg(long)]
        home: PathBuf,
    },
    /// Validate DIR's key, genesis and config as a start would, and print the parameters the
    /// node would run with. Exit 0 if it would start, 1 with the reason if not.
    Check {
        #[arg(long)]
        home: PathBuf,
    },
    /// Back up the node of DIR into OUT (a new directory), while it runs (through its operator
    /// address, `api.metrics_listen`) or while it is stopped: a consistent copy of the ledger,
    /// every archive it holds (checked), its staff directory, config, genesis and key (keep the
    /// backup as safe as the key).
    Backup {
        #[arg(long)]
        home: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into DIR (a fresh home, or one without a ledger); the node then resumes
    /// from the backup's block and catches up from its peers.
    Restore {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        home: PathBuf,
    },
}
fn main() -> ExitCode {
    let cli = Cli::parse();
    let home = match cli.command {
        Command::Run { home } => home,
        Command::Check { home } => return check(&home),
        Command::Backup { home, out } => return backup(&home, &out),
        Command::Restore { from, home } => return restore(&from, &home),
    };
    let home = match Home::open(&home) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cradle-node: {e}");
            return ExitCode::from(1);
        }
    };
    match cradle_node::daemon::start(home) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cradle-node: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `cradle-node check`: the report, or the reason the node would not start.
fn check(dir: &std::path::Path) -> ExitCode {
    match Home::open(dir) {
        Ok(home) => {
            print!("{}", cradle_node::ops::check::report(&home));
            println!("ok: the node would start");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cradle-node: {e}");
            ExitCode::from(1)
        }
    }
}

/// `cradle-node backup`.
fn backup(dir: &std::path::Path, out: &std::path::Path) -> ExitCode {
    let result = Home::open(dir)
        .map_err(|e| e.to_string())
        .and_then(|home| cradle_node::ops::backup::backup(&home, out).map_err(|e| e.to_string()));
    match result {
        Ok(m) => {
            println!(
                "backed up {} at height {} ({} archive objects) into {}",
                m.member,
                m.height,
                m.archives.len(),
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cradle-node: backup: {e}");
            ExitCode::from(1)
        }
    }
}

/// `cradle-node restore`.
fn restore(from: &std::path::Path, dir: &std::path::Path) -> ExitCode {
    match cradle_node::ops::backup::restore(from, dir) {
        Ok(m) => {
            println!(
                "restored {} at height {} ({} archive objects) into {}: start it with \
                 `cradle-node run --home {}`",
                m.member,
                m.height,
                m.archives.len(),
                dir.display(),
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cradle-node: restore: {e}");
            ExitCode::from(1)
        }
    }
}
