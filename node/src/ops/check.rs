//! `cradle-node check --home DIR`: the key, genesis and config are read and validated as a
//! start would, and the parameters the node would run with are printed, one per line, so an
//! operator sees the effective values (defaults included) before the first start or after an
//! edit. Nothing is written; the data directory is only looked at.

use std::fmt::Write as _;

use cradle_genesis::Home;

/// The report `check` prints for a home that opened (key, genesis and config valid).
pub fn report(home: &Home) -> String {
    let c = &home.config;
    let g = &home.genesis;
    let mut out = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(out, "{k:<28} {v}");
    };
    line("home", home.dir.display().to_string());
    match home.member() {
        Some(member) => {
            line(
                "member",
                format!("{} ({})", member.name, member.role.as_str()),
            );
            line("voting power", member.voting_power.to_string());
        }
        None => line(
            "member",
            format!(
                "{} (joining: takes part once the ledger admits its key)",
                home.member_name()
            ),
        ),
    }
    line("member key", home.keypair.public_key().to_hex());
    line("chain", format!("{} {}", g.chain_name, g.chain_id_hex()));
    line("members", g.members.len().to_string());
    line("validators", g.validators().count().to_string());
    line("p2p.listen", c.p2p.listen.clone());
    line(
        "api.listen",
        format!(
            "{} ({})",
            c.api.listen,
            if c.api.plaintext {
                "plain HTTP"
            } else {
                "TLS 1.3"
            }
        ),
    );
    line(
        "api.metrics_listen",
        c.api
            .metrics_listen
            .clone()
            .unwrap_or_else(|| "none (no metrics, readyz or online backup)".into()),
    );
    line("api.member_tls", c.api.member_tls.to_string());
    line(
        "api.connections",
        format!(
            "{} in all, {} per address",
            c.api.connections_max, c.api.connections_per_ip_max
        ),
    );
    line(
        "api.header_read_timeout_ms",
        c.api.header_read_timeout_ms.to_string(),
    );
    line("api.answer_stall_ms", c.api.answer_stall_ms.to_string());
    line("api.rate", format!("{:?}", c.api.rate));
    line(
        "mempool",
        format!(
            "{} txs / {} bytes ordinary, {} txs / {} bytes access records",
            c.mempool.txs_max,
            c.mempool.bytes_max,
            c.mempool.access_txs_max,
            c.mempool.access_bytes_max
        ),
    );
    line("archives", format!("{:?}", c.archives));
    line("data_dir", home.data_dir().display().to_string());
    line(
        "data",
        if home.data_dir().join("ledger").is_dir() {
            "a ledger is present (the node resumes from it)".into()
        } else {
            "no ledger yet (the node starts from genesis)".into()
        },
    );
    line("log", format!("{} ({:?})", c.log, c.log_format));
    line("shutdown_grace_ms", c.shutdown_grace_ms.to_string());
    line("consensus", format!("{:?}", g.consensus));
    line("policy", format!("{:?}", g.policy));
    line("limits", format!("{:?}", g.limits));
    out
}
