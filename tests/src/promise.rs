//! The promise every attack test checks while its attack runs: a mother's own fetch, another
//! hospital's emergency physician's break-glass fetch of her record and the regulator's
//! break-glass review each complete within [`PROMISE`], and afterwards her history holds exactly
//! those accesses.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Cluster;
use crate::cli::{Clinician, Mother, clinician, cradle, mother_with_archive, ok, shared_record};

/// How long each of the three may take during an attack.
pub const PROMISE: Duration = Duration::from_secs(2);

/// Times of one round of the three, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Kept {
    pub fetch_ms: u128,
    pub break_glass_ms: u128,
    pub audit_ms: u128,
}

/// A mother with a record at member 0, the emergency physician of the hospital (member 1) who
/// breaks the glass, and the regulator; counts the accesses made so her history can be checked.
pub struct Promise<'a> {
    c: &'a Cluster,
    work: PathBuf,
    pub mother: Mother,
    pub physician: Clinician,
    record: PathBuf,
    rounds: usize,
}

impl<'a> Promise<'a> {
    /// Enrols the mother at member 0 and registers her record there.
    pub fn new(c: &'a Cluster) -> Self {
        let work = c.dir.path().join("promise");
        let record = shared_record("Karla_Kessler_eb2955c7-1c46-47bd-bffc-bae94824b629.json");
        let mother = mother_with_archive(c, &work, 0, &record);
        let physician = clinician(c, &work, 1, "emergency-physician", "emergency", "Chen Jing");
        Self {
            c,
            work,
            mother,
            physician,
            record,
            rounds: 0,
        }
    }

    fn timed(&self, key: &std::path::Path, args: &[&str], what: &str) -> u128 {
        let started = Instant::now();
        ok(cradle(&self.c.nodes[0].api, key, args));
        let took = started.elapsed();
        assert!(
            took <= PROMISE,
            "{what} took {took:?} under the attack (promise: {PROMISE:?})"
        );
        took.as_millis()
    }

    /// Runs the three against member 0, asserting each within the promise; prints the times
    /// on one line (`promise during=LABEL {json}`) for `scripts/bench-floods.sh`.
    pub fn keep(&mut self, during: &str) -> Kept {
        self.rounds += 1;
        let out = self.work.join(format!("mine-{}.json", self.rounds));
        let out_s = out.to_str().expect("UTF-8 path");
        let archive = self.mother.archive.clone();
        let fetch_ms = self.timed(
            &self.mother.key.clone(),
            &[
                "archive",
                "get",
                &archive,
                "--purpose",
                "PATRQT",
                "--out",
                out_s,
            ],
            "the mother's fetch",
        );
        assert_eq!(
            std::fs::read(&out).expect("her record"),
            std::fs::read(&self.record).expect("the original")
        );
        let glass = self.work.join(format!("glass-{}.json", self.rounds));
        let glass_s = glass.to_str().expect("UTF-8 path");
        let physician = self.physician.key.clone();
        let break_glass_ms = self.timed(
            &physician,
            &[
                "archive",
                "get",
                &archive,
                "--purpose",
                "ETREAT",
                "--justification",
                "postpartum haemorrhage on arrival",
                "--out",
                glass_s,
            ],
            "the break-glass fetch",
        );
        let regulator = self.c.dir.path().join("net/regulator/regulator.key");
        let audit_ms = self.timed(
            &regulator,
            &["audit", "--break-glass", "--format", "json"],
            "the regulator's break-glass review",
        );
        let kept = Kept {
            fetch_ms,
            break_glass_ms,
            audit_ms,
        };
        eprintln!(
            "promise during={during} {{\"fetch_ms\":{fetch_ms},\"break_glass_ms\":{break_glass_ms},\"audit_ms\":{audit_ms}}}"
        );
        kept
    }

    /// Her history (as she reads it) holds exactly the accesses [`Promise::keep`] made: her
    /// own and the hospital's break-glass ones, nothing an attacker wrote.
    pub fn history_is_only_ours(&self) {
        let answer = ok(cradle(
            &self.c.nodes[0].api,
            &self.mother.key,
            &[
                "audit",
                "--patient",
                self.mother.public.to_str().expect("UTF-8 path"),
                "--format",
                "json",
            ],
        ));
        let answer: Value = serde_json::from_str(&answer).expect("audit answers JSON");
        let events = answer["events"].as_array().expect("events");
        assert_eq!(
            events.len(),
            2 * self.rounds,
            "her history holds accesses no one made for her: {answer}"
        );
    }
}
