//! The `cradle` CLI as the black-box tests drive it, and the setup most of them share: a mother
//! enrolled by a hospital with one prenatal record registered in its custody.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Cluster;
use crate::cluster::bin;

/// `cradle --node NODE --key KEY ARGS`, trusting the genesis of the cluster that serves NODE
/// (a test that talks through a proxy passes `--genesis` itself).
pub fn cradle(node: &str, key: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("cradle").expect("the cradle binary is built"));
    if let Some(genesis) = crate::cluster::genesis_for(node) {
        cmd.arg("--genesis").arg(genesis);
    }
    cmd.arg("--node")
        .arg(node)
        .arg("--key")
        .arg(key)
        .args(args)
        .output()
        .expect("running cradle")
}

/// `cradle --genesis GENESIS keygen --out OUT`: a key made on its holder's own machine, with
/// its proof for the chain in `OUT.pub`.
pub fn keygen(genesis: &Path, out: &Path) {
    ok(
        Command::new(bin("cradle").expect("the cradle binary is built"))
            .arg("--genesis")
            .arg(genesis)
            .args(["keygen", "--out"])
            .arg(out)
            .output()
            .expect("running cradle keygen"),
    );
}

/// The stdout of a command that must succeed; fails the test with what it printed otherwise.
pub fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "cradle failed: stdout {stdout:?} stderr {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A synthetic prenatal record from the shared test data beside the repository.
pub fn shared_record(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata/fhir-prenatal")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: the shared test data must sit beside the repository",
        p.display()
    );
    p
}

/// A mother's key files and the archive a hospital registered for her.
pub struct Mother {
    pub key: PathBuf,
    pub public: PathBuf,
    pub archive: String,
}

/// Makes a mother's key in `work`, has member `custodian` enrol her and register `record` as
/// her prenatal-visit archive.
pub fn mother_with_archive(c: &Cluster, work: &Path, custodian: usize, record: &Path) -> Mother {
    std::fs::create_dir_all(work).expect("work directory");
    let key = work.join("patient.key");
    keygen(&c.nodes[custodian].home.join("genesis.json"), &key);
    let public = work.join("patient.key.pub");
    let url = &c.nodes[custodian].api;
    let member = c.nodes[custodian].home.join("node.key");
    let public_s = public.to_str().expect("UTF-8 path");
    ok(cradle(url, &member, &["patient", "enrol", public_s]));
    let put: Value = serde_json::from_str(&ok(cradle(
        url,
        &member,
        &[
            "archive",
            "put",
            record.to_str().expect("UTF-8 path"),
            "--patient",
            public_s,
            "--category",
            "prenatal-visit",
            "--format",
            "json",
        ],
    )))
    .expect("archive put answers JSON");
    let archive = put["archive"]
        .as_str()
        .expect("archive put names the archive")
        .to_string();
    Mother {
        key,
        public,
        archive,
    }
}

/// A clinician's key files.
/// Member `i` uploads `record` as an ultrasound archive of the mother whose public key file is
/// `patient`, through its own node: the CLI's output as it comes.
pub fn member_upload(c: &Cluster, i: usize, record: &Path, patient: &Path) -> Output {
    cradle(
        &c.nodes[i].api,
        &c.nodes[i].home.join("node.key"),
        &[
            "archive",
            "put",
            record.to_str().expect("UTF-8 path"),
            "--patient",
            patient.to_str().expect("UTF-8 path"),
            "--category",
            "ultrasound",
        ],
    )
}

pub struct Clinician {
    pub key: PathBuf,
    pub public: PathBuf,
}

/// Makes a clinician's key in `work` (named `name`, on her own machine in life) and has member
/// `institution` register her with `role` and `department` through its own node, with `name`
/// and a staff number in its directory.
pub fn clinician(
    c: &Cluster,
    work: &Path,
    institution: usize,
    role: &str,
    department: &str,
    name: &str,
) -> Clinician {
    std::fs::create_dir_all(work).expect("work directory");
    let file = name.to_lowercase().replace(' ', "-");
    let key = work.join(format!("{file}.key"));
    ok(
        Command::new(bin("cradle").expect("the cradle binary is built"))
            .args(["keygen", "--out"])
            .arg(&key)
            .arg("--genesis")
            .arg(c.nodes[institution].home.join("genesis.json"))
            .output()
            .expect("running cradle keygen"),
    );
    let public = work.join(format!("{file}.key.pub"));
    let member = c.nodes[institution].home.join("node.key");
    ok(cradle(
        &c.nodes[institution].api,
        &member,
        &[
            "staff",
            "add",
            public.to_str().expect("UTF-8 path"),
            "--role",
            role,
            "--department",
            department,
            "--name",
            name,
            "--staff-number",
            &format!("S-{}", file.len()),
        ],
    ));
    Clinician { key, public }
}

/// A committed transaction as member `node` has it (`GET /v1/txs/{tx}`). The node that answered
/// a client may be a block ahead of this one, so it is given up to `wait` to commit it.
pub fn committed_tx(c: &Cluster, node: usize, tx: &str, wait: Duration) -> Value {
    let deadline = Instant::now() + wait;
    loop {
        match c.client(node).get_json(&format!("/v1/txs/{tx}")) {
            Ok(v) => return v,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "node {node} never committed transaction {tx}: {e}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
