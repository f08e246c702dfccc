//! Consent arguments and how grants are shown.

use anyhow::{Context, bail};
use cradle_ledger::ArchiveId;
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::tx::{Category, Scope};

pub(crate) fn parse_duration_ms(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a duration like 30d, 12h, 15m or 90s"))?;
    let unit_ms: u64 = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1_000,
        _ => bail!("{s:?} is not a duration like 30d, 12h, 15m or 90s"),
    };
    n.checked_mul(unit_ms)
        .filter(|&ms| ms > 0)
        .with_context(|| format!("{s:?} is not a positive duration"))
}

pub(crate) fn parse_scope(s: &str) -> anyhow::Result<Scope> {
    if s == "all" {
        return Ok(Scope::All);
    }
    if let Some(list) = s.strip_prefix("categories:") {
        let cats = list
            .split(',')
            .map(|c| c.trim().parse::<Category>())
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Scope::Categories(BoundedVec::new(cats)?));
    }
    if let Some(list) = s.strip_prefix("archives:") {
        let ids = list
            .split(',')
            .map(|c| ArchiveId::from_hex(c.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Scope::Archives(BoundedVec::new(ids)?));
    }
    bail!("--scope must be all, categories:CAT,CAT or archives:ID,ID")
}

pub(crate) fn grant_status(g: &cradle_ledger::state::GrantRecord, now: u64) -> &'static str {
    if g.revoked_at_ms.is_some() {
        "revoked"
    } else if now >= g.expires_at_ms {
        "expired"
    } else if now < g.valid_from_ms {
        "pending"
    } else {
        "active"
    }
}

pub(crate) fn scope_text(s: &Scope) -> String {
    match s {
        Scope::All => "all".into(),
        Scope::Categories(c) => format!(
            "categories:{}",
            c.iter().map(|c| c.code()).collect::<Vec<_>>().join(",")
        ),
        Scope::Archives(a) => format!("archives:{}", a.len()),
    }
}
