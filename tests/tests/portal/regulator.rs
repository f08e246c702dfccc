//! The regional health commission's page (`/portal/app/regulator.html`) in a real headless
//! Chromium, against a real 4-member localnet whose genesis lists a regulator: an emergency
//! physician's break-glass read of a mother's record shows in the commission's list of accesses
//! awaiting review, with the physician's justification opened in the page with the commission's
//! key (and shown unreadable, not as text, when the node alters the access record that carries
//! it); the commission reviews it "not justified" in the page (the review signed
//! there with its key, imported into non-extractable keys); it leaves the list; the mother's own
//! page shows "Reviewed by the commission: not justified" in her history, still verified; the
//! weekly chart counts each institution's accesses, denials and break-glass; her history
//! opened in the commission's page verifies and downloads as FHIR; a node that alters an entry
//! is shown untrustworthy. Screenshots at 375 px and on a desktop, in English and Chinese.

use std::path::Path;
use std::sync::atomic::Ordering;

use cradle_tests::cli::{clinician, cradle, keygen, mother_with_archive, ok, shared_record};
use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::chromium::{
    Driver, READY, browser, screenshot_of, show_history, state_of, text, viewport, wait_for,
};
use crate::proxy::{Proxy, portal_localnet};
use crate::story::{Story, download};

const RECORD: &str = "Nona_Kris_5f72d2e8-c56b-4288-a829-c1c1ebfad423.json";
const JUSTIFICATION: &str = "postpartum haemorrhage on arrival, patient unconscious";

/// Sets the file input `id` to `path` and waits for the status `status` to say how it went.
async fn load_file(b: &Client, id: &str, path: &Path, status: &str) {
    let input = b.find(Locator::Id(id)).await.unwrap();
    input.send_keys(path.to_str().unwrap()).await.unwrap();
    let state = wait_for(b, &format!("{id} to load"), &state_of(status)).await;
    assert_eq!(
        state,
        "ok",
        "{id}: {}",
        text(b, &format!("#{status}")).await
    );
}

async fn click(b: &Client, id: &str) {
    b.find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Asks for the accesses awaiting review; the verdict and the list's text, once every listed
/// justification is opened or refused.
async fn pending(b: &Client) -> (String, String) {
    b.execute(
        "document.getElementById('pending-verdict').dataset.state = 'none'",
        vec![],
    )
    .await
    .unwrap();
    click(b, "pending-load").await;
    let verdict = wait_for(
        b,
        "the pending list",
        "const v = document.getElementById('pending-verdict'); \
         const n = document.getElementById('node-status'); \
         if (n.dataset.state === 'error') return 'error: ' + n.textContent; \
         return v.dataset.state === 'none' ? null : v.dataset.state;",
    )
    .await;
    wait_for(
        b,
        "the justifications",
        "return [...document.querySelectorAll('#pending-list dd.justification')] \
         .every((d) => d.dataset.justification !== 'opening') ? 'settled' : null;",
    )
    .await;
    (verdict, text(b, "#pending-list").await)
}

/// How each listed justification is shown: `read`, `unreadable`, `unavailable`, `sealed`.
async fn justification_states(b: &Client) -> Value {
    b.execute(
        "return [...document.querySelectorAll('#pending-list dd.justification')] \
         .map((d) => d.dataset.justification)",
        vec![],
    )
    .await
    .unwrap()
}

/// The regulator's verified view of a patient's history: the verdict.
async fn patient_history(b: &Client, patient: &str) -> String {
    b.execute(
        "document.getElementById('history-kind').value = 'patient'; \
         document.getElementById('history-kind').dispatchEvent(new Event('change'))",
        vec![],
    )
    .await
    .unwrap();
    let field = b.find(Locator::Id("history-key")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(patient).await.unwrap();
    show_history(b).await
}

#[test]
fn the_commission_reviews_a_break_glass_access_in_its_page_and_the_mother_sees_the_finding() {
    let (c, work, cert) = portal_localnet();
    let regulator_key = c.dir.path().join("net/regulator/regulator.key");
    assert!(
        c.genesis
            .members
            .iter()
            .any(|m| m.role == cradle_ledger::Role::Regulator),
        "the localnet's genesis lists no regulator"
    );
    let mother = mother_with_archive(&c, &work, 0, &shared_record(RECORD));
    let people = work.join("people");
    let physician = clinician(
        &c,
        &people,
        3,
        "emergency-physician",
        "emergency",
        "Wang Fang",
    )
    .key;
    let midwife = clinician(&c, &people, 2, "midwife", "midwifery", "Li Mei").key;
    let story = Story {
        c: &c,
        work: work.clone(),
        archive: mother.archive.clone(),
    };
    // A midwife with no grant is denied; the emergency physician breaks the glass.
    assert!(
        !story
            .read(&midwife, "TREAT", "denied.json", &[])
            .status
            .success()
    );
    ok(story.read(
        &physician,
        "ETREAT",
        "glass.json",
        &["--justification", JUSTIFICATION],
    ));
    let emergency = c.genesis.members[3].name.clone();
    let clinic = c.genesis.members[2].name.clone();
    let mother_pub: Value =
        serde_json::from_str(&std::fs::read_to_string(&mother.key).unwrap()).unwrap();
    let mother_hex = mother_pub["public_key"].as_str().unwrap().to_string();
    // The commission's CLI reads the justification, sealed for it, and the access record's
    // transaction hash, which names the entry a review is about.
    let audit = ok(cradle(
        &c.nodes[0].api,
        &regulator_key,
        &["audit", "--break-glass", "--verify", "--format", "json"],
    ));
    assert!(audit.contains(JUSTIFICATION), "{audit}");
    // Another mother lost her phone: the hospital that enrolled her recovers her. The
    // commission's page lists it from the same verified log as the break-glass accesses.
    let other = work.join("other");
    let lost = mother_with_archive(&c, &other, 0, &shared_record(RECORD));
    let phone_key = other.join("phone.key");
    keygen(&c.nodes[0].home.join("genesis.json"), &phone_key);
    ok(cradle(
        &c.nodes[0].api,
        &c.nodes[0].home.join("node.key"),
        &[
            "patient",
            "recover",
            lost.public.to_str().unwrap(),
            &format!("{}.pub", phone_key.display()),
        ],
    ));
    let hospital = c.genesis.members[0].name.clone();

    let proxy = Proxy::start(&c, 0, &cert);
    let shots = cradle_tests::cluster::bin_dir().join("portal-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let driver = Driver::start(&work.join("chromedriver-regulator.log"));
    let genesis_file = c.nodes[0].home.join("genesis.json");
    let origin = proxy.url.replace("127.0.0.1", "localhost");
    let page = format!("{origin}/portal/app/regulator.html");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let b = browser(&driver, &work.join("profile-regulator"), false).await;
        viewport(&b, 1280, 900).await;
        b.goto(&page).await.unwrap();
        wait_for(&b, "the page to start", READY).await;
        assert_eq!(text(&b, "h1").await, "Cradle: the commission's review");
        load_file(&b, "genesis-file", &genesis_file, "genesis-status").await;
        load_file(&b, "key-file", &regulator_key, "key-status").await;
        let extractable = b
            .execute_async(
                "const done = arguments[0]; const r = indexedDB.open('cradle-portal'); \
                 r.onsuccess = () => { const g = r.result.transaction('kv').objectStore('kv').get('regulator-keypair'); \
                 g.onsuccess = () => done([g.result.signing.privateKey.extractable, g.result.x25519.privateKey.extractable]); };",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(extractable, serde_json::json!([false, false]));

        // The break-glass access awaits review, verified from genesis.
        let (verdict, list) = pending(&b).await;
        assert_eq!(verdict, "verified", "{list}");
        assert!(list.contains(&emergency), "{list}");
        assert!(list.contains("Emergency physician") || list.contains("emergency"), "{list}");
        let recoveries = text(&b, "#recoveries-list").await;
        assert_eq!(
            b.find_all(Locator::Css("#recoveries-list li[data-outcome='recovered']")).await.unwrap().len(),
            1,
            "{recoveries}"
        );
        assert!(recoveries.contains(&hospital), "{recoveries}");
        assert_eq!(
            b.find_all(Locator::Css("#pending-list li.event")).await.unwrap().len(),
            1,
            "{list}"
        );
        // With the physician's own words, opened in the page with the commission's key from
        // the access record the verified event names.
        assert!(list.contains(JUSTIFICATION), "{list}");
        assert_eq!(justification_states(&b).await, serde_json::json!(["read"]), "{list}");
        screenshot_of(&b, "pending-section", 1280, &shots.join("regulator-pending-en-desktop.png")).await;

        // A node that alters the access record (one byte of the sealed text) shows no words:
        // the record is not the one the verified log names. The log itself still verifies.
        proxy.lie.store(true, Ordering::Relaxed);
        let (verdict, lied) = pending(&b).await;
        proxy.lie.store(false, Ordering::Relaxed);
        assert_eq!(verdict, "verified", "{lied}");
        assert!(!lied.contains(JUSTIFICATION), "{lied}");
        assert!(lied.contains("Sealed, unreadable"), "{lied}");
        assert_eq!(justification_states(&b).await, serde_json::json!(["unreadable"]), "{lied}");
        screenshot_of(&b, "pending-section", 1280, &shots.join("regulator-justification-unreadable-en-desktop.png")).await;
        let (_, list) = pending(&b).await;
        assert!(list.contains(JUSTIFICATION), "{list}");
        // In Chinese, the words are the clinician's, as she wrote them.
        click(&b, "lang-zh").await;
        let zh = text(&b, "#pending-list").await;
        assert!(zh.contains("紧急访问理由") && zh.contains(JUSTIFICATION), "{zh}");
        screenshot_of(&b, "pending-section", 1280, &shots.join("regulator-justification-zh-desktop.png")).await;
        click(&b, "lang-en").await;

        // The commission finds it not justified; the review is signed in the page.
        b.find(Locator::Css("#pending-list button[data-decision='not_justified']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let state = wait_for(&b, "the review", &state_of("review-status")).await;
        assert_eq!(state, "ok", "{}", text(&b, "#review-status").await);
        let (verdict, list) = pending(&b).await;
        assert_eq!(verdict, "verified", "{list}");
        assert!(list.contains("No break-glass access awaits review"), "{list}");
        // A second review of the same access: the ledger refuses it (asked through the CLI,
        // which the page's refusal path shares with every transaction).
        let entry = {
            let v: Value = serde_json::from_str(&audit).unwrap();
            let events = v["events"].as_array().or_else(|| v.as_array()).cloned().unwrap_or_default();
            events
                .iter()
                .find_map(|e| {
                    let e = e.get("event").unwrap_or(e);
                    e["tx_hash"].as_str().map(str::to_string)
                })
                .unwrap_or_else(|| panic!("no tx_hash in {audit}"))
        };
        let again = cradle(
            &c.nodes[0].api,
            &regulator_key,
            &["audit", "review", &entry, "--justified"],
        );
        assert!(!again.status.success());
        let why = String::from_utf8_lossy(&again.stderr);
        assert!(why.contains("already reviewed"), "{why}");

        // Her history in the commission's page: verified, with the finding; as FHIR.
        assert_eq!(patient_history(&b, &mother_hex).await, "verified");
        let history = text(&b, "#history-list").await;
        assert!(history.contains("Reviewed by the commission: not justified"), "{history}");
        assert!(history.contains(&clinic) && history.contains("Denied"), "{history}");
        let fhir = download(&b, "fhir-download").await;
        let fhir: Value = serde_json::from_str(&fhir).unwrap();
        assert_eq!(fhir["resourceType"], "Bundle");
        let entries = fhir["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 3, "{fhir}");
        assert!(
            entries.iter().any(|e| e["resource"]["outcomeDesc"]
                .as_str()
                .is_some_and(|d| d.starts_with("reviewed by the commission: not justified"))),
            "{fhir}"
        );

        // A node that alters her first entry is caught, in the commission's page too.
        proxy.lie.store(true, Ordering::Relaxed);
        let lied = patient_history(&b, &mother_hex).await;
        proxy.lie.store(false, Ordering::Relaxed);
        assert_eq!(lied, "untrustworthy");
        let code = b
            .execute("return document.getElementById('history-verdict').dataset.code", vec![])
            .await
            .unwrap();
        assert_eq!(code, "altered-entry");
        assert!(b.find_all(Locator::Css("#history-list li.event")).await.unwrap().is_empty());

        // The weekly counts: the emergency member's one break-glass, the clinic's one denial.
        click(&b, "chart-load").await;
        let state = wait_for(&b, "the chart", &state_of("chart-status")).await;
        assert_eq!(state, "ok", "{}", text(&b, "#chart-section").await);
        let totals = b
            .execute(
                "return [...document.querySelectorAll('.institution-chart')].map((f) => [f.dataset.institution, \
                 ...[...f.querySelectorAll('.legend li')].map((l) => l.dataset.series + '=' + l.dataset.total)])",
                vec![],
            )
            .await
            .unwrap();
        let totals: Vec<Vec<String>> = serde_json::from_value(totals).unwrap();
        let of = |name: &str| totals.iter().find(|t| t[0] == name).cloned().unwrap_or_default();
        assert_eq!(of(&emergency)[1..], ["permitted=0", "denied=0", "break_glass=1"], "{totals:?}");
        assert_eq!(of(&clinic)[1..], ["permitted=0", "denied=1", "break_glass=0"], "{totals:?}");
        assert_eq!(
            b.find_all(Locator::Css("#chart svg rect.bar.break_glass")).await.unwrap().len(),
            8 * (c.genesis.members.len() - 1)
        );
        screenshot_of(&b, "chart-section", 1280, &shots.join("regulator-chart-en-desktop.png")).await;
        click(&b, "lang-zh").await;
        assert!(text(&b, "h1").await.contains("卫生健康委员会"));
        screenshot_of(&b, "chart-section", 1280, &shots.join("regulator-chart-zh-desktop.png")).await;
        b.close().await.unwrap();

        // On a phone, in Chinese (remembered), the same page is usable at 375 px.
        let phone = browser(&driver, &work.join("profile-regulator"), true).await;
        phone.goto(&page).await.unwrap();
        wait_for(&phone, "the page to start", READY).await;
        assert!(text(&phone, "h1").await.contains("卫生健康委员会"));
        let (verdict, _) = pending(&phone).await;
        assert_eq!(verdict, "verified");
        screenshot_of(&phone, "pending-section", 375, &shots.join("regulator-pending-zh-phone.png")).await;
        click(&phone, "lang-en").await;
        click(&phone, "chart-load").await;
        wait_for(&phone, "the chart", &state_of("chart-status")).await;
        screenshot_of(&phone, "chart-section", 375, &shots.join("regulator-chart-en-phone.png")).await;
        phone.close().await.unwrap();

        // The mother's own page: the commission's finding in her history, which still verifies.
        let her = browser(&driver, &work.join("profile-mother"), false).await;
        viewport(&her, 1280, 900).await;
        her.goto(&format!("{origin}/portal/")).await.unwrap();
        wait_for(&her, "her page to start", READY).await;
        load_file(&her, "genesis-file", &genesis_file, "genesis-status").await;
        load_file(&her, "key-file", &mother.key, "key-status").await;
        assert_eq!(show_history(&her).await, "verified", "{}", text(&her, "#history-section").await);
        let list = text(&her, "#history-list").await;
        assert!(list.contains("Reviewed by the commission: not justified"), "{list}");
        assert!(list.contains("Emergency access (break-glass)"), "{list}");
        her.close().await.unwrap();

        // The mother the hospital recovered opens the page with the key file made on her new
        // phone (`cradle keygen`): the page learns whom it signs for from her verified history
        // (not the node's word), shows her history and alerts her to the recovery.
        let recovered = browser(&driver, &work.join("profile-recovered"), false).await;
        viewport(&recovered, 1280, 900).await;
        recovered.goto(&format!("{origin}/portal/")).await.unwrap();
        wait_for(&recovered, "her page to start", READY).await;
        load_file(&recovered, "genesis-file", &genesis_file, "genesis-status").await;
        load_file(&recovered, "key-file", &phone_key, "key-status").await;
        assert_eq!(
            show_history(&recovered).await,
            "verified",
            "{}",
            text(&recovered, "#history-section").await
        );
        let list = text(&recovered, "#history-list").await;
        assert!(list.contains("Your identity was recovered"), "{list}");
        let alert = text(&recovered, "#alert-banner").await;
        assert!(alert.contains(&format!("{hospital} recovered your identity")), "{alert}");
        screenshot_of(&recovered, "history-section", 1280, &shots.join("recovered-history-en-1280x900.png")).await;
        recovered.close().await.unwrap();
    });
}
