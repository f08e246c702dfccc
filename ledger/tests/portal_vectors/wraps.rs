//! The keys and key wraps of the portal's transaction vectors (`tx.json`): the testkit's keys by
//! name, archive keys wrapped with fixed ephemeral secrets ([`wrap_key_with_ephemeral`]) so the
//! page's wraps can be compared with Rust's byte for byte, and the wraps and recipients the
//! ledger refuses, each with its verdict checked here.

use cradle_ledger::crypto::sha256;
use cradle_ledger::keywrap::{unwrap_key, wrap_key_with_ephemeral};
use cradle_ledger::tx::WrappedKey;
use cradle_ledger::{ArchiveId, Error, Keypair, X25519Public};
use cradle_testkit::{TestConsortium, outsider_key, patient_key};
use serde_json::{Value, json};

pub const ARCHIVE_A: ArchiveId = ArchiveId([0xa1; 32]);
pub const ARCHIVE_B: ArchiveId = ArchiveId([0xb2; 32]);

/// The keys of the scenario, by the names the vector file uses.
pub struct Keys {
    named: Vec<(&'static str, Keypair)>,
}

impl Keys {
    pub fn new(t: &TestConsortium) -> Self {
        let seed_of = |k: &Keypair| *k.ed25519_seed();
        Self {
            named: vec![
                ("patient", patient_key(1)),
                // Her new phone: a key no one else holds.
                ("new-device", Keypair::from_seed(&[0x5e; 32])),
                ("grantee", Keypair::from_seed(&seed_of(&t.hospital_b))),
                ("clinic", Keypair::from_seed(&seed_of(&t.clinic))),
                ("outsider", outsider_key()),
            ],
        }
    }

    pub fn get(&self, name: &str) -> &Keypair {
        match self.named.iter().find(|(n, _)| *n == name) {
            Some((_, k)) => k,
            None => panic!("no key named {name}"),
        }
    }

    pub fn json(&self) -> Value {
        self.named
            .iter()
            .map(|(name, k)| {
                json!({
                    "name": name,
                    "seed": hex::encode(*k.ed25519_seed()),
                    "public_key": hex::encode(k.public_key().0),
                    "x25519_public": hex::encode(k.x25519_public().0),
                })
            })
            .collect()
    }
}

/// One wrap made with a fixed ephemeral secret.
pub struct Wrap {
    pub name: &'static str,
    pub archive: ArchiveId,
    pub recipient: &'static str,
    pub key: [u8; 32],
    pub ephemeral_secret: [u8; 32],
    pub wrapped: WrappedKey,
}

fn archive_key(archive: &ArchiveId) -> [u8; 32] {
    sha256(&[b"archive key ".as_slice(), &archive.0].concat())
}

pub fn make_wraps(keys: &Keys) -> Vec<Wrap> {
    let plan: [(&str, ArchiveId, &str); 7] = [
        // What the custodian registered for her, which her page opens.
        ("a-for-patient", ARCHIVE_A, "patient"),
        ("b-for-patient", ARCHIVE_B, "patient"),
        // What her page wraps again for a grantee.
        ("a-for-grantee", ARCHIVE_A, "grantee"),
        ("b-for-grantee", ARCHIVE_B, "grantee"),
        ("a-for-clinic", ARCHIVE_A, "clinic"),
        ("b-for-clinic", ARCHIVE_B, "clinic"),
        // The custodian's rewrap for her new device after she rotated her keys.
        ("a-for-new-device", ARCHIVE_A, "new-device"),
    ];
    plan.iter()
        .map(|&(name, archive, recipient)| {
            let key = archive_key(&archive);
            let ephemeral_secret = sha256(format!("ephemeral {name}").as_bytes());
            let to = keys.get(recipient).x25519_public();
            let wrapped = wrap_key_with_ephemeral(&key, &archive, &to, &ephemeral_secret).unwrap();
            assert_eq!(
                *unwrap_key(&wrapped, &archive, keys.get(recipient)).unwrap(),
                key,
                "{name}"
            );
            Wrap {
                name,
                archive,
                recipient,
                key,
                ephemeral_secret,
                wrapped,
            }
        })
        .collect()
}

pub fn wrap<'a>(wraps: &'a [Wrap], name: &str) -> &'a Wrap {
    match wraps.iter().find(|w| w.name == name) {
        Some(w) => w,
        None => panic!("no wrap named {name}"),
    }
}

/// The wraps her page must refuse to open, each with the ledger's verdict checked.
pub fn bad_wraps(keys: &Keys, wraps: &[Wrap]) -> Value {
    let good = wrap(wraps, "a-for-grantee");
    let with = |f: &dyn Fn(&mut WrappedKey)| {
        let mut w = good.wrapped;
        f(&mut w);
        w
    };
    let cases: Vec<(&str, WrappedKey, ArchiveId, &str)> = vec![
        (
            "altered-ephemeral-byte",
            with(&|w| w.ephemeral.0[5] ^= 1),
            ARCHIVE_A,
            "grantee",
        ),
        // X25519 ignores this bit; the HKDF salt holds the bytes as sent, so it fails anyway.
        (
            "ephemeral-top-bit",
            with(&|w| w.ephemeral.0[31] ^= 0x80),
            ARCHIVE_A,
            "grantee",
        ),
        (
            "low-order-ephemeral",
            with(&|w| w.ephemeral = X25519Public([0; 32])),
            ARCHIVE_A,
            "grantee",
        ),
        (
            "altered-sealed-byte",
            with(&|w| w.sealed[10] ^= 1),
            ARCHIVE_A,
            "grantee",
        ),
        (
            "altered-tag-byte",
            with(&|w| w.sealed[47] ^= 0x80),
            ARCHIVE_A,
            "grantee",
        ),
        ("wrong-archive", good.wrapped, ARCHIVE_B, "grantee"),
        ("wrong-recipient", good.wrapped, ARCHIVE_A, "outsider"),
        (
            "patient-opens-grantee-wrap",
            good.wrapped,
            ARCHIVE_A,
            "patient",
        ),
    ];
    cases
        .iter()
        .map(|(name, w, archive, recipient)| {
            let got = unwrap_key(w, archive, keys.get(recipient));
            assert_eq!(got.err(), Some(Error::KeyUnwrap), "{name}");
            json!({
                "name": name, "wrapped": w.to_hex(), "archive": hex::encode(archive.0),
                "recipient": recipient, "error": "key-unwrap",
            })
        })
        .collect()
}

/// Recipient keys a wrap must refuse: the shared secret would be all zeros, known to anyone.
pub fn low_order_recipients() -> Value {
    let mut order8 = [0u8; 32];
    hex::decode_to_slice(
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        &mut order8,
    )
    .unwrap();
    [("identity", [0u8; 32]), ("order-8", order8)]
        .iter()
        .map(|(name, x)| {
            let got = wrap_key_with_ephemeral(&[1; 32], &ARCHIVE_A, &X25519Public(*x), &[7; 32]);
            assert_eq!(got.err(), Some(Error::LowOrderKey), "{name}");
            json!({ "name": name, "x25519": hex::encode(x), "error": "low-order-key" })
        })
        .collect()
}
