//! A key made in the page: its QR code, which a clinic enrols her from, and its recovery file,
//! saved, then opened after the browser forgot the key.

use std::path::Path;

use cradle_tests::cli::{cradle, ok};
use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::chromium::{READY, screenshot_of, state_of, text, wait_for};
use crate::story::{Story, download, verified_history};

const PASSPHRASE: &str = "lotus blossom by the river 2026";

/// Clears the `data-state` of `id`, so that the next outcome is waited for.
async fn clear(b: &Client, id: &str) {
    b.execute(
        &format!("delete document.getElementById('{id}').dataset.state"),
        vec![],
    )
    .await
    .unwrap();
}

async fn set_passphrase(b: &Client, value: &str) {
    let field = b.find(Locator::Id("key-passphrase")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// In a browser of its own (`page` in a fresh profile): a second mother makes her key in the
/// page under a recovery passphrase. Its QR code carries her public key file with a proof for
/// this chain, which the clinic's `cradle patient enrol` takes; her (empty) history then
/// verifies. She saves her recovery file, the browser forgets her key, a wrong passphrase is
/// refused, and the right one brings back the same key, still non-extractable.
pub(crate) async fn key_made_in_the_page(
    b: &Client,
    story: &Story<'_>,
    page: &str,
    genesis_file: &Path,
    shots: &Path,
) {
    b.goto(page).await.unwrap();
    wait_for(b, "the page to start", READY).await;
    let input = b.find(Locator::Id("genesis-file")).await.unwrap();
    input
        .send_keys(genesis_file.to_str().unwrap())
        .await
        .unwrap();
    wait_for(b, "the genesis to load", &state_of("genesis-status")).await;

    // No key without a recovery passphrase.
    clear(b, "key-status").await;
    b.find(Locator::Id("key-create"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        wait_for(b, "a refusal", &state_of("key-status")).await,
        "error"
    );
    set_passphrase(b, PASSPHRASE).await;
    clear(b, "key-status").await;
    b.find(Locator::Id("key-create"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let state = wait_for(b, "the new key", &state_of("key-status")).await;
    assert_eq!(state, "ok", "{}", text(b, "#key-status").await);
    let public = text(b, "#key-public").await;
    wait_for(
        b,
        "the QR code",
        "const q = document.querySelector('#key-qr svg'); return q ? q.dataset.modules : null",
    )
    .await;
    let modules: u32 = b
        .find(Locator::Css("#key-qr svg"))
        .await
        .unwrap()
        .attr("data-modules")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!(modules >= 21, "a QR code has at least 21 modules a side");
    let shown = b
        .find(Locator::Css("#key-qr svg"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap();
    assert!(shown, "the QR code is not visible");
    let content = b
        .find(Locator::Id("key-qr"))
        .await
        .unwrap()
        .attr("data-content")
        .await
        .unwrap()
        .unwrap();
    let file: Value = serde_json::from_str(&content).unwrap();
    assert_eq!(file["public_key"], public.as_str());
    assert_eq!(
        file["enrolment"]["chain_id"],
        hex::encode(story.c.genesis.chain_id())
    );
    // The saved public key file is the QR code's content.
    assert_eq!(download(b, "key-pub-download").await, content);
    screenshot_of(
        b,
        "key-section",
        1280,
        &shots.join("key-qr-en-1280x900.png"),
    )
    .await;

    // The clinic enrols her from what the QR code holds, with the CLI as it would after a scan.
    let pub_file = story.work.join("page-mother.key.pub");
    std::fs::write(&pub_file, &content).unwrap();
    let clinic = story.c.nodes[2].home.join("node.key");
    ok(cradle(
        &story.c.nodes[2].api,
        &clinic,
        &["patient", "enrol", pub_file.to_str().unwrap()],
    ));
    let (_, entries, _) = verified_history(b).await;
    assert_eq!(entries, 0, "a new mother's history is empty");

    // Her recovery file, sealed when the key was made: the page keeps only the sealed file.
    let recovery = download(b, "recovery-download").await;
    let sealed: Value = serde_json::from_str(&recovery).unwrap();
    assert_eq!(sealed["kind"], "cradle-recovery");
    assert_eq!(sealed["public_key"], public.as_str());
    assert_eq!(sealed["kdf"]["iterations"], 600_000);
    let recovery_file = story.work.join("page-mother.recovery.json");
    std::fs::write(&recovery_file, &recovery).unwrap();

    // The browser forgets her key; a wrong passphrase does not open the file.
    b.find(Locator::Id("key-forget"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        b,
        "the key to be forgotten",
        "return document.getElementById('key-public-box').hidden ? 'gone' : null",
    )
    .await;
    set_passphrase(b, "not my passphrase at all").await;
    clear(b, "key-status").await;
    let input = b.find(Locator::Id("recovery-file")).await.unwrap();
    input
        .send_keys(recovery_file.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        wait_for(b, "the wrong passphrase", &state_of("key-status")).await,
        "error"
    );
    let said = text(b, "#key-status").await;
    assert!(said.contains("does not open"), "{said}");

    // The right one brings her key back, as a non-extractable key again.
    set_passphrase(b, PASSPHRASE).await;
    clear(b, "key-status").await;
    let input = b.find(Locator::Id("recovery-file")).await.unwrap();
    input
        .send_keys(recovery_file.to_str().unwrap())
        .await
        .unwrap();
    let state = wait_for(b, "the restored key", &state_of("key-status")).await;
    assert_eq!(state, "ok", "{}", text(b, "#key-status").await);
    assert_eq!(text(b, "#key-public").await, public);
    let extractable = b
        .execute_async(
            "const done = arguments[0]; const r = indexedDB.open('cradle-portal'); \
             r.onsuccess = () => { const g = r.result.transaction('kv').objectStore('kv').get('keypair'); \
             g.onsuccess = () => done([g.result.signing.privateKey.extractable, g.result.x25519.privateKey.extractable]); };",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(extractable, serde_json::json!([false, false]));
    let (_, entries, _) = verified_history(b).await;
    assert_eq!(entries, 0);
}
