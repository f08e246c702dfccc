//! A node's home directory: the three files a node needs, checked against each other.
//!
//! ```text
//! HOME/
//!   config.toml   the node's parameters (see crate::config)
//!   genesis.json  the consortium's genesis document, identical on every node
//!   node.key      the member's key file, mode 0600 (node.key.pub beside it)
//!   keyring/      the member's earlier keys, once a vote rotated them (mode 0600 each)
//!   data/         storage, created by the node
//! ```
//! [`Home::open`] only succeeds when the key belongs to a genesis member and the config names
//! that same member, so a node never starts as someone it is not; or, for a member that joins
//! by a governance vote, when the config says so (`joining`) and names no genesis member. Such
//! a node can do nothing until the ledger admits its key: the other nodes refuse it until then.
//! A genesis member whose key a vote rotated runs with its new key in `node.key` and its
//! genesis key in `keyring/` ([`rotate_key`]): archive keys wrapped for its earlier X25519 keys
//! stay readable, and the ledger, not genesis, says which key signs for it now.

use std::os::unix::fs::DirBuilderExt;
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
/// The directory of the member's earlier keys inside a home.
pub const KEYRING_DIR: &str = "keyring";
/// Most earlier keys a home keeps.
pub const KEYRING_MAX: usize = 64;

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
    /// The member's earlier keys, newest first (empty until its key is rotated).
    pub earlier_keys: Vec<Keypair>,
}

impl Home {
    /// Loads `dir/config.toml`, `dir/genesis.json` and `dir/node.key`, validates each, and
    /// checks that the key is a genesis member and the config names it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, GenesisError> {
        let dir = dir.as_ref().to_path_buf();
        let config = NodeConfig::load(dir.join(CONFIG_FILE))?;
        let genesis = GenesisDoc::load(dir.join(GENESIS_FILE))?;
        let keypair = read_key_file(dir.join(KEY_FILE))?;
        let earlier_keys = read_keyring(&dir.join(KEYRING_DIR))?;
        let key = keypair.public_key();
        // A genesis member whose key was rotated: its genesis key is in the key ring.
        let rotated = genesis
            .member_by_name(&config.member)
            .filter(|(_, m)| {
                earlier_keys
                    .iter()
                    .any(|k| k.public_key() == m.public_key && k.x25519_public() == m.x25519)
            })
            .map(|(i, _)| i);
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
            None if rotated.is_some() && !config.joining => rotated,
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
            earlier_keys = earlier_keys.len(),
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
            earlier_keys,
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

/// Reads the key ring: every `*.key` file in `dir` (absent: none), newest first by name.
fn read_keyring(dir: &Path) -> Result<Vec<Keypair>, GenesisError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(GenesisError::io(dir)(e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(GenesisError::io(dir))?.path();
        if path.extension().is_some_and(|e| e == "key") {
            paths.push(path);
        }
        if paths.len() > KEYRING_MAX {
            return Err(GenesisError::BadConfig {
                field: "keyring",
                reason: format!("more than {KEYRING_MAX} earlier keys in {}", dir.display()),
            });
        }
    }
    paths.sort();
    paths.reverse();
    paths.iter().map(read_key_file).collect()
}

/// Installs `new_key` as the home's key after a vote rotated the member's key to it, keeping
/// the key it replaces in the key ring (named by the time of the rotation, so newest sorts
/// last). Refuses a key the home has or had. Returns the home as a node would open it.
pub fn rotate_key(dir: impl AsRef<Path>, new_key: &Path) -> Result<Home, GenesisError> {
    let dir = dir.as_ref();
    let home = Home::open(dir)?;
    let new = read_key_file(new_key)?;
    let known = std::iter::once(&home.keypair).chain(&home.earlier_keys);
    if known.map(|k| k.public_key()).any(|k| k == new.public_key()) {
        return Err(GenesisError::BadConfig {
            field: "key",
            reason: "the home has or had this key already".into(),
        });
    }
    let ring = dir.join(KEYRING_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&ring)
        .map_err(GenesisError::io(&ring))?;
    let now = crate::clock::now_ms();
    crate::keyfile::write_key_file(ring.join(format!("node.{now:016}.key")), &home.keypair)?;
    // The new key is written beside the old and renamed over it: a crash leaves one or the
    // other, never neither.
    let key_path = home.key_path();
    let next = dir.join(format!("{KEY_FILE}.next"));
    let _ = std::fs::remove_file(&next);
    let _ = std::fs::remove_file(crate::keyfile::public_file_path(&next));
    crate::keyfile::write_key_file(&next, &new)?;
    std::fs::rename(&next, &key_path).map_err(GenesisError::io(&key_path))?;
    let public = crate::keyfile::public_file_path(&key_path);
    std::fs::rename(crate::keyfile::public_file_path(&next), &public)
        .map_err(GenesisError::io(&public))?;
    tracing::info!(home = %dir.display(), new_key = %new.public_key(), "rotated the home's key");
    Home::open(dir)
}
