//! Her own record and her own key, in the page (issue #16), against a real 4-member localnet
//! through the recording proxy in front of node 0, the custodian of her record.
//!
//! She downloads and opens her record in the page: the bytes it offers are the FHIR bundle the
//! hospital uploaded, and her verified history then holds the access, made by herself ("You").
//! An emergency physician breaks the glass; at her next visit an alert tops the page and the
//! access's "Ask why" gives the reference she can quote (the block height the history proved)
//! and a message to copy. She rotates her key in the page: her old key file is refused by the
//! node afterwards, her records' keys are re-wrapped for the new key by the custodian, and her
//! history, her records and the download still work with the new key, on a desktop and on a
//! phone. Nothing she opened, and no secret of either key, left the page.

use std::path::PathBuf;

use cradle_tests::cli::{clinician, cradle, mother_with_archive, ok, shared_record};
use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::RECORD;
use crate::chromium::{
    Driver, READY, browser, screenshot, screenshot_of, show_history, state_of, text, viewport,
    wait_for,
};
use crate::leaks::{base64_forms, leaks};
use crate::proxy::{Proxy, portal_localnet};
use crate::story::{Story, download, records, verified_history};

const PASSPHRASE: &str = "jasmine tea at dawn, 2026";

/// Clicks "Download and open" on her only record and waits for the outcome: `(state, text)`.
async fn try_open(b: &Client) -> (String, String) {
    b.execute(
        "delete document.getElementById('download-status').dataset.state",
        vec![],
    )
    .await
    .unwrap();
    let html = b
        .execute(
            "return document.getElementById('records-section').innerHTML",
            vec![],
        )
        .await
        .unwrap();
    b.find(Locator::Css("#archive-list button.open-record"))
        .await
        .unwrap_or_else(|e| panic!("no button to open her record ({e}): {html}"))
        .click()
        .await
        .unwrap();
    let state = wait_for(b, "the record to open", &state_of("download-status")).await;
    (state, text(b, "#download-status").await)
}

/// Opens her record in the page, which must succeed; the opened bytes.
async fn open_record(b: &Client) -> String {
    let (state, said) = try_open(b).await;
    assert_eq!(state, "ok", "the download: {said}");
    download(b, "download-link").await
}

/// The page's next archive fetch gets the custodian's answer with one byte of the ciphertext
/// flipped, as a lying or broken node would send it.
const CORRUPT_NEXT_FETCH: &str = "const real = window.fetch; \
    window.fetch = async (...args) => { const r = await real(...args); \
      if (!String(args[0]).endsWith('/fetch')) return r; \
      window.fetch = real; const bytes = new Uint8Array(await r.arrayBuffer()); bytes[100] ^= 1; \
      return new Response(bytes, { status: r.status, headers: r.headers }); };";

/// The page's next transaction is committed, but its answer is lost on the way back.
const LOSE_TX_ANSWER: &str = "const real = window.fetch; \
    window.fetch = async (...args) => { if (!String(args[0]).startsWith('/v1/txs')) return real(...args); \
      window.fetch = real; const r = await real(...args); await r.arrayBuffer(); \
      throw new TypeError('Failed to fetch'); };";

/// Whether the page took up the key of a rotation committed without an answer.
const RESUMED: &str =
    "return document.getElementById('key-status').dataset.i18n === 'rotate.resumed' ? 'yes' : null";

/// Her own reads in the list, as the page names them.
async fn own_reads(b: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for li in b
        .find_all(Locator::Css(
            "#history-list li.event[data-self='true'][data-outcome='permitted']",
        ))
        .await
        .unwrap()
    {
        out.push(li.text().await.unwrap());
    }
    out
}

#[test]
fn a_mother_opens_her_own_record_asks_why_and_rotates_her_key_in_the_page() {
    let (c, work, cert) = portal_localnet();
    let record_file = shared_record(RECORD);
    let uploaded = std::fs::read_to_string(&record_file).unwrap();
    let mother = mother_with_archive(&c, &work, 0, &record_file);
    let physician = clinician(
        &c,
        &work.join("people"),
        3,
        "emergency-physician",
        "emergency",
        "Wang Fang",
    )
    .key;
    let emergency = c.genesis.members[3].name.clone();
    let story = Story {
        c: &c,
        work: work.clone(),
        archive: mother.archive.clone(),
    };
    let key_hex: Value =
        serde_json::from_str(&std::fs::read_to_string(&mother.key).unwrap()).unwrap();
    let proxy = Proxy::start(&c, 0, &cert);
    let shots: PathBuf = cradle_tests::cluster::bin_dir().join("portal-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let driver = Driver::start(&work.join("chromedriver.log"));
    let genesis_file = c.nodes[0].home.join("genesis.json");
    let profile = work.join("chromium-profile");
    let page = format!("{}/portal/", proxy.url.replace("127.0.0.1", "localhost"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut recovery_files = Vec::new();
    rt.block_on(async {
        let b = browser(&driver, &profile, false).await;
        viewport(&b, 1280, 900).await;
        b.goto(&page).await.unwrap();
        wait_for(&b, "the page to start", READY).await;
        let input = b.find(Locator::Id("genesis-file")).await.unwrap();
        input.send_keys(genesis_file.to_str().unwrap()).await.unwrap();
        wait_for(&b, "the genesis to load", &state_of("genesis-status")).await;
        let field = b.find(Locator::Id("key-passphrase")).await.unwrap();
        field.send_keys(PASSPHRASE).await.unwrap();
        let input = b.find(Locator::Id("key-file")).await.unwrap();
        input.send_keys(mother.key.to_str().unwrap()).await.unwrap();
        let state = wait_for(&b, "the key to load", &state_of("key-status")).await;
        assert_eq!(state, "ok", "key: {}", text(&b, "#key-status").await);
        recovery_files.push(recovery_href(&b).await);

        // Nobody read her record yet: a verified, empty history, and no alert.
        let (_, entries, _) = verified_history(&b).await;
        assert_eq!(entries, 0);
        assert!(!alert_shown(&b).await, "an alert with nothing to say");

        // She downloads and opens her record in the page: the hospital's FHIR bundle, byte
        // for byte, and a summary of it.
        let (archives, _, _) = records(&b).await;
        assert!(archives.contains("Prenatal visit"), "{archives}");
        let opened = open_record(&b).await;
        assert!(opened == uploaded, "the page opened {} bytes that are not the uploaded bundle", opened.len());
        let summary = text(&b, "#download-summary").await;
        let bundle: Value = serde_json::from_str(&uploaded).unwrap();
        let entries = bundle["entry"].as_array().unwrap().len();
        assert!(summary.contains(&format!("A FHIR Bundle with {entries} entries")), "{summary}");
        let said = text(&b, "#download-status").await;
        assert!(said.contains("(verified)"), "{said}");
        screenshot_of(&b, "records-section", 1280, &shots.join("record-opened-en-1280x900.png")).await;

        // Her history shows the access, by herself, verified.
        let (_, entries, _) = verified_history(&b).await;
        assert_eq!(entries, 1);
        let mine = own_reads(&b).await;
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert!(mine[0].contains("You") && mine[0].contains("Your own request (PATRQT)"), "{mine:?}");
        assert!(b.find_all(Locator::Css("#history-list li[data-self='true'] button.ask-why")).await.unwrap().is_empty(),
            "she is offered to ask herself why");

        // An emergency physician breaks the glass. At her next visit, an alert tops the page.
        ok(story.read(&physician, "ETREAT", "glass.json", &["--justification", "eclampsia on arrival, unconscious"]));
        b.refresh().await.unwrap();
        wait_for(&b, "the page to start again", READY).await;
        let (_, entries, new) = verified_history(&b).await;
        assert_eq!((entries, new), (2, 1));
        assert!(alert_shown(&b).await, "no alert for a new break-glass access");
        screenshot_of(&b, "alert-banner", 1280, &shots.join("alert-en-1280x900.png")).await;
        let alert = text(&b, "#alert-banner").await;
        assert!(alert.contains("1 emergency (break-glass) access(es) to your records since your last visit") && alert.contains(&emergency), "{alert}");
        // "Ask why": the reference is the block the verified history proved, and the message
        // names the institution, in her language.
        let glass = "#history-list li[data-outcome='break_glass']";
        let height = b.execute(&format!("return document.querySelector(\"{glass}\").dataset.height"), vec![]).await.unwrap();
        let height = height.as_str().unwrap().to_string();
        b.find(Locator::Css(&format!("{glass} button.ask-why"))).await.unwrap().click().await.unwrap();
        let reference = text(&b, &format!("{glass} .ask-reference")).await;
        assert!(reference.starts_with(&format!("Reference: block {height}, entry 2 of your access history")), "{reference}");
        let message = b.execute(&format!("return document.querySelector(\"{glass} .ask-message\").value"), vec![]).await.unwrap();
        let message = message.as_str().unwrap().to_string();
        assert!(message.contains(&emergency) && message.contains(&format!("block {height}")) && message.contains("Emergency treatment (ETREAT)"), "{message}");
        screenshot(&b, 1280, &shots.join("ask-why-en-1280x900.png")).await;
        b.find(Locator::Id("lang-zh")).await.unwrap().click().await.unwrap();
        assert!(text(&b, "#alert-banner").await.contains("紧急访问（破窗）"));
        b.find(Locator::Css(&format!("{glass} button.ask-why"))).await.unwrap().click().await.unwrap();
        let reference = text(&b, &format!("{glass} .ask-reference")).await;
        assert!(reference.starts_with(&format!("编号：区块 {height}，")), "{reference}");
        screenshot(&b, 1280, &shots.join("ask-why-zh-1280x900.png")).await;
        b.find(Locator::Id("lang-en")).await.unwrap().click().await.unwrap();

        // She rotates her key in the page, under a new recovery passphrase; the page waits
        // until the custodian has re-wrapped her record's key for the new one.
        let old_public = text(&b, "#key-public").await;
        let field = b.find(Locator::Id("key-passphrase")).await.unwrap();
        field.send_keys(PASSPHRASE).await.unwrap();
        b.execute("delete document.getElementById('rotate-status').dataset.state", vec![]).await.unwrap();
        b.find(Locator::Id("key-rotate")).await.unwrap().click().await.unwrap();
        let state = wait_for(&b, "the rotation and the re-wraps", &state_of("rotate-status")).await;
        let said = text(&b, "#rotate-status").await;
        assert_eq!(state, "ok", "the rotation: {said}");
        assert!(said.contains("All 1 of your record keys open with your new key"), "{said}");
        let new_public = text(&b, "#key-public").await;
        assert_ne!(new_public, old_public, "the page still shows the old key");
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
        let sealed = recovery_href(&b).await;
        assert!(sealed.contains(&new_public) && sealed != recovery_files[0], "no new recovery file for the new key");
        recovery_files.push(sealed);

        // Her old key file is refused by the node now.
        let refused = cradle(&c.nodes[0].api, &mother.key, &["consent", "list"]);
        assert!(!refused.status.success(), "the old key still reads: {}", String::from_utf8_lossy(&refused.stdout));
        eprintln!("the old key is refused: {}", String::from_utf8_lossy(&refused.stderr).trim());

        // Her history, her records and the download all still work with the new key. Her
        // verified history holds the rotation itself, naming the new key.
        let (list, entries, _) = verified_history(&b).await;
        assert_eq!(entries, 3, "{list}");
        let rotated = text(&b, "#history-list li.event[data-outcome='rotated']").await;
        assert!(rotated.contains("You replaced your keys") && rotated.contains(&new_public[..12]), "{rotated}");
        let (archives, _, _) = records(&b).await;
        assert!(archives.contains("Prenatal visit"), "{archives}");
        let opened = open_record(&b).await;
        assert!(opened == uploaded, "after the rotation the page opened other bytes");
        let (list, entries, _) = verified_history(&b).await;
        assert_eq!(entries, 4, "{list}");
        assert_eq!(own_reads(&b).await.len(), 2, "{list}");
        screenshot(&b, 1280, &shots.join("after-rotation-en-1280x900.png")).await;
        b.close().await.unwrap();

        // The physician breaks the glass again. On her phone (the same profile) the alert
        // and "Ask why" fit 375 px, in Chinese.
        ok(story.read(&physician, "ETREAT", "glass-2.json", &["--justification", "seizure at home"]));
        let b = browser(&driver, &profile, true).await;
        b.goto(&page).await.unwrap();
        wait_for(&b, "the page on a phone", READY).await;
        assert_eq!(text(&b, "#key-public").await, new_public);
        assert_eq!(show_history(&b).await, "verified");
        assert!(alert_shown(&b).await, "no alert on her phone");
        b.find(Locator::Id("lang-zh")).await.unwrap().click().await.unwrap();
        let alert = text(&b, "#alert-banner").await;
        assert!(alert.contains("自您上次访问以来，您的档案有 1 次紧急访问（破窗）"), "{alert}");
        screenshot_of(&b, "alert-banner", 375, &shots.join("alert-zh-375x812.png")).await;
        b.find(Locator::Css(&format!("{glass} button.ask-why"))).await.unwrap().click().await.unwrap();
        screenshot(&b, 375, &shots.join("ask-why-zh-375x812.png")).await;
        records(&b).await;
        let opened = open_record(&b).await;
        assert!(opened == uploaded, "on her phone the page opened other bytes");
        screenshot_of(&b, "records-section", 375, &shots.join("record-opened-zh-375x812.png")).await;
        // A node that sends other bytes than the ledger registered: refused, nothing opened.
        b.execute(CORRUPT_NEXT_FETCH, vec![]).await.unwrap();
        let (state, said) = try_open(&b).await;
        assert_eq!(state, "error", "altered bytes were opened: {said}");
        assert!(said.contains("SHA-256 不符"), "{said}");
        let hidden = b.execute("return document.getElementById('download-link').hidden", vec![]).await.unwrap();
        assert_eq!(hidden, Value::Bool(true), "the altered record is offered");

        // Another key change, whose answer is lost on the network after it committed: the
        // page says it failed and keeps the key it had; at her next visit it finds the new
        // key committed and takes it up, with its recovery file.
        b.execute(LOSE_TX_ANSWER, vec![]).await.unwrap();
        let field = b.find(Locator::Id("key-passphrase")).await.unwrap();
        field.send_keys(PASSPHRASE).await.unwrap();
        b.execute("delete document.getElementById('rotate-status').dataset.state", vec![]).await.unwrap();
        b.find(Locator::Id("key-rotate")).await.unwrap().click().await.unwrap();
        let state = wait_for(&b, "the rotation without an answer", &state_of("rotate-status")).await;
        assert_eq!(state, "error", "{}", text(&b, "#rotate-status").await);
        assert_eq!(text(&b, "#key-public").await, new_public, "switched keys without an answer");
        b.refresh().await.unwrap();
        wait_for(&b, "the committed key taken up", RESUMED).await;
        let third = text(&b, "#key-public").await;
        assert!(third != new_public && third != old_public, "{third}");
        let sealed = recovery_href(&b).await;
        assert!(sealed.contains(&third), "the recovery file is not the new key's");
        recovery_files.push(sealed);
        assert_eq!(show_history(&b).await, "verified");
        b.close().await.unwrap();
    });

    // What left the page: signed requests, never a secret of her old key, the recovery files,
    // nor anything of the record she opened.
    let requests = proxy.recorded();
    let fetches = requests
        .iter()
        .filter(|r| String::from_utf8_lossy(r).starts_with("POST /v1/archives/"))
        .count();
    assert_eq!(fetches, 4, "the page fetched her record {fetches} times");
    let mut secrets = Vec::new();
    for field in ["ed25519_secret", "x25519_secret"] {
        let hex_secret = key_hex[field].as_str().unwrap().to_string();
        secrets.extend(base64_forms(&hex::decode(&hex_secret).unwrap()));
        secrets.push(hex_secret);
    }
    for file in &recovery_files {
        let sealed: Value = serde_json::from_str(file).unwrap();
        secrets.push(sealed["sealed"].as_str().unwrap()[..40].to_string());
    }
    // The bundle's Patient id, which only its plaintext holds.
    let patient_id = "feb67a40-0da5-4855-a7b2-2b5e11f48c5f";
    assert!(uploaded.contains(patient_id));
    secrets.push(patient_id.to_string());
    assert!(
        !leaks(&requests, std::slice::from_ref(&mother.archive)).is_empty(),
        "the search finds nothing at all"
    );
    let found = leaks(&requests, &secrets);
    assert!(
        found.is_empty(),
        "the page sent what must stay in it: {found:?}"
    );
}

/// Whether the break-glass alert is shown.
async fn alert_shown(b: &Client) -> bool {
    let shown = b
        .execute(
            "const a = document.getElementById('alert-banner'); return Boolean(a && !a.hidden)",
            vec![],
        )
        .await
        .unwrap();
    shown.as_bool().unwrap()
}

/// Her recovery file, as the page offers it for download.
async fn recovery_href(b: &Client) -> String {
    download(b, "recovery-download").await
}
