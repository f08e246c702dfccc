//! The home a member that joins by a governance vote starts from: the consortium's genesis,
//! its own key, and a config that says it joins.
//!
//! Its node follows the chain from genesis, checking every block's certificate with the set in
//! force at that block's height and taking up each set change as the certified chain makes it,
//! so it needs nothing but genesis and its key: the other nodes refuse it until the ledger
//! admits its key, and then it catches up and takes part.

use std::path::{Path, PathBuf};

use crate::config::{ApiConfig, NodeConfig, P2pConfig};
use crate::doc::GenesisDoc;
use crate::error::GenesisError;
use crate::home::{CONFIG_FILE, GENESIS_FILE, Home, KEY_FILE};
use crate::keyfile::{read_key_file, write_key_file};

/// What `cradle-genesis join` is given.
#[derive(Clone, Debug, clap::Args)]
pub struct JoinOptions {
    /// The consortium's genesis document.
    #[arg(long)]
    pub genesis: PathBuf,
    /// The member's key file: the key its proposal's public key file was made from.
    #[arg(long)]
    pub key: PathBuf,
    /// The name the proposal gives the member.
    #[arg(long)]
    pub name: String,
    /// libp2p listen address, like /ip4/0.0.0.0/tcp/26600 (the proposal's --p2p is how
    /// others reach it).
    #[arg(long)]
    pub p2p_listen: String,
    /// API listen address, like 0.0.0.0:8600.
    #[arg(long)]
    pub api_listen: String,
    /// Operator metrics address, like 127.0.0.1:9600.
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// The home to write (empty or absent).
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes the home into `opts.out` (which must be empty or absent) and opens it as a node would,
/// so a home that would not start is never left behind as if it would.
pub fn write_join_home(opts: &JoinOptions) -> Result<Home, GenesisError> {
    let doc = GenesisDoc::load(&opts.genesis)?;
    let keypair = read_key_file(&opts.key)?;
    if let Some((_, m)) = doc.member_by_key(&keypair.public_key()) {
        return Err(GenesisError::BadConfig {
            field: "key",
            reason: format!(
                "the key is genesis member {:?}'s: its home comes with genesis, it does not join",
                m.name
            ),
        });
    }
    let out: &Path = &opts.out;
    crate::localnet::check_out_dir(out)?;
    doc.save(out.join(GENESIS_FILE))?;
    write_key_file(out.join(KEY_FILE), &keypair)?;
    let config = NodeConfig {
        member: opts.name.clone(),
        joining: true,
        p2p: P2pConfig {
            listen: opts.p2p_listen.clone(),
        },
        api: ApiConfig {
            metrics_listen: opts.metrics_listen.clone(),
            ..ApiConfig::new(opts.api_listen.clone())
        },
        ..NodeConfig::default()
    };
    config.validate()?;
    config.save(out.join(CONFIG_FILE))?;
    Home::open(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::localnet::{LocalnetOptions, write_localnet};
    use cradle_ledger::Keypair;

    #[test]
    fn a_joining_home_opens_only_as_what_it_says_it_is() {
        let dir = tempfile::tempdir().unwrap();
        write_localnet(&LocalnetOptions {
            deterministic: true,
            ..LocalnetOptions::new(2, dir.path().join("net"))
        })
        .unwrap();
        let key = dir.path().join("clinic.key");
        write_key_file(&key, &Keypair::from_seed(&[77; 32])).unwrap();
        let opts = |key: &Path, name: &str, out: &str| JoinOptions {
            genesis: dir.path().join("net").join(GENESIS_FILE),
            key: key.to_path_buf(),
            name: name.into(),
            p2p_listen: "/ip4/127.0.0.1/tcp/26700".into(),
            api_listen: "127.0.0.1:26701".into(),
            metrics_listen: None,
            out: dir.path().join(out),
        };
        let home = write_join_home(&opts(&key, "Riverside Clinic", "riverside")).unwrap();
        assert!(home.member().is_none());
        assert_eq!(home.member_name(), "Riverside Clinic");
        assert!(home.config.joining);

        // Under a genesis member's name, or with a genesis member's key, it does not join.
        let err = write_join_home(&opts(&key, "County Hospital 1", "a")).unwrap_err();
        assert!(matches!(err, GenesisError::MemberMismatch { .. }), "{err}");
        let member_key = dir.path().join("net/node0").join(KEY_FILE);
        let err = write_join_home(&opts(&member_key, "Another Clinic", "b")).unwrap_err();
        assert!(
            matches!(err, GenesisError::BadConfig { field: "key", .. }),
            "{err}"
        );

        // A home whose config does not say it joins does not open with a stranger's key.
        let config_path = home.config_path();
        let mut config = NodeConfig::load(&config_path).unwrap();
        config.joining = false;
        config.save(&config_path).unwrap();
        let err = Home::open(&home.dir).unwrap_err();
        assert!(matches!(err, GenesisError::NotAMember { .. }), "{err}");
    }
}
