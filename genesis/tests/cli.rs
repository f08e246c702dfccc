//! Black-box tests of the `cradle-genesis` binary: run it as an operator would, in temporary
//! directories, and check its files, output and exit codes.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use cradle_genesis::addr::P2pAddr;
use cradle_genesis::{GenesisDoc, Home, NodeConfig, read_key_file};
use cradle_ledger::Role;

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cradle-genesis"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run cradle-genesis")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_exit(o: &Output, code: i32, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{what}: want exit {code}\nstdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

/// A failure's stderr is exactly one non-empty line.
fn assert_one_line_reason(o: &Output, want: &str) {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "want one line on stderr, got {err:?}");
    assert!(lines[0].contains(want), "want {want:?} in {err:?}");
}

#[test]
fn deterministic_localnet_is_byte_identical_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    for out in ["a", "b"] {
        let o = run(
            dir.path(),
            &[
                "localnet",
                "--members",
                "4",
                "--out",
                out,
                "--deterministic",
            ],
        );
        assert_exit(&o, 0, "localnet");
    }
    let a = std::fs::read(dir.path().join("a/genesis.json")).unwrap();
    let b = std::fs::read(dir.path().join("b/genesis.json")).unwrap();
    assert_eq!(a, b, "deterministic genesis files differ");
    for i in 0..4 {
        let node = format!("node{i}/genesis.json");
        assert_eq!(std::fs::read(dir.path().join("a").join(&node)).unwrap(), a);
        let ka = read_key_file(dir.path().join(format!("a/node{i}/node.key"))).unwrap();
        let kb = read_key_file(dir.path().join(format!("b/node{i}/node.key"))).unwrap();
        assert_eq!(ka.public_key(), kb.public_key());
    }
}

#[test]
fn localnet_homes_open_with_unique_loopback_ports_and_a_regulator() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &[
            "localnet",
            "--members",
            "4",
            "--out",
            "net",
            "--deterministic",
        ],
    );
    assert_exit(&o, 0, "localnet");
    let net = dir.path().join("net");
    let doc = GenesisDoc::load(net.join("genesis.json")).unwrap();
    let chain_id = doc.chain_id_hex();
    assert!(stdout(&o).contains(&chain_id), "summary lacks the chain id");
    assert!(
        stdout(&o).contains("https://127.0.0.1:26601"),
        "{}",
        stdout(&o)
    );

    let mut ports = HashSet::new();
    for i in 0..4 {
        let home_dir = net.join(format!("node{i}"));
        let home = Home::open(&home_dir).unwrap();
        assert_eq!(home.member_index, Some(i));
        assert_eq!(home.genesis.chain_id_hex(), chain_id);
        let want_role = if i < 2 { Role::Hospital } else { Role::Clinic };
        assert_eq!(home.member().unwrap().role, want_role);
        assert_eq!(home.member().unwrap().voting_power, 1);
        let mode = std::fs::metadata(home_dir.join("node.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "node{i}/node.key mode");

        let config = NodeConfig::load(home_dir.join("config.toml")).unwrap();
        let p2p = P2pAddr::parse(&config.p2p.listen).unwrap();
        let api = config.api_listen().unwrap();
        assert!(api.ip().is_loopback(), "{api}");
        assert_eq!(
            config.p2p.listen,
            format!("/ip4/127.0.0.1/tcp/{}", p2p.port),
            "node{i} p2p not on loopback"
        );
        assert!(ports.insert(p2p.port), "p2p port {} reused", p2p.port);
        assert!(ports.insert(api.port()), "api port {} reused", api.port());
    }
    assert_eq!(ports.len(), 8);

    let regulator = read_key_file(net.join("regulator/regulator.key")).unwrap();
    let (_, entry) = doc.member_by_key(&regulator.public_key()).unwrap();
    assert_eq!(entry.role, Role::Regulator);
    assert_eq!(entry.voting_power, 0);
    assert!(!net.join("node4").exists(), "the regulator got a node home");
    let consortium = doc.consortium().unwrap();
    assert_eq!(consortium.validators().len(), 4);
    assert!(
        consortium
            .validators()
            .index_of(&regulator.public_key().0)
            .is_none()
    );
}

#[test]
fn localnet_refuses_a_non_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("net")).unwrap();
    std::fs::write(dir.path().join("net/keep"), "x").unwrap();
    let o = run(dir.path(), &["localnet", "--members", "2", "--out", "net"]);
    assert_exit(&o, 1, "localnet into a non-empty dir");
    assert_one_line_reason(&o, "not empty");
}

#[test]
fn keygen_then_new_founds_a_consortium() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = run(d, &["keygen", "--out", "county.key"]);
    assert_exit(&o, 0, "keygen");
    let key = read_key_file(d.join("county.key")).unwrap();
    let out = stdout(&o);
    assert!(out.contains(&key.public_key().to_hex()), "{out}");
    assert!(out.contains(&key.x25519_public().to_hex()), "{out}");
    assert!(
        !out.contains(&hex::encode(*key.ed25519_seed())),
        "secret printed"
    );
    assert!(
        !out.contains(&hex::encode(*key.x25519_secret())),
        "secret printed"
    );
    assert!(d.join("county.key.pub").exists());

    let o = run(d, &["keygen", "--out", "county.key"]);
    assert_exit(&o, 1, "keygen over an existing key");
    assert_one_line_reason(&o, "refusing to overwrite");

    let seed = "22".repeat(32);
    let o = run(d, &["keygen", "--out", "clinic.key", "--seed-hex", &seed]);
    assert_exit(&o, 0, "seeded keygen");
    let clinic = read_key_file(d.join("clinic.key")).unwrap();
    let reg = cradle_ledger::Keypair::from_seed(&[3; 32]);
    let reg_spec = format!(
        "name=Regional Health Commission,role=regulator,pubkey={},x25519={}",
        reg.public_key(),
        reg.x25519_public()
    );
    let o = run(
        d,
        &[
            "new",
            "--chain-name",
            "county-maternal",
            "--member",
            "name=County Hospital,role=hospital,key=county.key.pub,p2p=/ip4/127.0.0.1/tcp/26600,api=127.0.0.1:8600",
            "--member",
            "name=Township Clinic,role=clinic,key=clinic.key,p2p=/ip4/127.0.0.1/tcp/26602,api=127.0.0.1:8602,power=2",
            "--member",
            &reg_spec,
            "--genesis-time-ms",
            "1735689600000",
            "--break-glass",
            "deny",
            "--timeout-propose-ms",
            "2000",
            "--out",
            "genesis.json",
        ],
    );
    assert_exit(&o, 0, "new");
    let doc = GenesisDoc::load(d.join("genesis.json")).unwrap();
    assert_eq!(stdout(&o).trim(), doc.chain_id_hex());
    assert_eq!(doc.members.len(), 3);
    assert_eq!(doc.members[0].public_key, key.public_key());
    assert_eq!(doc.members[1].x25519, clinic.x25519_public());
    assert_eq!(doc.members[1].voting_power, 2);
    assert_eq!(doc.members[2].voting_power, 0);
    assert!(!doc.policy.break_glass_allowed);
    assert_eq!(doc.consensus.timeouts.timeout_propose_ms, 2000);
    assert_eq!(doc.genesis_time_ms, 1_735_689_600_000);

    let o = run(d, &["show", "--genesis", "genesis.json"]);
    assert_exit(&o, 0, "show");
    assert!(stdout(&o).contains(&doc.chain_id_hex()));
    assert!(stdout(&o).contains("Township Clinic"));
    let o = run(d, &["validate", "--genesis", "genesis.json"]);
    assert_exit(&o, 0, "validate");
}

#[test]
fn new_refuses_an_invalid_consortium_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_exit(
        &run(
            d,
            &["keygen", "--out", "r.key", "--seed-hex", &"44".repeat(32)],
        ),
        0,
        "keygen",
    );
    let o = run(
        d,
        &[
            "new",
            "--chain-name",
            "x",
            "--member",
            "name=Commission,role=regulator,key=r.key.pub,power=3",
            "--out",
            "genesis.json",
        ],
    );
    assert_exit(&o, 1, "new with a validating regulator");
    assert_one_line_reason(&o, "regulators must have 0");
    assert!(!d.join("genesis.json").exists());
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [
        &["frobnicate"][..],
        &["localnet", "--out", "net"],
        &["localnet", "--members", "many", "--out", "net"],
        &["new", "--chain-name", "x", "--out", "g.json"],
        &[
            "new",
            "--chain-name",
            "x",
            "--member",
            "name=A,role=surgeon,key=k",
            "--out",
            "g.json",
        ],
        &[
            "new",
            "--chain-name",
            "x",
            "--member",
            "name=A",
            "--out",
            "g.json",
        ],
        &["show"],
    ] {
        let o = run(d, args);
        assert_exit(&o, 2, &format!("{args:?}"));
    }
}

#[test]
fn invalid_genesis_exits_1_with_a_one_line_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_exit(
        &run(
            d,
            &[
                "localnet",
                "--members",
                "2",
                "--out",
                "net",
                "--deterministic",
            ],
        ),
        0,
        "localnet",
    );
    let path = d.join("net/genesis.json");
    let mut doc = GenesisDoc::load(&path).unwrap();
    doc.chain_name.clear();
    doc.members[1].name = doc.members[0].name.clone();
    doc.consensus.timeouts.timeout_prevote_ms = 1;
    doc.save(&path).unwrap();

    let o = run(d, &["show", "--genesis", "net/genesis.json"]);
    assert_exit(&o, 1, "show of an invalid genesis");
    assert_one_line_reason(&o, "3 problems");

    let o = run(d, &["validate", "--genesis", "net/genesis.json"]);
    assert_exit(&o, 1, "validate of an invalid genesis");
    assert_one_line_reason(&o, "3 problem");
    let problems: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("chain name is empty")));
    assert!(problems.iter().any(|p| p.contains("both named")));
    assert!(problems.iter().any(|p| p.contains("timeout_prevote_ms")));

    std::fs::write(&path, "{ not json").unwrap();
    let o = run(d, &["validate", "--genesis", "net/genesis.json"]);
    assert_exit(&o, 1, "validate of malformed json");
    assert_one_line_reason(&o, "malformed json");

    // The node homes keep their own valid copy, but a home with a broken genesis fails too.
    std::fs::write(d.join("net/node0/genesis.json"), "{}").unwrap();
    assert!(Home::open(d.join("net/node0")).is_err());
}

#[test]
fn check_home_accepts_a_localnet_home_and_warns_about_a_readable_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_exit(
        &run(d, &["localnet", "--members", "1", "--out", "net"]),
        0,
        "localnet",
    );
    let o = run(d, &["check-home", "--home", "net/node0"]);
    assert_exit(&o, 0, "check-home");
    assert!(stdout(&o).contains("County Hospital 1"), "{}", stdout(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));

    let key = d.join("net/node0/node.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(d, &["check-home", "--home", "net/node0"]);
    assert_exit(&o, 0, "check-home with a readable key");
    assert!(
        stderr(&o).contains("readable by group or others"),
        "{}",
        stderr(&o)
    );

    // The regulator's key is a member but runs no node: it has no home to check.
    let o = run(d, &["check-home", "--home", "net/regulator"]);
    assert_exit(&o, 1, "check-home of the regulator folder");
    assert_one_line_reason(&o, "config.toml");
}
