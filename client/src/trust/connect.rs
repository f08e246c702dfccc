//! Checking a node over the network: its own answer on the sets, the other members' nodes
//! when there is reason to ask them, and the state file.

use cradle_genesis::GenesisDoc;
use cradle_ledger::governance::Sets;
use cradle_ledger::{Consortium, Keypair, PublicKey};

use super::{Known, NodeAnswer, Others, Store, TrustConfig, TrustError, Verified, settle};
use crate::api::{ApiClient, ApiError};
use crate::tls::{Pins, authority_of};

/// The pins for `node_url` in the newest sets known: the member listed at that address (by
/// the key that signs for it now), or any member; former keys are named when refused.
pub fn pins_for(verified: &Verified, node_url: &str) -> Pins {
    Pins::for_url_in(verified.latest(), node_url).naming_former(verified.former_keys())
}

/// A node the client checked, and the sets it checked it with.
pub struct Checked {
    pub api: ApiClient,
    pub sets: Sets,
    /// What the client could not do but went on without (the state file not written, say):
    /// for the user to see, one line each.
    pub notes: Vec<String>,
}

/// A client for the node at `node_url` (`https://`), pinned by the newest member sets known,
/// checked as this module says; signed by `key` when given.
pub fn connect(
    node_url: &str,
    genesis: &GenesisDoc,
    key: Option<&Keypair>,
    config: &TrustConfig,
) -> Result<Checked, TrustError> {
    let genesis_set = genesis
        .consortium()
        .map_err(|e| TrustError::Genesis(e.to_string()))?;
    let store = Store::new(config.state_dir.clone());
    let loaded = store.load(&genesis_set)?;
    let mut known = loaded
        .clone()
        .unwrap_or_else(|| Known::genesis(genesis_set.clone()));
    // Twice at most: pinned by the newest sets known; and again when the node proved a key
    // those do not pin, and other members' nodes showed newer sets that give it that key (a
    // vote rotated it, or the member joined after what this machine knew).
    for _ in 0..2 {
        let pins = pins_for(&known.verified, node_url);
        let mut api = ApiClient::with_pins(node_url, pins.clone())?;
        if let Some(k) = key {
            api = api.signed_by(k, genesis_set.chain_id);
        }
        let (node, pin_refusal) = ask_node(&api, &genesis_set, key.is_some())?;
        let not_pinned = matches!(node, NodeAnswer::NotPinned);
        let node_key = if pin_refusal.is_none() {
            api.node_member().map(|(_, k)| k)
        } else if let Some(presented) = pins.refused_key() {
            // The key the node presented, not the one it was pinned to.
            Some(presented)
        } else if let Some(refusal) = pin_refusal {
            // Not even an Ed25519 key: no member's node.
            return Err(refusal.into());
        } else {
            None
        };
        known = settle(
            known,
            node,
            |v| match key {
                Some(k) => ask_others(&genesis_set, v, node_url, node_key, k, false),
                None => Others::NoneToAsk,
            },
            cradle_genesis::clock::now_ms(),
            config.max_age_ms,
        )?;
        let Some(node_key) = node_key else {
            // Not connected yet (an anonymous call): the pins check the key on the first
            // request.
            return Ok(finish(&store, &genesis_set, loaded.as_ref(), known, api));
        };
        // What was learnt is kept even when the node is refused: the next call refuses it in
        // the handshake, with or without a key.
        if let Err(e) = known.verified.check_key(&node_key) {
            keep(&store, &genesis_set, loaded.as_ref(), &known);
            // A key that never signed for a member: the pins' refusal says it best.
            return Err(match pin_refusal {
                Some(refusal) if !known.verified.ever_signed(&node_key) => refusal.into(),
                _ => e,
            });
        }
        if not_pinned {
            continue;
        }
        return Ok(finish(&store, &genesis_set, loaded.as_ref(), known, api));
    }
    Err(TrustError::Unconfirmed(
        "the node's TLS key is none the newest member sets give it, though other members' \
         nodes showed sets that do: it changed while the client checked it"
            .into(),
    ))
}

/// Checks the node behind `api`, a client already made (plain HTTP, or pinned by hand) and
/// signed by `key` if given: its key must sign for a member in the newest sets known.
pub fn check(
    api: ApiClient,
    genesis: &GenesisDoc,
    key: Option<&Keypair>,
    config: &TrustConfig,
) -> Result<Checked, TrustError> {
    let genesis_set = genesis
        .consortium()
        .map_err(|e| TrustError::Genesis(e.to_string()))?;
    let store = Store::new(config.state_dir.clone());
    let loaded = store.load(&genesis_set)?;
    let known = loaded
        .clone()
        .unwrap_or_else(|| Known::genesis(genesis_set.clone()));
    let (node, pin_refusal) = ask_node(&api, &genesis_set, key.is_some())?;
    let not_pinned = matches!(node, NodeAnswer::NotPinned);
    let plain = api.pins().is_none();
    let node_key = match (api.pins(), api.node_member()) {
        (Some(pins), _) if not_pinned => pins.refused_key(),
        (_, Some((_, k))) => Some(k),
        // A plain-HTTP node: its own word, which is all plain HTTP has.
        (None, None) => Some(api.node_key()?),
        (Some(_), None) => None,
    };
    let known = settle(
        known,
        node,
        |v| match key {
            Some(k) => ask_others(&genesis_set, v, api.base(), node_key, k, plain),
            None => Others::NoneToAsk,
        },
        cradle_genesis::clock::now_ms(),
        config.max_age_ms,
    )?;
    if let Some(k) = node_key
        && let Err(e) = known.verified.check_key(&k)
    {
        keep(&store, &genesis_set, loaded.as_ref(), &known);
        return Err(match pin_refusal {
            Some(refusal) if !known.verified.ever_signed(&k) => refusal.into(),
            _ => e,
        });
    }
    if let Some(refusal) = pin_refusal
        && node_key.is_none()
    {
        return Err(refusal.into());
    }
    if not_pinned {
        return Err(TrustError::Unconfirmed(
            "the node proves a key the pins this client was made with do not accept, though \
             it signs for a member now: connect pinned by the newest member sets instead"
                .into(),
        ));
    }
    Ok(finish(&store, &genesis_set, loaded.as_ref(), known, api))
}

/// Keeps what changed, and hands the checked client over.
fn finish(
    store: &Store,
    genesis: &Consortium,
    loaded: Option<&Known>,
    known: Known,
    api: ApiClient,
) -> Checked {
    let notes = keep(store, genesis, loaded, &known).into_iter().collect();
    Checked {
        api,
        sets: known.verified.into_sets(),
        notes,
    }
}

/// Writes `known` to the state file if it differs from what was `loaded`; what went wrong, as
/// a note for the user (the client goes on without the file).
fn keep(
    store: &Store,
    genesis: &Consortium,
    loaded: Option<&Known>,
    known: &Known,
) -> Option<String> {
    // Genesis alone, never confirmed, is what a missing file means already.
    let changed = match loaded {
        None => known.verified.epoch() > 0 || known.confirmed.is_some(),
        Some(l) => l.verified.epoch() != known.verified.epoch() || l.confirmed != known.confirmed,
    };
    if !changed {
        return None;
    }
    store
        .save(genesis, known)
        .err()
        .map(|e| format!("the member sets verified now are not kept for next time: {e}"))
}

/// The node's own answer on the sets; with [`NodeAnswer::NotPinned`], the pins' refusal.
fn ask_node(
    api: &ApiClient,
    genesis: &Consortium,
    signed: bool,
) -> Result<(NodeAnswer, Option<ApiError>), TrustError> {
    if !signed {
        return Ok((NodeAnswer::NotAsked, None));
    }
    match api.member_set_changes() {
        Ok(changes) => Verified::verify(genesis.clone(), changes)
            .map(|v| (NodeAnswer::Served(v), None))
            .map_err(|e| TrustError::Unproven {
                from: "the node".into(),
                reason: e.to_string(),
            }),
        Err(ApiError::Refused {
            status: 401 | 403, ..
        }) => Ok((NodeAnswer::Refused, None)),
        Err(e) if api.pin_refused() => Ok((NodeAnswer::NotPinned, Some(e))),
        Err(e) => Err(e.into()),
    }
}

/// Asks the other members' nodes in the newest set known, one after another, pinned by the
/// keys that sign for them now, for their sets: the first that serves sets which verify and
/// in which its own key still signs for a member answers for all.
fn ask_others(
    genesis: &Consortium,
    known: &Verified,
    node_url: &str,
    node_key: Option<PublicKey>,
    key: &Keypair,
    plain: bool,
) -> Others {
    let authority = authority_of(node_url);
    let (mut asked, mut refused, mut last) = (0, 0, None);
    for m in &known.latest().members {
        let Some(addr) = m.api_addr.as_deref() else {
            continue;
        };
        let signer = m.signing_key();
        if addr == authority || Some(signer) == node_key {
            continue;
        }
        asked += 1;
        let api = if plain {
            // A consortium that turned TLS off: the other node's key is its own word too.
            let api = ApiClient::plaintext(&format!("http://{addr}"));
            match api.node_key() {
                Ok(k) if k == signer => Ok(api),
                Ok(_) => Err(format!("{}: it names another key", m.name)),
                Err(e) => Err(format!("{}: {e}", m.name)),
            }
        } else {
            ApiClient::with_pins_brief(&format!("https://{addr}"), Pins::exactly(&m.name, signer))
                .map_err(|e| format!("{}: {e}", m.name))
        };
        let api = match api {
            Ok(api) => api.signed_by(key, genesis.chain_id),
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        match api.member_set_changes() {
            Ok(changes) => match Verified::verify(genesis.clone(), changes) {
                Ok(v) => {
                    // A node whose key its own answer shows rotated out confirms nothing. (Sets
                    // that conflict with what is known go on, to be refused as such.)
                    match known.clone().newest(v.clone()) {
                        Ok(n) if n.latest().signer(&signer).is_none() => {
                            last = Some(format!("{}: its key signs for no member now", m.name));
                        }
                        _ => {
                            return Others::Served {
                                verified: v,
                                by: m.name.clone(),
                            };
                        }
                    }
                }
                Err(e) => last = Some(format!("{}: a set change does not verify: {e}", m.name)),
            },
            Err(ApiError::Refused {
                status: 401 | 403, ..
            }) => refused += 1,
            Err(e) => last = Some(format!("{}: {e}", m.name)),
        }
    }
    match (asked, refused, last) {
        (0, _, _) => Others::NoneToAsk,
        (_, r, _) if r > 0 => Others::Refused,
        (_, _, last) => Others::Unreachable(last.unwrap_or_default()),
    }
}
