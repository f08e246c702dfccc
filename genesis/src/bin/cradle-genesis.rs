//! `cradle-genesis`: make member keys, found a consortium, write a loopback localnet, and check
//! genesis documents.
//!
//! Exit codes: 0 success; 1 refused or failed, with a one-line reason on stderr; 2 bad usage.
//! Secrets are never printed: `keygen` prints only the public keys.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use cradle_genesis::clock::now_ms;
use cradle_genesis::localnet::{LocalnetOptions, write_localnet};
use cradle_genesis::{
    ConsensusParams, GenesisDoc, GenesisError, GenesisMember, Home, PublicIdentity,
    read_public_identity, write_key_file,
};
use cradle_ledger::{Keypair, Limits, Policy, PublicKey, Role, X25519Public};
use zeroize::Zeroizing;

#[derive(Parser, Debug)]
#[command(
    name = "cradle-genesis",
    version,
    about = "Cradle consortium keys and genesis"
)]
struct Cli {
    /// Log informational messages to stderr (warnings are always shown).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a member key file (mode 0600) and FILE.pub; prints the public keys.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// Derive the key from this 32-byte hex seed (reproducible test keys only: the seed is
        /// the secret, and a command line is visible to other users).
        #[arg(long)]
        seed_hex: Option<String>,
    },
    /// Write the home of a member that joins by a governance vote: genesis, its key, and a
    /// config that says it joins. Its node catches up from genesis once the vote admits it.
    Join(cradle_genesis::join::JoinOptions),
    /// Install a member's new key in its node's home once a vote rotated its key to it: the
    /// key it replaces moves to the home's key ring (archive keys wrapped for it stay
    /// readable). Stop the node first, and start it again after.
    RotateKey {
        #[arg(long)]
        home: PathBuf,
        /// The new key file (the one `cradle governance propose rotate-key` was given).
        #[arg(long)]
        key: PathBuf,
    },
    /// Write a genesis document from member keys, roles, names and addresses.
    New(NewArgs),
    /// Write a whole loopback consortium: genesis, node homes and a regulator key.
    Localnet {
        /// Validating members (node homes), 1..=64.
        #[arg(long)]
        members: usize,
        #[arg(long)]
        out: PathBuf,
        /// Keys from fixed seeds and a fixed genesis time: identical output on every run.
        #[arg(long)]
        deterministic: bool,
        /// Node i uses p2p port BASE+2i and api port BASE+2i+1.
        #[arg(long, default_value_t = 26600)]
        base_port: u16,
        #[arg(long)]
        no_break_glass: bool,
        #[arg(long, default_value = "cradle-localnet")]
        chain_name: String,
        /// Node i listens (peers and API) on the i-th of these IPv4 addresses instead of
        /// 127.0.0.1: one per member, comma-separated (for nodes in network namespaces).
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<std::net::Ipv4Addr>,
    },
    /// Print a genesis document's chain id and members.
    Show {
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Check a genesis document and print every problem.
    Validate {
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Check a node home (config, genesis and key agree) without starting the node.
    CheckHome {
        #[arg(long)]
        home: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct NewArgs {
    #[arg(long)]
    chain_name: String,
    /// "name=County Hospital,role=hospital,key=PATH,p2p=/ip4/127.0.0.1/tcp/26600,
    /// api=127.0.0.1:8600[,power=1]"; key=PATH (a .pub or key file) or pubkey=HEX,x25519=HEX.
    /// Power defaults to 1 for hospitals and clinics, 0 for regulators. Repeat per member.
    #[arg(long = "member", required = true, value_parser = parse_member_spec)]
    members: Vec<MemberSpec>,
    /// Milliseconds since the Unix epoch; defaults to now.
    #[arg(long)]
    genesis_time_ms: Option<u64>,
    #[arg(long, value_enum, default_value_t = BreakGlass::Allow)]
    break_glass: BreakGlass,
    /// The clinicians' roles that may break the glass, comma-separated (default
    /// emergency-physician,obstetrician).
    #[arg(long, value_delimiter = ',')]
    break_glass_roles: Option<Vec<cradle_ledger::staff::StaffRole>>,
    #[arg(long)]
    timeout_propose_ms: Option<u64>,
    #[arg(long)]
    timeout_prevote_ms: Option<u64>,
    #[arg(long)]
    timeout_precommit_ms: Option<u64>,
    #[arg(long)]
    timeout_delta_ms: Option<u64>,
    /// How long the first pending transaction waits for others to share its block.
    #[arg(long)]
    batch_window_ms: Option<u64>,
    /// Longest time between blocks while no transaction is pending.
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing file at --out.
    #[arg(long)]
    force: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BreakGlass {
    Allow,
    Deny,
}

#[derive(Clone, Debug)]
enum KeySource {
    File(PathBuf),
    Hex(PublicIdentity),
}

#[derive(Clone, Debug)]
struct MemberSpec {
    name: String,
    role: Role,
    key: KeySource,
    p2p: Option<String>,
    api: Option<String>,
    power: Option<u64>,
}

/// Parses one `--member` value; a bad one is a usage error (exit 2).
fn parse_member_spec(s: &str) -> Result<MemberSpec, String> {
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not key=value"))?;
        let (k, v) = (k.trim(), v.trim());
        if fields.iter().any(|(seen, _)| *seen == k) {
            return Err(format!("{k} given twice"));
        }
        if ![
            "name", "role", "key", "pubkey", "x25519", "p2p", "api", "power",
        ]
        .contains(&k)
        {
            return Err(format!(
                "unknown field {k:?}: want name, role, key or pubkey+x25519, p2p, api, power"
            ));
        }
        fields.push((k, v));
    }
    let get = |k: &str| fields.iter().find(|(f, _)| *f == k).map(|(_, v)| *v);
    let name = get("name").ok_or("missing name=")?.to_string();
    let role: Role = get("role")
        .ok_or("missing role=")?
        .parse()
        .map_err(|e| format!("{e}"))?;
    let key = match (get("key"), get("pubkey"), get("x25519")) {
        (Some(path), None, None) => KeySource::File(PathBuf::from(path)),
        (None, Some(pk), Some(x)) => KeySource::Hex(PublicIdentity {
            public_key: PublicKey::from_hex(pk).map_err(|e| format!("pubkey: {e}"))?,
            x25519_public: X25519Public::from_hex(x).map_err(|e| format!("x25519: {e}"))?,
        }),
        _ => return Err("give either key=PATH or both pubkey=HEX and x25519=HEX".into()),
    };
    let power = get("power")
        .map(|p| p.parse::<u64>().map_err(|_| format!("bad power {p:?}")))
        .transpose()?;
    Ok(MemberSpec {
        name,
        role,
        key,
        p2p: get("p2p").map(str::to_string),
        api: get("api").map(str::to_string),
        power,
    })
}

fn keygen(out: &Path, seed_hex: Option<&str>) -> Result<()> {
    let keypair = match seed_hex {
        Some(hex_seed) => {
            let mut seed = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(hex_seed.trim(), seed.as_mut())
                .map_err(|_| anyhow!("--seed-hex must be 32 bytes of hex"))?;
            Keypair::from_seed(&seed)
        }
        None => Keypair::generate().context("generating a key")?,
    };
    write_key_file(out, &keypair)?;
    println!("public_key {}", keypair.public_key());
    println!("x25519_public {}", keypair.x25519_public());
    Ok(())
}

fn new_genesis(args: NewArgs) -> Result<()> {
    if !args.force && args.out.exists() {
        bail!(
            "{}: already exists; pass --force to replace it",
            args.out.display()
        );
    }
    let mut members = Vec::with_capacity(args.members.len());
    for spec in args.members {
        let identity = match &spec.key {
            KeySource::File(path) => {
                read_public_identity(path).with_context(|| format!("member {:?}", spec.name))?
            }
            KeySource::Hex(identity) => *identity,
        };
        let default_power = if spec.role == Role::Regulator { 0 } else { 1 };
        members.push(GenesisMember {
            name: spec.name,
            role: spec.role,
            public_key: identity.public_key,
            x25519: identity.x25519_public,
            voting_power: spec.power.unwrap_or(default_power),
            p2p_addr: spec.p2p,
            api_addr: spec.api,
        });
    }
    let mut consensus = ConsensusParams::default();
    let overrides = [
        (
            args.timeout_propose_ms,
            &mut consensus.timeouts.timeout_propose_ms,
        ),
        (
            args.timeout_prevote_ms,
            &mut consensus.timeouts.timeout_prevote_ms,
        ),
        (
            args.timeout_precommit_ms,
            &mut consensus.timeouts.timeout_precommit_ms,
        ),
        (
            args.timeout_delta_ms,
            &mut consensus.timeouts.timeout_delta_ms,
        ),
        (args.batch_window_ms, &mut consensus.pacing.batch_window_ms),
        (args.heartbeat_ms, &mut consensus.pacing.heartbeat_ms),
    ];
    for (value, field) in overrides {
        if let Some(v) = value {
            *field = v;
        }
    }
    let doc = GenesisDoc {
        chain_name: args.chain_name,
        genesis_time_ms: args.genesis_time_ms.unwrap_or_else(now_ms),
        members,
        consensus,
        policy: Policy {
            break_glass_allowed: matches!(args.break_glass, BreakGlass::Allow),
            break_glass_roles: args
                .break_glass_roles
                .unwrap_or_else(cradle_ledger::identity::default_break_glass_roles),
            ..Policy::default()
        },
        limits: Limits::default(),
    };
    doc.validate().map_err(GenesisError::Invalid)?;
    doc.save(&args.out)?;
    println!("{}", doc.chain_id_hex());
    Ok(())
}

fn localnet(opts: &LocalnetOptions) -> Result<()> {
    let net = write_localnet(opts)?;
    let nodes = net.members.iter().filter(|m| m.home.is_some()).count();
    println!(
        "wrote a consortium of {nodes} nodes and a regulator to {}",
        opts.out.display()
    );
    println!("chain id   {}", hex::encode(net.chain_id));
    println!("genesis    {}", net.genesis_path.display());
    for m in &net.members {
        let place = match (&m.home, &m.api_url) {
            (Some(home), Some(url)) => format!("home {}  api {url}", home.display()),
            _ => format!("key {}", m.key_path.display()),
        };
        println!("  {:<28} {:<9} {place}", m.name, m.role.as_str());
    }
    if let Some(home) = net.members.first().and_then(|m| m.home.as_ref()) {
        println!("start a node: cradle-node run --home {}", home.display());
    }
    Ok(())
}

fn show(path: &Path) -> Result<()> {
    let doc = GenesisDoc::load(path)?;
    println!("chain id      {}", doc.chain_id_hex());
    println!("chain name    {}", doc.chain_name);
    println!("genesis time  {} ms", doc.genesis_time_ms);
    println!(
        "break glass   {}",
        if doc.policy.break_glass_allowed {
            "allowed"
        } else {
            "denied"
        }
    );
    let roles: Vec<&str> = doc
        .policy
        .break_glass_roles
        .iter()
        .map(|r| r.code())
        .collect();
    println!("glass roles   {}", roles.join(", "));
    println!("members       {}", doc.members.len());
    for m in &doc.members {
        println!(
            "  {:<28} {:<9} power {:<3} {}  p2p {}  api {}",
            m.name,
            m.role.as_str(),
            m.voting_power,
            m.public_key,
            m.p2p_addr.as_deref().unwrap_or("-"),
            m.api_addr.as_deref().unwrap_or("-"),
        );
    }
    Ok(())
}

fn validate(path: &Path) -> Result<()> {
    let doc = GenesisDoc::load_unvalidated(path)?;
    match doc.validate() {
        Ok(()) => {
            println!("ok {}", doc.chain_id_hex());
            Ok(())
        }
        Err(errs) => {
            for e in &errs {
                println!("problem: {e}");
            }
            bail!("{}: genesis has {} problem(s)", path.display(), errs.len())
        }
    }
}

fn check_home(dir: &Path) -> Result<()> {
    let home = Home::open(dir)?;
    match home.member() {
        Some(m) => println!("member     {} ({})", m.name, m.role.as_str()),
        None => println!("member     {} (joining)", home.member_name()),
    }
    println!("public key {}", home.keypair.public_key());
    println!("chain id   {}", hex::encode(home.chain_id));
    println!("data dir   {}", home.data_dir().display());
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keygen { out, seed_hex } => keygen(&out, seed_hex.as_deref()),
        Command::New(args) => new_genesis(args),
        Command::Localnet {
            members,
            out,
            deterministic,
            base_port,
            no_break_glass,
            chain_name,
            hosts,
        } => localnet(&LocalnetOptions {
            deterministic,
            base_port,
            break_glass_allowed: !no_break_glass,
            chain_name,
            hosts,
            ..LocalnetOptions::new(members, out)
        }),
        Command::Show { genesis } => show(&genesis),
        Command::Validate { genesis } => validate(&genesis),
        Command::CheckHome { home } => check_home(&home),
        Command::RotateKey { home, key } => {
            let home = cradle_genesis::home::rotate_key(&home, &key)?;
            println!("home          {}", home.dir.display());
            println!("member        {}", home.member_name());
            println!("public key    {}", home.keypair.public_key());
            println!("earlier keys  {}", home.earlier_keys.len());
            Ok(())
        }
        Command::Join(opts) => {
            let home = cradle_genesis::join::write_join_home(&opts)?;
            println!("home          {}", home.dir.display());
            println!("member        {} (joining)", home.member_name());
            println!("public key    {}", home.keypair.public_key());
            println!("chain id      {}", hex::encode(home.chain_id));
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(if cli.verbose {
            tracing::Level::INFO
        } else {
            tracing::Level::WARN
        })
        .with_target(false)
        .without_time()
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the error chain holds.
            let reason = format!("{e:#}").replace('\n', " ");
            eprintln!("cradle-genesis: {reason}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_spec_parses_key_file_and_hex_forms() {
        let m = parse_member_spec(
            "name=County Hospital,role=hospital,key=a.pub,p2p=/ip4/127.0.0.1/tcp/26600,api=127.0.0.1:8600",
        )
        .unwrap();
        assert_eq!(m.name, "County Hospital");
        assert_eq!(m.role, Role::Hospital);
        assert!(matches!(m.key, KeySource::File(ref p) if p == Path::new("a.pub")));
        assert_eq!(m.power, None);
        assert_eq!(m.api.as_deref(), Some("127.0.0.1:8600"));

        let kp = Keypair::from_seed(&[1; 32]);
        let spec = format!(
            "name=R,role=regulator,pubkey={},x25519={},power=0",
            kp.public_key(),
            kp.x25519_public()
        );
        let m = parse_member_spec(&spec).unwrap();
        assert!(matches!(m.key, KeySource::Hex(id) if id.public_key == kp.public_key()));
        assert_eq!(m.power, Some(0));
    }

    #[test]
    fn member_spec_rejects_bad_forms() {
        for bad in [
            "name=A",
            "name=A,role=hospital",
            "name=A,role=nurse,key=k",
            "name=A,role=clinic,key=k,key=j",
            "name=A,role=clinic,key=k,pubkey=00",
            "name=A,role=clinic,key=k,colour=blue",
            "name=A,role=clinic,key=k,power=-1",
            "name=A,role=clinic,pubkey=zz,x25519=zz",
            "name=A,role=clinic,key",
        ] {
            assert!(parse_member_spec(bad).is_err(), "accepted {bad:?}");
        }
    }
}
