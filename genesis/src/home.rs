//! A node's home directory: the three files a node needs, checked against each other.
//!
//! ```text
//! HOME/
//!   config.toml   the node's parameters (see crate::config)
//!   genesis.json  the consortium's genesis document, identical on every node
//!   node.key      the member's key file, mode 0600 (node.key.pub beside it)
//!   data/         storage, created by the node
//! ```
//! [`Home::open`] only succeeds when the key belongs to a genesis member and the config names
//! that same member, so a node never starts as someone it is not; or, for a member that joins
//! by a governance vote, when the config says so (`joining`) and names no genesis member. Such
//! a node can do nothing until the ledger admits its key: the other nodes refuse it until then.

use std::path::{Path, PathBuf};

use cradle_ledger::{Consortium, Hash, Keypair};

use crate::config::NodeConfig;
use crate::doc::{GenesisDoc, GenesisMember};
use crate::error::GenesisError;
use crate::keyfile::read_key_file;

/// The genesis document inside a home.
pub const GENESIS_FILE: &str = "genesis.json";
/// The member's key file inside a home.
pub const KEY_FILE: &str = "node.key";
/// The node config inside a home.
pub const CONFIG_FILE: &str = "config.toml";
/// The default storage directory inside a home.
pub const DATA_DIR: &str = "data";

/// A loaded and cross-checked node home.
#[derive(Debug)]
pub struct Home {
    pub dir: PathBuf,
    pub config: NodeConfig,
    pub genesis: GenesisDoc,
    pub chain_id: Hash,
    pub keypair: Keypair,
    /// Index of this node's member in genesis order; `None` for a joining member.
    pub member_index: Option<usize>,
}

impl Home {
    /// Loads `dir/config.toml`, `dir/genesis.json` and `dir/node.key`, validates each, and
    /// checks that the key is a genesis member and the config names it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, GenesisError> {
        let dir = dir.as_ref().to_path_buf();
        let config = NodeConfig::load(dir.join(CONFIG_FILE))?;
        let genesis = GenesisDoc::load(dir.join(GENESIS_FILE))?;
        let keypair = read_key_file(dir.join(KEY_FILE))?;
        let key = keypair.public_key();
        let member_index = match genesis.member_by_key(&key) {
            Some((i, member)) => {
                if member.x25519 != keypair.x25519_public() {
                    return Err(GenesisError::X25519Mismatch {
                        member: member.name.clone(),
                        key: keypair.x25519_public(),
                    });
                }
                if member.name != config.member {
                    return Err(GenesisError::MemberMismatch {
                        config: config.member.clone(),
                        genesis: member.name.clone(),
                    });
                }
                Some(i)
            }
            // A key genesis does not list: only a home that says it joins, under a name no
            // genesis member has.
            None if !config.joining => return Err(GenesisError::NotAMember { key }),
            None => {
                if let Some((_, m)) = genesis.member_by_name(&config.member) {
                    return Err(GenesisError::MemberMismatch {
                        config: config.member.clone(),
                        genesis: m.name.clone(),
                    });
                }
                None
            }
        };
        let chain_id = genesis.chain_id();
        tracing::info!(
            home = %dir.display(),
            member = %config.member,
            joining = member_index.is_none(),
            chain_id = %hex::encode(chain_id),
            "opened node home"
        );
        Ok(Self {
            dir,
            config,
            genesis,
            chain_id,
            keypair,
            member_index,
        })
    }

    /// This node's genesis entry; `None` for a joining member.
    pub fn member(&self) -> Option<&GenesisMember> {
        self.member_index.and_then(|i| self.genesis.members.get(i))
    }

    /// The name this node runs as: its genesis entry's, or the one its joining config gives.
    pub fn member_name(&self) -> &str {
        &self.config.member
    }

    /// The consortium the ledger's rules read.
    pub fn consortium(&self) -> Result<Consortium, GenesisError> {
        self.genesis.consortium()
    }

    /// The storage directory, resolved against the home.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir_in(&self.dir)
    }

    pub fn genesis_path(&self) -> PathBuf {
        self.dir.join(GENESIS_FILE)
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }
}
