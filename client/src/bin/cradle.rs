//! `cradle`: the command-line tool for members, patients and regulators.
//!
//! Exit codes: 0 success, 1 refused or failed (one-line reason on stderr), 2 bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;

use cradle_client::api::ApiClient;
use cradle_client::session::{Progress, Session};
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::tx::{Category, Purpose, Scope};
use cradle_ledger::{ArchiveId, GrantId, Keypair, PublicKey, X25519Public};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

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

/// Output of commands that can also export FHIR R4.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum RecordFormat {
    Table,
    Json,
    Fhir,
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
    /// Patients (a member enrols them by their public keys).
    #[command(subcommand)]
    Patient(PatientCommand),
    /// Encrypted archives: put one for a patient, get one you may read.
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// A patient's consent: grant, revoke, list.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// Who read what: a patient's, an archive's or an institution's access history, or every
    /// break-glass access; with --verify, checked from genesis without trusting the node.
    Audit(AuditArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("subject").required(true)))]
struct AuditArgs {
    /// A patient's history: her public key (hex) or public key file.
    #[arg(long, group = "subject")]
    patient: Option<String>,
    /// One archive's history.
    #[arg(long, group = "subject")]
    archive: Option<String>,
    /// What one institution accessed: its name in genesis or its public key.
    #[arg(long, group = "subject")]
    accessor: Option<String>,
    /// Every break-glass access.
    #[arg(long, group = "subject")]
    break_glass: bool,
    /// Only events from this time on (milliseconds since the Unix epoch, UTC).
    #[arg(long, requires = "to_ms")]
    from_ms: Option<u64>,
    /// Only events up to this time (inclusive).
    #[arg(long, requires = "from_ms")]
    to_ms: Option<u64>,
    /// Check the commit certificate, the state proof and completeness from genesis, and the
    /// log's consistency with the last checkpoint this client verified.
    #[arg(long, requires = "genesis")]
    verify: bool,
    /// The genesis document you trust (required with --verify).
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// Where the last verified checkpoint is kept (default ~/.cradle/checkpoint-CHAIN.json).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    format: RecordFormat,
}

#[derive(Subcommand)]
enum PatientCommand {
    /// Enrol a patient: PUBKEY is her public key file (`cradle keygen` wrote FILE.pub) or her
    /// ed25519 public key in hex with --x25519.
    Enrol {
        pubkey: String,
        /// Her X25519 public key in hex, when PUBKEY is given in hex.
        #[arg(long)]
        x25519: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
enum ArchiveCommand {
    /// Encrypt FILE here, upload it to your node and register it for the patient; prints the
    /// archive id.
    Put {
        file: PathBuf,
        /// The patient's public key (hex) or public key file.
        #[arg(long)]
        patient: String,
        /// prenatal-visit, ultrasound, lab-results, labour-and-delivery, postpartum,
        /// newborn-screening, immunization, referral or other.
        #[arg(long)]
        category: Category,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Fetch an archive from its custodian (the access is recorded on the ledger first),
    /// check it against the ledger and decrypt it into --out.
    Get {
        id: String,
        /// HL7 PurposeOfUse: TREAT, ETREAT, HRESCH, PUBHLTH, HOPERAT, HPAYMT, PATRQT, COC, ...
        #[arg(long)]
        purpose: Purpose,
        /// Why emergency (ETREAT) access is needed; required for break-glass.
        #[arg(long)]
        justification: Option<String>,
        #[arg(long)]
        out: PathBuf,
        /// The custodian's node, when it is not --node.
        #[arg(long)]
        custodian: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
enum ConsentCommand {
    /// Allow a member institution to read your archives; prints the grant id.
    Grant {
        /// The member's name as genesis lists it, or its public key in hex.
        #[arg(long)]
        grantee: String,
        /// Purposes, comma-separated (TREAT, ETREAT, HRESCH, ...).
        #[arg(long, value_delimiter = ',', required = true)]
        purpose: Vec<Purpose>,
        /// all, categories:ultrasound,lab-results, or archives:ID,ID
        #[arg(long, default_value = "all")]
        scope: String,
        /// How long the grant lasts: 30d, 12h, 15m or 90s.
        #[arg(long)]
        expires: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Withdraw a grant; it stops covering reads from the next block on.
    Revoke {
        grant: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Your grants (or a patient's, with --patient), active and past.
    List {
        #[arg(long)]
        patient: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: RecordFormat,
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

fn key(cli: &Cli) -> anyhow::Result<Keypair> {
    let Some(path) = &cli.key else {
        bail!("--key FILE is required for this command");
    };
    cradle_genesis::keyfile::read_key_file(path)
        .with_context(|| format!("reading the key {}", path.display()))
}

fn session(cli: &Cli) -> anyhow::Result<Session> {
    let Some(url) = &cli.node else {
        bail!("--node URL is required for this command");
    };
    Ok(Session::connect(url, key(cli)?)?)
}

/// A public identity from a key file or hex (with the X25519 key given separately).
fn public_identity(
    arg: &str,
    x25519: Option<&str>,
) -> anyhow::Result<(PublicKey, Option<X25519Public>)> {
    if let Ok(key) = PublicKey::from_hex(arg) {
        let x = x25519
            .map(X25519Public::from_hex)
            .transpose()
            .context("--x25519 must be 64 hex digits")?;
        return Ok((key, x));
    }
    let id = cradle_genesis::keyfile::read_public_identity(arg)
        .with_context(|| format!("{arg} is neither a public key in hex nor a readable key file"))?;
    Ok((id.public_key, Some(id.x25519_public)))
}

fn parse_duration_ms(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a duration like 30d, 12h, 15m or 90s"))?;
    let unit_ms: u64 = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1_000,
        _ => bail!("{s:?} is not a duration like 30d, 12h, 15m or 90s"),
    };
    n.checked_mul(unit_ms)
        .filter(|&ms| ms > 0)
        .with_context(|| format!("{s:?} is not a positive duration"))
}

fn parse_scope(s: &str) -> anyhow::Result<Scope> {
    if s == "all" {
        return Ok(Scope::All);
    }
    if let Some(list) = s.strip_prefix("categories:") {
        let cats = list
            .split(',')
            .map(|c| c.trim().parse::<Category>())
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Scope::Categories(BoundedVec::new(cats)?));
    }
    if let Some(list) = s.strip_prefix("archives:") {
        let ids = list
            .split(',')
            .map(|c| ArchiveId::from_hex(c.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Scope::Archives(BoundedVec::new(ids)?));
    }
    bail!("--scope must be all, categories:CAT,CAT or archives:ID,ID")
}

/// An indicatif bar on stderr, shown only when stdout is a terminal and the transfer is big.
struct Bar(std::cell::RefCell<Option<ProgressBar>>);

/// Transfers smaller than this show no bar.
const BAR_BYTES_MIN: u64 = 8 * 1024 * 1024;

impl Bar {
    fn new() -> Self {
        Self(std::cell::RefCell::new(None))
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, total: u64) {
        if !std::io::stdout().is_terminal() || total < BAR_BYTES_MIN {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        *self.0.borrow_mut() = Some(bar);
    }
    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.0.borrow().as_ref() {
            bar.inc(bytes);
        }
    }
    fn finish(&self) {
        if let Some(bar) = self.0.borrow_mut().take() {
            bar.finish_and_clear();
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
        Command::Patient(PatientCommand::Enrol {
            pubkey,
            x25519,
            format,
        }) => {
            let (patient, x) = public_identity(pubkey, x25519.as_deref())?;
            let x = x.context("give the patient's X25519 key with --x25519, or her .pub file")?;
            let r = session(&cli)?.enrol_patient(patient, x)?;
            emit(
                *format,
                &json!({ "patient": patient, "tx": r.hash, "height": r.height }),
                &patient.to_hex(),
            )?;
        }
        Command::Archive(ArchiveCommand::Put {
            file,
            patient,
            category,
            format,
        }) => {
            let (patient, _) = public_identity(patient, None)?;
            let r = session(&cli)?.put_archive(file, patient, *category, &Bar::new())?;
            emit(
                *format,
                &json!({
                    "archive": r.archive,
                    "ciphertext_sha256": hex::encode(r.ciphertext_sha256),
                    "ciphertext_bytes": r.ciphertext_bytes,
                    "plaintext_bytes": r.plaintext_bytes,
                    "grants_covered": r.grants_covered,
                    "tx": r.tx.hash,
                    "height": r.tx.height,
                }),
                &r.archive.to_hex(),
            )?;
        }
        Command::Archive(ArchiveCommand::Get {
            id,
            purpose,
            justification,
            out,
            custodian,
            format,
        }) => {
            let id = ArchiveId::from_hex(id).context("the archive id must be 64 hex digits")?;
            let mut s = session(&cli)?;
            if let Some(url) = custodian {
                s.api = ApiClient::new(url);
            }
            let r = s.get_archive(id, *purpose, justification.as_deref(), out, &Bar::new())?;
            emit(
                *format,
                &json!({
                    "archive": id,
                    "out": out,
                    "plaintext_bytes": r.plaintext_bytes,
                    "outcome": r.outcome,
                    "access_tx": r.access_tx,
                }),
                &format!(
                    "{} bytes written to {} ({}, access recorded in {})",
                    r.plaintext_bytes,
                    out.display(),
                    r.outcome,
                    r.access_tx
                ),
            )?;
        }
        Command::Consent(ConsentCommand::Grant {
            grantee,
            purpose,
            scope,
            expires,
            format,
        }) => {
            let s = session(&cli)?;
            let member = s.member(grantee)?;
            let now = cradle_client::session::now_ms();
            let expires_at = now + parse_duration_ms(expires)?;
            let (id, r) = s.grant(
                &member,
                parse_scope(scope)?,
                purpose.clone(),
                now,
                expires_at,
            )?;
            emit(
                *format,
                &json!({
                    "grant": id,
                    "grantee": member.name,
                    "expires_at_ms": expires_at,
                    "tx": r.hash,
                    "height": r.height,
                }),
                &id.to_hex(),
            )?;
        }
        Command::Consent(ConsentCommand::Revoke { grant, format }) => {
            let id = GrantId::from_hex(grant).context("the grant id must be 64 hex digits")?;
            let r = session(&cli)?.revoke(id)?;
            emit(
                *format,
                &json!({ "grant": id, "tx": r.hash, "height": r.height }),
                &format!("revoked {} at height {}", id.to_hex(), r.height),
            )?;
        }
        Command::Consent(ConsentCommand::List { patient, format }) => {
            let s = session(&cli)?;
            let patient = match patient {
                Some(p) => public_identity(p, None)?.0,
                None => s.key.public_key(),
            };
            let grants = s.grants(&patient)?;
            let now = cradle_client::session::now_ms();
            match format {
                RecordFormat::Fhir => {
                    let consortium = node_consortium(&s.api)?;
                    let pairs: Vec<_> = grants.iter().map(|(id, g, _)| (*id, g.clone())).collect();
                    let bundle =
                        cradle_client::fhir::consent_resources(&patient, &pairs, &consortium, now);
                    println!("{}", serde_json::to_string_pretty(&bundle)?);
                }
                RecordFormat::Json => {
                    let items: Vec<_> = grants
                        .iter()
                        .map(|(id, g, name)| {
                            json!({
                                "grant": id,
                                "grantee": g.grantee,
                                "grantee_name": name,
                                "scope": g.scope,
                                "purposes": g.purposes,
                                "valid_from_ms": g.valid_from_ms,
                                "expires_at_ms": g.expires_at_ms,
                                "revoked_at_ms": g.revoked_at_ms,
                                "status": grant_status(g, now),
                            })
                        })
                        .collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &json!({ "patient": patient, "grants": items })
                        )?
                    );
                }
                RecordFormat::Table => {
                    println!(
                        "{:<64}  {:<28}  {:<16}  {:<9}  {:<24}  scope",
                        "grant", "grantee", "purposes", "status", "expires (UTC)"
                    );
                    for (id, g, name) in &grants {
                        let purposes = g
                            .purposes
                            .iter()
                            .map(|p| p.code())
                            .collect::<Vec<_>>()
                            .join(",");
                        println!(
                            "{:<64}  {:<28}  {:<16}  {:<9}  {:<24}  {}",
                            id.to_hex(),
                            name.clone()
                                .unwrap_or_else(|| g.grantee.to_hex()[..16].to_string()),
                            purposes,
                            grant_status(g, now),
                            cradle_client::fhir::instant(g.expires_at_ms),
                            scope_text(&g.scope),
                        );
                    }
                }
            }
        }
        Command::Audit(args) => audit(&cli, args)?,
    }
    Ok(())
}

/// The consortium as the node's genesis describes it (for names; a verifying client uses
/// its own genesis file instead).
fn node_consortium(api: &ApiClient) -> anyhow::Result<cradle_ledger::Consortium> {
    let v = api.get_json("/v1/genesis")?;
    let doc: cradle_genesis::GenesisDoc =
        serde_json::from_value(v).context("the node's genesis document")?;
    Ok(doc.consortium()?)
}

fn audit(cli: &Cli, args: &AuditArgs) -> anyhow::Result<()> {
    use cradle_client::audit as a;
    use cradle_ledger::audit::{AuditEvents, AuditSubject, IndexedEvent};

    let api = node(cli)?;
    // Audit requests are signed: the node answers only whom the history concerns, or a
    // regulator.
    let me = key(cli)?;
    let consortium = match &args.genesis {
        Some(path) => a::load_genesis(path)?,
        None => node_consortium(&api)?,
    };
    let subject = if let Some(p) = &args.patient {
        AuditSubject::Patient(public_identity(p, None)?.0)
    } else if let Some(id) = &args.archive {
        AuditSubject::Archive(
            ArchiveId::from_hex(id).context("the archive id must be 64 hex digits")?,
        )
    } else if let Some(m) = &args.accessor {
        let key = consortium
            .members
            .iter()
            .find(|x| x.name == *m)
            .map(|x| x.public_key)
            .map_or_else(|| PublicKey::from_hex(m), Ok)
            .with_context(|| format!("{m:?} is neither a member's name nor a public key"))?;
        AuditSubject::Accessor(key)
    } else {
        AuditSubject::BreakGlass
    };
    let range = args.from_ms.zip(args.to_ms);
    let (events, verified): (
        Vec<IndexedEvent>,
        Option<cradle_ledger::audit::VerifiedAudit>,
    ) = if args.verify {
        let checkpoint = match &args.checkpoint {
            Some(p) => p.clone(),
            None => default_checkpoint(&consortium)?,
        };
        let v = a::audit_verified(&api, &me, &consortium, &checkpoint, &subject, range)?;
        (v.events.clone(), Some(v))
    } else {
        let answer = a::fetch_audit(&api, &me, &consortium.chain_id, &subject, range)?;
        let events = match answer.events {
            AuditEvents::Whole(list) => list
                .into_inner()
                .into_iter()
                .enumerate()
                .map(|(i, event)| IndexedEvent {
                    index: i as u64,
                    event,
                })
                .collect(),
            AuditEvents::Range {
                from_ms,
                to_ms,
                events,
                ..
            } => events
                .into_inner()
                .into_iter()
                .filter(|e| (from_ms..=to_ms).contains(&e.event.time_ms))
                .collect(),
        };
        (events, None)
    };
    match args.format {
        RecordFormat::Table => {
            print!("{}", a::render_table(&events, &consortium));
            match &verified {
                Some(v) => println!(
                    "verified: {} events, complete at height {} (log root {}), certificate and proofs checked from genesis",
                    events.len(),
                    v.height,
                    hex::encode(v.log_root),
                ),
                None => println!(
                    "{} events (not verified: add --verify --genesis FILE)",
                    events.len()
                ),
            }
        }
        RecordFormat::Json => match &verified {
            Some(v) => println!("{}", a::render_json(v, &consortium)),
            None => {
                let items: Vec<_> = events
                    .iter()
                    .map(|ie| json!({ "index": ie.index, "event": ie.event }))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "verified": false, "events": items }))?
                );
            }
        },
        RecordFormat::Fhir => {
            let bundle = cradle_client::fhir::audit_bundle(
                &events,
                &consortium,
                &hex::encode(consortium.chain_id),
            );
            println!("{}", serde_json::to_string_pretty(&bundle)?);
        }
    }
    Ok(())
}

/// `~/.cradle/checkpoint-<chain id prefix>.json`, its directory created.
fn default_checkpoint(consortium: &cradle_ledger::Consortium) -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set: give --checkpoint FILE")?;
    let dir = PathBuf::from(home).join(".cradle");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.join(format!(
        "checkpoint-{}.json",
        &hex::encode(consortium.chain_id)[..16]
    )))
}

fn grant_status(g: &cradle_ledger::state::GrantRecord, now: u64) -> &'static str {
    if g.revoked_at_ms.is_some() {
        "revoked"
    } else if now >= g.expires_at_ms {
        "expired"
    } else if now < g.valid_from_ms {
        "pending"
    } else {
        "active"
    }
}

fn scope_text(s: &Scope) -> String {
    match s {
        Scope::All => "all".into(),
        Scope::Categories(c) => format!(
            "categories:{}",
            c.iter().map(|c| c.code()).collect::<Vec<_>>().join(",")
        ),
        Scope::Archives(a) => format!("archives:{}", a.len()),
    }
}

/// Prints `v` as JSON, or the one-line `table` text.
fn emit(format: Format, v: &Value, table: &str) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(v)?),
        Format::Table => println!("{table}"),
    }
    Ok(())
}
