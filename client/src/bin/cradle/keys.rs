//! `cradle keygen`, `cradle patient prove-keys` and `cradle patient enrol`: a patient's keys, her
//! proof that she holds them, and a member's enrolment of her with that proof.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cradle_client::session::enrolment::{
    PublicKeyFile, read_public_key_file, write_public_key_file,
};
use cradle_ledger::tx::EnrolPatient;
use cradle_ledger::{Hash, PublicKey, Signature, X25519Public};
use serde_json::json;

use crate::cli::{Cli, Format};
use crate::{emit, genesis, key, session};

/// The chain a patient proves her keys for: the one of the genesis file she trusts
/// (`--genesis` or `CRADLE_GENESIS`), if given.
fn chain_id(cli: &Cli) -> anyhow::Result<Option<Hash>> {
    match &cli.genesis {
        Some(_) => Ok(Some(genesis(cli)?.chain_id())),
        None => Ok(None),
    }
}

/// `cradle keygen --out FILE`: a new key; given the genesis, FILE.pub also carries the holder's
/// proof for enrolment as a patient on its chain.
pub(crate) fn keygen(cli: &Cli, out: &Path) -> anyhow::Result<()> {
    // The chain first: a bad --genesis should not leave a key behind.
    let chain = chain_id(cli)?;
    let key = cradle_ledger::Keypair::generate().context("generating a key")?;
    let public = cradle_genesis::keyfile::write_key_file(out, &key)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("public_key {}", key.public_key());
    println!("x25519_public {}", key.x25519_public());
    if let Some(chain) = chain {
        write_public_key_file(&public, &PublicKeyFile::proven(&key, &chain))?;
        println!("enrolment_proof_chain {}", hex::encode(chain));
    }
    Ok(())
}

/// `cradle --genesis GENESIS --key KEY patient prove-keys [--out FILE]`: the key holder's proof
/// for enrolment, written into her public key file (KEY.pub unless --out).
pub(crate) fn prove_keys(cli: &Cli, out: Option<&Path>, format: Format) -> anyhow::Result<()> {
    let Some(chain) = chain_id(cli)? else {
        bail!("give the consortium to prove your keys for: --genesis FILE (or CRADLE_GENESIS)");
    };
    let me = key(cli)?;
    let out = match (out, &cli.key) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(k)) => cradle_genesis::keyfile::public_file_path(k),
        (None, None) => PathBuf::from("patient.key.pub"),
    };
    write_public_key_file(&out, &PublicKeyFile::proven(&me, &chain))?;
    emit(
        format,
        &json!({ "patient": me.public_key(), "chain_id": hex::encode(chain), "out": out }),
        &format!(
            "{} proves your keys for chain {}",
            out.display(),
            hex::encode(chain)
        ),
    )
}

/// `cradle patient enrol PUBFILE` (or PUBKEY --x25519 X --proof SIG): enrols her with the
/// proof she made; checked here against the node's chain before anything is sent.
pub(crate) fn enrol(
    cli: &Cli,
    pubkey: &str,
    x25519: Option<&str>,
    proof: Option<&str>,
    format: Format,
) -> anyhow::Result<()> {
    let s = session(cli)?;
    let enrolment = if let Ok(patient) = PublicKey::from_hex(pubkey) {
        let (Some(x), Some(proof)) = (x25519, proof) else {
            bail!("with a public key in hex, give her --x25519 key and her --proof too");
        };
        EnrolPatient {
            patient,
            x25519: X25519Public::from_hex(x).context("--x25519 must be 64 hex digits")?,
            proof: Signature::from_hex(proof).context("--proof must be 128 hex digits")?,
        }
    } else {
        read_public_key_file(Path::new(pubkey))?
            .enrolment_for(&s.chain_id)
            .with_context(|| format!("{pubkey} cannot enrol her"))?
    };
    let patient = enrolment.patient;
    let r = s.enrol_patient(enrolment)?;
    emit(
        format,
        &json!({ "patient": patient, "tx": r.hash, "height": r.height }),
        &patient.to_hex(),
    )
}
