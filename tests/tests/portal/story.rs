//! The mother's actions in the page, and the consortium's side of them through the `cradle` CLI:
//! her records and consents, a grant made in the page that a clinic's midwife then reads with,
//! its revocation and the denial after it, a governance vote her page must follow, and a key
//! made in the page with its recovery file and QR code.

use std::path::{Path, PathBuf};
use std::process::Output;

use cradle_tests::Cluster;
use cradle_tests::cli::{cradle, ok};
use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::chromium::{screenshot_of, show_history, state_of, text, wait_for};

/// The cluster, the mother's archive, and where the test writes its files.
pub(crate) struct Story<'a> {
    pub(crate) c: &'a Cluster,
    pub(crate) work: PathBuf,
    pub(crate) archive: String,
}

impl Story<'_> {
    /// A clinician (`key`) asks the custodian's node (hospital 1) for the mother's archive.
    pub(crate) fn read(&self, key: &Path, purpose: &str, out: &str, extra: &[&str]) -> Output {
        let out = self.work.join(out);
        let out_s = out.to_str().unwrap().to_string();
        let mut args = vec![
            "archive",
            "get",
            &self.archive,
            "--purpose",
            purpose,
            "--out",
            &out_s,
        ];
        args.extend_from_slice(extra);
        cradle(&self.c.nodes[0].api, key, &args)
    }

    /// `cradle governance ARGS --format json` as member `i`; the parsed answer.
    fn governance(&self, i: usize, args: &[&str]) -> Value {
        let mut all = vec!["governance"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        let key = self.c.nodes[i].home.join("node.key");
        let out = ok(cradle(&self.c.nodes[i].api, &key, &all));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Three of the four members vote hospital 1's voting power from 1 to 2: a new member set
    /// from its activation height on, which the page must follow to verify any later header.
    /// Returns the activation height, once the chain is past it.
    pub(crate) fn vote_a_new_member_set(&self) -> u64 {
        let name = self.c.genesis.members[0].name.clone();
        let proposed = self.governance(0, &["propose", "set-power", &name, "2"]);
        let id = proposed["proposal"].as_str().unwrap().to_string();
        self.governance(1, &["approve", &id]);
        let adopted = self.governance(2, &["approve", &id]);
        assert_eq!(adopted["now"]["status"], "adopted", "{adopted}");
        let activation = adopted["now"]["activation_height"].as_u64().unwrap();
        self.c
            .wait_height(0, activation + 1, crate::chromium::WAIT)
            .unwrap();
        activation
    }
}

/// Clears the status `status`, clicks `button`, and waits for the status to say how it went:
/// `(state, text)`.
pub(crate) async fn act(b: &Client, button: &str, status: &str) -> (String, String) {
    b.execute(
        &format!("delete document.getElementById('{status}').dataset.state"),
        vec![],
    )
    .await
    .unwrap();
    b.find(Locator::Id(button))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let state = wait_for(b, &format!("#{status} to settle"), &state_of(status)).await;
    (state, text(b, &format!("#{status}")).await)
}

/// Her records and consents as the page lists them: `(archives, grants in force, past grants)`.
pub(crate) async fn records(b: &Client) -> (String, String, String) {
    let (state, said) = act(b, "records-load", "records-status").await;
    assert_eq!(state, "ok", "{said}");
    (
        text(b, "#archive-list").await,
        text(b, "#grant-list").await,
        text(b, "#grant-past-list").await,
    )
}

/// She grants member `grantee` (by its identity key) treatment access to all her records for
/// 30 days, in the page; the grant's id.
pub(crate) async fn grant(b: &Client, grantee_hex: &str) -> String {
    b.execute(
        &format!("document.getElementById('grant-grantee').value = '{grantee_hex}'"),
        vec![],
    )
    .await
    .unwrap();
    let (state, said) = act(b, "grant-submit", "grant-status").await;
    assert_eq!(state, "ok", "the grant: {said}");
    let id = b
        .execute(
            "return document.getElementById('grant-status').dataset.grant",
            vec![],
        )
        .await
        .unwrap();
    id.as_str().unwrap().to_string()
}

/// She revokes grant `id` with its button in her list of consents; the page's message.
pub(crate) async fn revoke(b: &Client, id: &str) -> String {
    b.execute(
        "delete document.getElementById('grant-status').dataset.state",
        vec![],
    )
    .await
    .unwrap();
    b.find(Locator::Css(&format!("button.revoke[data-grant='{id}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let state = wait_for(b, "the revocation", &state_of("grant-status")).await;
    let said = text(b, "#grant-status").await;
    assert_eq!(state, "ok", "the revocation: {said}");
    said
}

/// Her history, verified, and its entries: `(list text, number of entries, number marked new)`.
pub(crate) async fn verified_history(b: &Client) -> (String, usize, usize) {
    let verdict = show_history(b).await;
    assert_eq!(verdict, "verified", "{}", text(b, "#history-section").await);
    let entries = b
        .find_all(Locator::Css("#history-list li.event"))
        .await
        .unwrap()
        .len();
    let new = b
        .find_all(Locator::Css("#history-list li.event[data-new='true']"))
        .await
        .unwrap()
        .len();
    (text(b, "#history-list").await, entries, new)
}

/// The text of a `data:` link the page offers for download.
pub(crate) async fn download(b: &Client, id: &str) -> String {
    let href = b
        .execute(
            &format!("return document.getElementById('{id}').getAttribute('href')"),
            vec![],
        )
        .await
        .unwrap();
    let href = href.as_str().unwrap_or_default().to_string();
    let b64 = href
        .strip_prefix("data:application/json;base64,")
        .unwrap_or_else(|| panic!("#{id} is not a data link: {href}"));
    String::from_utf8(crate::leaks::base64_decode(b64)).unwrap()
}

/// Who the desktop story needs: the clinic's midwife, the obstetrician, and the names shown.
pub(crate) struct People<'a> {
    pub(crate) midwife: &'a Path,
    pub(crate) obstetrician: &'a Path,
    pub(crate) custodian: &'a str,
    pub(crate) hospital: &'a str,
    pub(crate) clinic: &'a str,
}

/// On the desktop, after four accesses (three of them new since her last visit): her records
/// and consents; she grants the clinic in the page, its midwife reads, and the read appears in
/// her verified history; she revokes it in the page, and the midwife is denied. Three members
/// then vote a new member set; after its activation a read still shows in her history as
/// verified, checked against the set the page followed.
pub(crate) async fn consent_and_governance(
    b: &Client,
    story: &Story<'_>,
    people: &People<'_>,
    shots: &Path,
) {
    let (archives, grants, _) = records(b).await;
    assert!(
        archives.contains("Prenatal visit") && archives.contains(people.custodian),
        "{archives}"
    );
    assert!(grants.contains(people.hospital), "{grants}");
    assert!(!grants.contains(people.clinic), "{grants}");

    // The grant, made in the page: her archive key re-wrapped for the clinic, signed, committed.
    let clinic_key = story.c.genesis.members[2].public_key.to_hex();
    let id = grant(b, &clinic_key).await;
    let grants = text(b, "#grant-list").await;
    assert!(grants.contains(people.clinic), "{grants}");
    ok(story.read(people.midwife, "TREAT", "granted.json", &[]));
    let (list, entries, new) = verified_history(b).await;
    assert_eq!((entries, new), (5, 2), "{list}");
    let first = text(b, "#history-list li.event").await;
    assert!(
        first.contains(people.clinic) && first.contains("Permitted") && first.contains("New"),
        "{first}"
    );
    screenshot_of(
        b,
        "records-section",
        1280,
        &shots.join("consents-en-1280x900.png"),
    )
    .await;

    // Revoked in the page: the midwife is denied from the next block on, and her history says so.
    let said = revoke(b, &id).await;
    assert!(said.contains("Revoked"), "{said}");
    let past = text(b, "#grant-past-list").await;
    assert!(
        past.contains(people.clinic) && past.contains("revoked"),
        "{past}"
    );
    let denied = story.read(people.midwife, "TREAT", "revoked.json", &[]);
    assert!(
        !denied.status.success(),
        "the midwife read after the revocation"
    );
    let (_, entries, new) = verified_history(b).await;
    assert_eq!((entries, new), (6, 3));
    let first = text(b, "#history-list li.event").await;
    assert!(
        first.contains(people.clinic) && first.contains("Denied"),
        "{first}"
    );

    // A refusal is shown as the ledger gives it: revoking the same grant again is refused.
    b.execute(
        &format!(
            "const e = document.createElement('button'); e.className = 'revoke'; \
             e.dataset.grant = '{id}'; e.id = 'again'; e.textContent = 'again'; \
             document.getElementById('grant-list').append(e);"
        ),
        vec![],
    )
    .await
    .unwrap();
    let (state, said) = act(b, "again", "grant-status").await;
    assert_eq!(state, "error", "{said}");
    assert!(said.contains("The ledger refused it"), "{said}");

    // A governance vote changes the member set; the page follows it and still verifies.
    let activation = story.vote_a_new_member_set();
    ok(story.read(people.obstetrician, "TREAT", "after-vote.json", &[]));
    let (list, entries, _) = verified_history(b).await;
    assert_eq!(entries, 7, "{list}");
    let height: u64 = b
        .execute(
            "return document.getElementById('history-detail').textContent.match(/block (\\d+)/)[1]",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        height > activation,
        "the verified block {height} is before the change at {activation}"
    );
    let kept = b
        .execute_async(
            "const done = arguments[0]; const r = indexedDB.open('cradle-portal'); \
             r.onsuccess = () => { const g = r.result.transaction('kv').objectStore('kv').getAllKeys(); \
             g.onsuccess = () => done(g.result.filter((k) => String(k).startsWith('sets:')).length); };",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept, 1, "the verified member sets are kept in IndexedDB");
}
