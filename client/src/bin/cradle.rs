//! `cradle`: the command-line tool for members, patients and regulators.
//!
//! Exit codes: 0 success, 1 refused or failed (one-line reason on stderr), 2 bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use cradle_client::api::ApiClient;
use serde_json::Value;

#[derive(Parser)]
#[command(
    name = "cradle",
    version,
    about = "Cradle: consent-based maternal health records"
)]
struct Cli {
    /// The node's API URL, e.g. http://127.0.0.1:26601.
    #[arg(long, global = true)]
    node: Option<String>,
    /// Your key file (a member's, a patient's or a clinician's).
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Write a new key (a patient's or clinician's) and print its public key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// The node's view of the chain: height, last block, state root, peers.
    Status {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// A committed block's header.
    Block {
        height: u64,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cradle: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

fn node(cli: &Cli) -> anyhow::Result<ApiClient> {
    match &cli.node {
        Some(url) => Ok(ApiClient::new(url)),
        None => bail!("--node URL is required for this command"),
    }
}

fn print_object(v: &Value, format: Format, fields: &[&str]) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(v)?),
        Format::Table => {
            for f in fields {
                let value = match v.get(*f) {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => continue,
                };
                println!("{f:<16} {value}");
            }
        }
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Keygen { out } => {
            let key = cradle_ledger::Keypair::generate().context("generating a key")?;
            cradle_genesis::keyfile::write_key_file(out, &key)
                .with_context(|| format!("writing {}", out.display()))?;
            println!("public_key {}", key.public_key());
            println!("x25519_public {}", key.x25519_public());
        }
        Command::Status { format } => {
            let v = node(&cli)?.status()?;
            print_object(
                &v,
                *format,
                &[
                    "member",
                    "chain_id",
                    "height",
                    "block_hash",
                    "time_ms",
                    "state_root",
                    "access_log_size",
                    "access_log_root",
                    "round",
                    "peers",
                    "mempool_txs",
                ],
            )?;
        }
        Command::Block { height, format } => {
            let v = node(&cli)?.block(*height)?;
            print_object(
                &v,
                *format,
                &[
                    "height",
                    "hash",
                    "time_ms",
                    "prev_hash",
                    "proposer",
                    "tx_count",
                    "tx_root",
                    "state_root",
                    "access_log_size",
                    "access_log_root",
                ],
            )?;
        }
    }
    Ok(())
}
