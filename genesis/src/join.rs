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
pub struct JoinOptions {
    pub genesis: PathBuf,
    /// The member's key file: the key its proposal's public key file was made from.
    pub key: PathBuf,
    /// The name the proposal gives the member.
    pub name: String,
    pub p2p_listen: String,
    pub api_listen: String,
    pub metrics_listen: Option<String>,
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
