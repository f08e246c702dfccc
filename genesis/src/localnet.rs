//! A whole loopback consortium in one step, for development and black-box tests.
//!
//! ```text
//! OUT/
//!   genesis.json
//!   node0/ .. node{N-1}/        one home per validating member (see crate::home)
//!   regulator/regulator.key     the regional health commission's key (+ .pub, genesis.json)
//! ```
//! node0 and node1 are hospitals, the rest clinics; a regulator is listed in genesis with voting
//! power 0 and runs no node. Node i listens for peers on 127.0.0.1 port `base + 2i` and serves
//! its API on `base + 2i + 1`, so no two ports collide. With `deterministic`, every key comes
//! from a fixed seed and the genesis time is fixed, so two runs write byte-identical genesis
//! files with the same chain id.

use std::path::{Path, PathBuf};

use cradle_ledger::crypto::sha256_parts;
use cradle_ledger::{Hash, Keypair, Limits, Policy, PublicKey, Role};

use crate::clock::now_ms;
use crate::config::NodeConfig;
use crate::doc::{ConsensusParams, GenesisDoc, GenesisMember};
use crate::error::GenesisError;
use crate::home::{CONFIG_FILE, GENESIS_FILE, KEY_FILE};
use crate::keyfile::write_key_file;

/// Most members a localnet may have.
pub const LOCALNET_MEMBERS_MAX: usize = 64;
/// Genesis time of a deterministic localnet: 2025-01-01T00:00:00Z.
pub const DETERMINISTIC_GENESIS_TIME_MS: u64 = 1_735_689_600_000;
/// Seed tag of deterministic localnet keys.
pub const LOCALNET_SEED_TAG: &[u8] = b"cradle-localnet\0";
/// Directory of the regulator's key inside a localnet.
pub const REGULATOR_DIR: &str = "regulator";
/// The regulator's key file name.
pub const REGULATOR_KEY_FILE: &str = "regulator.key";
/// The regulator's institution name.
pub const REGULATOR_NAME: &str = "Regional Health Commission";

/// What to write.
#[derive(Clone, Debug)]
pub struct LocalnetOptions {
    /// Validating members (node homes), 1..=[`LOCALNET_MEMBERS_MAX`].
    pub members: usize,
    pub out: PathBuf,
    pub deterministic: bool,
    pub base_port: u16,
    pub break_glass_allowed: bool,
    pub chain_name: String,
    pub consensus: ConsensusParams,
    /// The IPv4 address node i listens on for peers and its API; empty for 127.0.0.1 for all.
    /// Tests that put each node in a network namespace of its own give each its own address.
    pub hosts: Vec<std::net::Ipv4Addr>,
}

impl LocalnetOptions {
    pub fn new(members: usize, out: impl Into<PathBuf>) -> Self {
        Self {
            members,
            out: out.into(),
            deterministic: false,
            base_port: 26600,
            break_glass_allowed: true,
            chain_name: "cradle-localnet".into(),
            consensus: ConsensusParams::default(),
            hosts: Vec::new(),
        }
    }
}

/// One member of a written localnet.
#[derive(Clone, Debug)]
pub struct LocalnetMember {
    pub name: String,
    pub role: Role,
    pub public_key: PublicKey,
    /// The node home, for members that run a node.
    pub home: Option<PathBuf>,
    pub key_path: PathBuf,
    /// `https://IP:PORT` of the node's API, for members that run a node.
    pub api_url: Option<String>,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Localnet {
    pub chain_id: Hash,
    pub genesis_path: PathBuf,
    pub members: Vec<LocalnetMember>,
}

/// The key seed of localnet identity `label` in deterministic mode.
pub fn deterministic_seed(label: &[u8]) -> [u8; 32] {
    sha256_parts(&[LOCALNET_SEED_TAG, label])
}

fn keypair(deterministic: bool, label: &[u8]) -> Result<Keypair, GenesisError> {
    if deterministic {
        Ok(Keypair::from_seed(&deterministic_seed(label)))
    } else {
        Ok(Keypair::generate()?)
    }
}

/// Institution name of node `i`: two county hospitals, then township clinics.
pub fn member_name(i: usize) -> (String, Role) {
    if i < 2 {
        (format!("County Hospital {}", i + 1), Role::Hospital)
    } else {
        (format!("Township Clinic {}", i - 1), Role::Clinic)
    }
}

pub(crate) fn check_out_dir(out: &Path) -> Result<(), GenesisError> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(GenesisError::OutputNotEmpty { path: out.into() });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(out).map_err(GenesisError::io(out))
        }
        Err(e) => Err(GenesisError::io(out)(e)),
    }
}

/// Writes a localnet; refuses an output directory that exists and is not empty.
pub fn write_localnet(opts: &LocalnetOptions) -> Result<Localnet, GenesisError> {
    let n = opts.members;
    if !(1..=LOCALNET_MEMBERS_MAX).contains(&n) {
        return Err(GenesisError::BadLocalnet {
            what: "member count",
            value: n as u64,
            min: 1,
            max: LOCALNET_MEMBERS_MAX as u64,
        });
    }
    // Member i: p2p on base + 2i, API on base + 2i + 1, metrics on base + 2n + i.
    let port_max = u64::from(u16::MAX) - 3 * n as u64 + 1;
    if !(1024..=port_max).contains(&u64::from(opts.base_port)) {
        return Err(GenesisError::BadLocalnet {
            what: "base port",
            value: u64::from(opts.base_port),
            min: 1024,
            max: port_max,
        });
    }
    if !opts.hosts.is_empty() && opts.hosts.len() != n {
        return Err(GenesisError::BadLocalnet {
            what: "host count",
            value: opts.hosts.len() as u64,
            min: n as u64,
            max: n as u64,
        });
    }
    let host = |i: usize| {
        opts.hosts
            .get(i)
            .copied()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST)
    };
    let out = opts.out.as_path();
    check_out_dir(out)?;

    // Keys first, all in memory, so a failure writes nothing half-done into genesis.
    let mut keys = Vec::with_capacity(n);
    let mut members = Vec::with_capacity(n + 1);
    for i in 0..n {
        let kp = keypair(opts.deterministic, format!("node{i}").as_bytes())?;
        let (name, role) = member_name(i);
        let p2p = u32::from(opts.base_port) + 2 * i as u32;
        members.push(GenesisMember {
            name,
            role,
            public_key: kp.public_key(),
            x25519: kp.x25519_public(),
            voting_power: 1,
            p2p_addr: Some(format!("/ip4/{}/tcp/{p2p}", host(i))),
            api_addr: Some(format!("{}:{}", host(i), p2p + 1)),
        });
        keys.push(kp);
    }
    let regulator = keypair(opts.deterministic, b"regulator")?;
    members.push(GenesisMember {
        name: REGULATOR_NAME.into(),
        role: Role::Regulator,
        public_key: regulator.public_key(),
        x25519: regulator.x25519_public(),
        voting_power: 0,
        p2p_addr: None,
        api_addr: None,
    });

    let doc = GenesisDoc {
        chain_name: opts.chain_name.clone(),
        genesis_time_ms: if opts.deterministic {
            DETERMINISTIC_GENESIS_TIME_MS
        } else {
            now_ms()
        },
        members,
        consensus: opts.consensus.clone(),
        policy: Policy {
            break_glass_allowed: opts.break_glass_allowed,
            ..Policy::default()
        },
        limits: Limits::default(),
    };
    doc.validate().map_err(GenesisError::Invalid)?;
    let chain_id = doc.chain_id();

    let genesis_path = out.join(GENESIS_FILE);
    doc.save(&genesis_path)?;
    let mut written = Vec::with_capacity(n + 1);
    for (i, kp) in keys.iter().enumerate() {
        let m = &doc.members[i];
        let home = out.join(format!("node{i}"));
        std::fs::create_dir_all(&home).map_err(GenesisError::io(&home))?;
        let key_path = home.join(KEY_FILE);
        write_key_file(&key_path, kp)?;
        doc.save(home.join(GENESIS_FILE))?;
        let api = m.api_addr.clone().unwrap_or_default();
        let config = NodeConfig {
            member: m.name.clone(),
            p2p: crate::config::P2pConfig {
                listen: m.p2p_addr.clone().unwrap_or_default(),
            },
            api: crate::config::ApiConfig {
                metrics_listen: Some(format!(
                    "127.0.0.1:{}",
                    u32::from(opts.base_port) + 2 * n as u32 + i as u32
                )),
                ..crate::config::ApiConfig::new(api.clone())
            },
            ..NodeConfig::default()
        };
        config.validate()?;
        config.save(home.join(CONFIG_FILE))?;
        written.push(LocalnetMember {
            name: m.name.clone(),
            role: m.role,
            public_key: m.public_key,
            home: Some(home),
            key_path,
            api_url: Some(format!("https://{api}")),
        });
    }
    let reg_dir = out.join(REGULATOR_DIR);
    std::fs::create_dir_all(&reg_dir).map_err(GenesisError::io(&reg_dir))?;
    let reg_key = reg_dir.join(REGULATOR_KEY_FILE);
    write_key_file(&reg_key, &regulator)?;
    doc.save(reg_dir.join(GENESIS_FILE))?;
    written.push(LocalnetMember {
        name: REGULATOR_NAME.into(),
        role: Role::Regulator,
        public_key: regulator.public_key(),
        home: None,
        key_path: reg_key,
        api_url: None,
    });
    tracing::info!(
        out = %out.display(),
        members = n,
        chain_id = %hex::encode(chain_id),
        "wrote localnet"
    );
    Ok(Localnet {
        chain_id,
        genesis_path,
        members: written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::Home;

    #[test]
    fn every_home_opens_as_its_member() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = LocalnetOptions::new(3, dir.path().join("net"));
        opts.deterministic = true;
        let net = write_localnet(&opts).unwrap();
        for (i, m) in net.members.iter().enumerate().take(3) {
            let home = Home::open(m.home.as_ref().unwrap()).unwrap();
            assert_eq!(home.member_index, Some(i));
            assert_eq!(home.chain_id, net.chain_id);
            assert_eq!(home.member().unwrap().name, m.name);
        }
        let c = Home::open(net.members[0].home.as_ref().unwrap())
            .unwrap()
            .consortium()
            .unwrap();
        assert_eq!(c.validators().len(), 3);
        assert_eq!(c.members.len(), 4);
    }

    #[test]
    fn home_with_a_foreign_key_or_wrong_member_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = LocalnetOptions::new(2, dir.path().join("net"));
        opts.deterministic = true;
        let net = write_localnet(&opts).unwrap();
        let home0 = net.members[0].home.clone().unwrap();
        let home1 = net.members[1].home.clone().unwrap();

        let config = std::fs::read_to_string(home1.join(CONFIG_FILE)).unwrap();
        std::fs::write(
            home0.join(CONFIG_FILE),
            config.replace("127.0.0.1:26603", "127.0.0.1:26601"),
        )
        .unwrap();
        let err = Home::open(&home0).unwrap_err();
        assert!(matches!(err, GenesisError::MemberMismatch { .. }), "{err}");

        std::fs::remove_file(home1.join(KEY_FILE)).unwrap();
        write_key_file(home1.join(KEY_FILE), &Keypair::from_seed(&[9; 32])).unwrap();
        let err = Home::open(&home1).unwrap_err();
        assert!(matches!(err, GenesisError::NotAMember { .. }), "{err}");
    }

    #[test]
    fn refuses_non_empty_output_and_bad_sizes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), "").unwrap();
        let err = write_localnet(&LocalnetOptions::new(2, dir.path())).unwrap_err();
        assert!(matches!(err, GenesisError::OutputNotEmpty { .. }), "{err}");
        let err = write_localnet(&LocalnetOptions::new(0, dir.path().join("a"))).unwrap_err();
        assert!(matches!(err, GenesisError::BadLocalnet { .. }), "{err}");
        let mut opts = LocalnetOptions::new(4, dir.path().join("b"));
        opts.base_port = 65530;
        assert!(matches!(
            write_localnet(&opts),
            Err(GenesisError::BadLocalnet { .. })
        ));
    }

    #[test]
    fn random_localnets_differ() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_localnet(&LocalnetOptions::new(1, dir.path().join("a"))).unwrap();
        let b = write_localnet(&LocalnetOptions::new(1, dir.path().join("b"))).unwrap();
        assert_ne!(a.members[0].public_key, b.members[0].public_key);
        assert_ne!(a.chain_id, b.chain_id);
    }
}
