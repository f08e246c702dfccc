//! The browser portal in a real headless Chromium, against a real 4-member localnet.
//!
//! A mother enrolled by hospital 1 grants hospital 2, which reads her record; the clinic asks
//! without a grant and is denied. In the page served by the nodes (through a recording proxy in
//! front of node 0), she loads her genesis file and her `cradle keygen` key file, opens her
//! access history and sees both accesses "verified"; the proxy then alters the answer and the
//! page says "untrustworthy" with the reason. The page is switched to Simplified Chinese, and
//! screenshots are taken at a phone's width (375x812) and a desktop's (1280x900). Every byte
//! the page sent went through the proxy, and none of them holds a secret of her key file.
//!
//! In the page she then lists her records and consents, grants the clinic (her archive key
//! re-wrapped in the page), whose midwife reads, and the read shows in her history marked new
//! since her last visit; she revokes the grant in the page and the midwife is denied; a second
//! revocation shows the ledger's refusal. Three members vote a new member set, and her history
//! after its activation still verifies in the page, which followed the set, on the desktop and
//! on her phone. A second mother makes her key in the page under a recovery passphrase: its QR
//! code holds the public key file the clinic enrols her from, and her recovery file brings the
//! key back after the browser forgot it.
//!
//! Chromium is launched with `--ignore-certificate-errors`: each node's TLS certificate is
//! self-signed over its member key (the CLI pins it from genesis, a browser cannot). A real
//! deployment gives browsers a CA-issued certificate with the node's `api.tls_cert_file`.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod chromium;
mod leaks;
mod mother;
mod proxy;
mod recovery;
mod regulator;
mod serving;
mod story;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use cradle_tests::cli::{clinician, cradle, mother_with_archive, ok, shared_record};
use fantoccini::Locator;
use serde_json::{Value, json};

use chromium::{
    Driver, READY, ZH_TITLE, browser, same_origin_only, screenshot, show_history, state_of, text,
    verdict_code, viewport, wait_for,
};
use leaks::{base64_forms, leaks};
use proxy::{Proxy, portal_localnet};
use serving::check_static_serving;
use story::{People, Story, consent_and_governance, verified_history};

const RECORD: &str = "Nona_Kris_5f72d2e8-c56b-4288-a829-c1c1ebfad423.json";

#[test]
fn a_mother_sees_who_read_her_record_verified_in_her_browser_and_a_lying_node_is_caught() {
    let (c, work, cert) = portal_localnet();
    let mother = mother_with_archive(&c, &work, 0, &shared_record(RECORD));
    // She grants hospital 2, whose obstetrician reads her record; a midwife of the clinic asks
    // with no grant and is denied; an emergency physician of the fourth member breaks the glass.
    let hospital = c.genesis.members[1].name.clone();
    let clinic = c.genesis.members[2].name.clone();
    let emergency = c.genesis.members[3].name.clone();
    ok(cradle(
        &c.nodes[0].api,
        &mother.key,
        &[
            "consent",
            "grant",
            "--grantee",
            &hospital,
            "--purpose",
            "TREAT",
            "--scope",
            "all",
            "--expires",
            "30d",
        ],
    ));
    let people = work.join("people");
    let obstetrician = clinician(&c, &people, 1, "obstetrician", "obstetrics", "Zhang Wei").key;
    let midwife = clinician(&c, &people, 2, "midwife", "midwifery", "Li Mei").key;
    let physician = clinician(
        &c,
        &people,
        3,
        "emergency-physician",
        "emergency",
        "Wang Fang",
    )
    .key;
    // Asked of the custodian's node (hospital 1), which holds the archive.
    let story = Story {
        c: &c,
        work: work.clone(),
        archive: mother.archive.clone(),
    };
    let read =
        |key: &Path, purpose: &str, out: &str, extra: &[&str]| story.read(key, purpose, out, extra);
    ok(read(&obstetrician, "TREAT", "read.json", &[]));
    let denied = read(&midwife, "TREAT", "denied.json", &[]);
    assert!(!denied.status.success(), "the clinic read without a grant");
    ok(read(
        &physician,
        "ETREAT",
        "glass.json",
        &[
            "--justification",
            "postpartum haemorrhage on arrival, patient unconscious",
        ],
    ));

    check_static_serving(&c.nodes[0].api);
    let proxy = Proxy::start(&c, 0, &cert);
    let shots: PathBuf = cradle_tests::cluster::bin_dir().join("portal-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let driver = Driver::start(&work.join("chromedriver.log"));
    let genesis_file = c.nodes[0].home.join("genesis.json");
    let mut other: Value =
        serde_json::from_str(&std::fs::read_to_string(&genesis_file).unwrap()).unwrap();
    other["chain_name"] = json!("cradle-elsewhere");
    let other_genesis = work.join("other-genesis.json");
    std::fs::write(&other_genesis, other.to_string()).unwrap();
    let key_hex: Value =
        serde_json::from_str(&std::fs::read_to_string(&mother.key).unwrap()).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let profile = work.join("chromium-profile");
    let page = format!("{}/portal/", proxy.url.replace("127.0.0.1", "localhost"));
    rt.block_on(async {
        // On a desktop: she loads her files, and reads her history in both languages.
        let b = browser(&driver, &profile, false).await;
        viewport(&b, 1280, 900).await;
        b.goto(&page).await.unwrap();
        wait_for(&b, "the page to start", READY).await;
        assert_eq!(text(&b, "h1").await, "Cradle: my maternal health records");

        // Her genesis file and her key file, through the file pickers.
        let input = b.find(Locator::Id("genesis-file")).await.unwrap();
        input.send_keys(genesis_file.to_str().unwrap()).await.unwrap();
        let state = wait_for(&b, "the genesis to load", &state_of("genesis-status")).await;
        let status = text(&b, "#genesis-status").await;
        assert!(state == "ok" && status.starts_with("Loaded:"), "genesis: {status}");
        let input = b.find(Locator::Id("key-file")).await.unwrap();
        input.send_keys(mother.key.to_str().unwrap()).await.unwrap();
        let state = wait_for(&b, "the key to load", &state_of("key-status")).await;
        assert_eq!(state, "ok", "key: {}", text(&b, "#key-status").await);
        assert_eq!(text(&b, "#key-public").await, key_hex["public_key"].as_str().unwrap());
        // The key is held as a non-extractable CryptoKey: the page itself cannot read it out.
        let extractable = b
            .execute_async(
                "const done = arguments[0]; const r = indexedDB.open('cradle-portal'); \
                 r.onsuccess = () => { const g = r.result.transaction('kv').objectStore('kv').get('keypair'); \
                 g.onsuccess = () => done([g.result.signing.privateKey.extractable, g.result.x25519.privateKey.extractable]); };",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(extractable, json!([false, false]));

        // A genesis file of another consortium (a changed name, the same members): the node
        // is not used, and nothing about her is shown.
        let input = b.find(Locator::Id("genesis-file")).await.unwrap();
        input.send_keys(other_genesis.to_str().unwrap()).await.unwrap();
        wait_for(&b, "the other genesis", "const s = document.getElementById('genesis-status'); \
            return s.textContent.includes('cradle-elsewhere') ? 'ok' : null").await;
        let refused = show_history(&b).await;
        assert!(refused.contains("another consortium"), "{refused}");
        assert!(b.find_all(Locator::Css("#history-list li")).await.unwrap().is_empty());
        let input = b.find(Locator::Id("genesis-file")).await.unwrap();
        input.send_keys(genesis_file.to_str().unwrap()).await.unwrap();
        wait_for(&b, "her genesis again", "const s = document.getElementById('genesis-status'); \
            return s.textContent.includes('cradle-elsewhere') ? null : 'ok'").await;

        // Her history: the three accesses, verified against her genesis.
        assert_eq!(show_history(&b).await, "verified", "{}", text(&b, "#history-section").await);
        assert_eq!(text(&b, "#history-status").await, "Verified");
        let list = text(&b, "#history-list").await;
        assert!(list.contains(&hospital) && list.contains("Treatment (TREAT)"), "{list}");
        assert!(list.contains(&clinic) && list.contains("Denied: no consent"), "{list}");
        assert!(list.contains("Obstetrician (staff ID"), "{list}");
        let entries = b.find_all(Locator::Css("#history-list li.event")).await.unwrap();
        assert_eq!(entries.len(), 3, "{list}");
        // The emergency access stands out, named as such.
        let glass = text(&b, "#history-list li[data-outcome='break_glass']").await;
        assert!(glass.contains(&emergency) && glass.contains("Emergency access (break-glass)"), "{glass}");
        assert!(glass.contains("Emergency treatment (ETREAT)"), "{glass}");
        screenshot(&b, 1280, &shots.join("history-en-1280x900.png")).await;

        // In Chinese, remembered across a reload with her genesis and key.
        b.find(Locator::Id("lang-zh")).await.unwrap().click().await.unwrap();
        assert_eq!(text(&b, "#history-status").await, "已验证");
        assert_eq!(text(&b, "h1").await, ZH_TITLE);
        let list = text(&b, "#history-list").await;
        assert!(list.contains("已准许") && list.contains("已拒绝：无授权"), "{list}");
        assert!(list.contains("紧急访问（破窗）") && list.contains("产科医生"), "{list}");
        screenshot(&b, 1280, &shots.join("history-zh-1280x900.png")).await;
        b.refresh().await.unwrap();
        wait_for(&b, "the page to start again", READY).await;
        assert_eq!(text(&b, "h1").await, ZH_TITLE);
        assert!(text(&b, "#genesis-status").await.starts_with("已加载"), "the genesis is kept");
        assert_eq!(text(&b, "#key-public").await, key_hex["public_key"].as_str().unwrap());

        // The node lies about her history: the page says so, with the reason, and lists nothing.
        proxy.lie.store(true, Ordering::Relaxed);
        assert_eq!(show_history(&b).await, "untrustworthy", "{}", text(&b, "#history-section").await);
        assert_eq!(text(&b, "#history-status").await, "不可信");
        assert_eq!(verdict_code(&b).await, "altered-entry");
        assert!(text(&b, "#history-detail").await.contains("记录被篡改"));
        assert!(b.find_all(Locator::Css("#history-list li")).await.unwrap().is_empty());
        b.find(Locator::Id("lang-en")).await.unwrap().click().await.unwrap();
        assert_eq!(text(&b, "#history-status").await, "Untrustworthy");
        assert!(text(&b, "#history-detail").await.contains("(altered-entry): an entry was altered"));
        screenshot(&b, 1280, &shots.join("lying-en-1280x900.png")).await;

        // Once it stops lying, her history verifies again from the checkpoint she kept.
        proxy.lie.store(false, Ordering::Relaxed);
        assert_eq!(show_history(&b).await, "verified");

        // The obstetrician reads again: the access log grew past the checkpoint this browser
        // kept, so the page asks for a consistency proof from it and checks it.
        ok(read(&obstetrician, "TREAT", "again.json", &[]));
        assert_eq!(show_history(&b).await, "verified", "{}", text(&b, "#history-section").await);
        let entries = b.find_all(Locator::Css("#history-list li.event")).await.unwrap();
        assert_eq!(entries.len(), 4);
        let asked = proxy.recorded().iter().any(|r| {
            String::from_utf8_lossy(r).starts_with("GET /v1/audit/consistency?from=")
        });
        assert!(asked, "the page did not ask for a consistency proof");

        // Her records and consents: a grant and a revocation made in the page, and a vote.
        let custodian = c.genesis.members[0].name.clone();
        let people = People {
            midwife: &midwife,
            obstetrician: &obstetrician,
            custodian: &custodian,
            hospital: &hospital,
            clinic: &clinic,
        };
        consent_and_governance(&b, &story, &people, &shots).await;
        let asked = proxy.recorded().iter().any(|r| {
            String::from_utf8_lossy(r).starts_with("GET /v1/governance/sets ")
        });
        assert!(asked, "the page did not ask for the member sets");

        same_origin_only(&b, &page).await;

        // The node itself serves the page to a browser, with the operator's certificate.
        let node = c.nodes[0].api.replace("127.0.0.1", "localhost");
        b.goto(&format!("{node}/portal/")).await.unwrap();
        wait_for(&b, "the node's own page", READY).await;
        assert_eq!(text(&b, "h1").await, "Cradle: my maternal health records");
        b.close().await.unwrap();

        // On her phone (the same browser profile): what she loaded is still there.
        let b = browser(&driver, &profile, true).await;
        b.goto(&page).await.unwrap();
        wait_for(&b, "the page to start on a phone", READY).await;
        assert_eq!(text(&b, "#key-public").await, key_hex["public_key"].as_str().unwrap());
        // Another visit: the sets kept in this browser verify the history after the vote, and
        // nothing is new since the desktop visit.
        let (list, entries, new) = verified_history(&b).await;
        assert_eq!((entries, new), (7, 0), "{list}");
        screenshot(&b, 375, &shots.join("history-en-375x812.png")).await;
        b.find(Locator::Id("lang-zh")).await.unwrap().click().await.unwrap();
        assert_eq!(text(&b, "#history-status").await, "已验证");
        screenshot(&b, 375, &shots.join("history-zh-375x812.png")).await;
        proxy.lie.store(true, Ordering::Relaxed);
        assert_eq!(show_history(&b).await, "untrustworthy");
        assert_eq!(verdict_code(&b).await, "altered-entry");
        screenshot(&b, 375, &shots.join("lying-zh-375x812.png")).await;
        proxy.lie.store(false, Ordering::Relaxed);
        same_origin_only(&b, &page).await;
        b.close().await.unwrap();

        // A second mother, in a browser of her own, makes her key in the page.
        let b = browser(&driver, &work.join("chromium-profile-2"), false).await;
        viewport(&b, 1280, 900).await;
        recovery::key_made_in_the_page(&b, &story, &page, &genesis_file, &shots).await;
        same_origin_only(&b, &page).await;
        b.close().await.unwrap();
    });

    // Nothing secret left the page: every request it sent went through the proxy.
    let requests = proxy.recorded();
    let signed = requests
        .iter()
        .filter(|r| {
            String::from_utf8_lossy(r)
                .to_ascii_lowercase()
                .contains("x-cradle-auth:")
        })
        .count();
    assert!(
        requests.len() >= 20 && signed >= 4,
        "{} requests, {signed} signed",
        requests.len()
    );
    let mut secrets = Vec::new();
    for field in ["ed25519_secret", "x25519_secret"] {
        let hex_secret = key_hex[field].as_str().unwrap().to_string();
        secrets.extend(base64_forms(&hex::decode(&hex_secret).unwrap()));
        secrets.push(hex_secret);
    }
    // The search finds what the page does send: her public key, in the history's path.
    let public = key_hex["public_key"].as_str().unwrap().to_string();
    assert!(
        !leaks(&requests, &[public]).is_empty(),
        "the search finds nothing at all"
    );
    let found = leaks(&requests, &secrets);
    assert!(
        found.is_empty(),
        "secret key material left the page: {found:?}"
    );
    eprintln!(
        "the page sent {} requests ({signed} signed), none with a secret of her key file",
        requests.len()
    );

    // Two screenshots for the README: written when missing, or renewed with
    // CRADLE_WRITE_PORTAL_SCREENSHOTS=1 (an ordinary run leaves the working tree alone).
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/portal");
    let renew = std::env::var_os("CRADLE_WRITE_PORTAL_SCREENSHOTS").is_some_and(|v| v == "1");
    std::fs::create_dir_all(&docs).unwrap();
    for name in ["history-zh-375x812.png", "history-en-1280x900.png"] {
        if renew || !docs.join(name).exists() {
            std::fs::copy(shots.join(name), docs.join(name)).unwrap();
        }
    }
}
