//! The institution's staff directory: each of its clinicians' name and staff number, kept by
//! its own node, never on the ledger and never in a log.
//!
//! The ledger names a clinician by a pseudonymous [`StaffId`]; this directory is what turns it
//! into a person for those entitled to know (see [`crate::http::staff`]). It lives in one file,
//! mode 0600, rewritten whole and atomically (as key files are) on every change: an
//! institution has hundreds of clinicians, not millions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cradle_ledger::StaffId;
use serde::{Deserialize, Serialize};

/// Longest name, in characters.
pub const NAME_CHARS_MAX: usize = 120;
/// Longest staff number, in characters.
pub const STAFF_NUMBER_CHARS_MAX: usize = 32;
/// Most entries one directory holds.
pub const ENTRIES_MAX: usize = 100_000;
/// Largest directory file read at start.
const FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// One clinician as her institution knows her.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryEntry {
    pub name: String,
    pub staff_number: String,
}

/// Characters that print nothing or reorder what follows: controls, and the Unicode format
/// characters (zero-width spaces and joiners, bidirectional overrides and isolates, the byte
/// order mark, soft hyphen, line and paragraph separators). A name with one could pass for
/// another in a patient's or a regulator's audit table.
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{061c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff0}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

impl DirectoryEntry {
    /// A name and staff number of visible characters within their bounds.
    pub fn validate(&self) -> Result<(), DirectoryError> {
        let fits = |s: &str, max: usize| {
            let s = s.trim();
            !s.is_empty() && s.chars().count() <= max && !s.chars().any(invisible)
        };
        if !fits(&self.name, NAME_CHARS_MAX) {
            return Err(DirectoryError::Invalid(format!(
                "a name is 1 to {NAME_CHARS_MAX} visible characters"
            )));
        }
        if !fits(&self.staff_number, STAFF_NUMBER_CHARS_MAX) {
            return Err(DirectoryError::Invalid(format!(
                "a staff number is 1 to {STAFF_NUMBER_CHARS_MAX} visible characters"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0}")]
    Invalid(String),
    #[error("the staff directory is full ({ENTRIES_MAX} entries)")]
    Full,
    #[error("staff directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("staff directory {path} is damaged: {detail}")]
    Corrupt { path: String, detail: String },
}

/// The directory, loaded at start and kept in memory.
pub struct Directory {
    path: PathBuf,
    entries: Mutex<BTreeMap<StaffId, DirectoryEntry>>,
}

impl Directory {
    /// Opens the directory at `path`, empty if the file does not exist yet.
    pub fn open(path: &Path) -> Result<Self, DirectoryError> {
        let io = |source| DirectoryError::Io {
            path: path.display().to_string(),
            source,
        };
        let entries = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(e)),
            Ok(meta) if meta.len() > FILE_BYTES_MAX => {
                return Err(DirectoryError::Corrupt {
                    path: path.display().to_string(),
                    detail: format!("larger than {FILE_BYTES_MAX} bytes"),
                });
            }
            Ok(_) => {
                let bytes = std::fs::read(path).map_err(io)?;
                let raw: BTreeMap<String, DirectoryEntry> = serde_json::from_slice(&bytes)
                    .map_err(|e| DirectoryError::Corrupt {
                        path: path.display().to_string(),
                        detail: e.to_string(),
                    })?;
                let mut entries = BTreeMap::new();
                for (id, entry) in raw {
                    let id = StaffId::from_hex(&id).map_err(|e| DirectoryError::Corrupt {
                        path: path.display().to_string(),
                        detail: e.to_string(),
                    })?;
                    entries.insert(id, entry);
                }
                entries
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            entries: Mutex::new(entries),
        })
    }

    pub fn get(&self, id: &StaffId) -> Option<DirectoryEntry> {
        self.lock().get(id).cloned()
    }

    /// Sets the entry of `id` and writes the directory out before answering.
    pub fn set(&self, id: StaffId, entry: DirectoryEntry) -> Result<(), DirectoryError> {
        entry.validate()?;
        let entry = DirectoryEntry {
            name: entry.name.trim().to_string(),
            staff_number: entry.staff_number.trim().to_string(),
        };
        let mut entries = self.lock();
        if !entries.contains_key(&id) && entries.len() >= ENTRIES_MAX {
            return Err(DirectoryError::Full);
        }
        let previous = entries.insert(id, entry);
        if let Err(e) = self.write(&entries) {
            match previous {
                Some(p) => entries.insert(id, p),
                None => entries.remove(&id),
            };
            return Err(e);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<StaffId, DirectoryEntry>> {
        // A panic while holding the lock leaves a consistent map: every change is one insert.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, entries: &BTreeMap<StaffId, DirectoryEntry>) -> Result<(), DirectoryError> {
        let io = |source| DirectoryError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let raw: BTreeMap<String, &DirectoryEntry> =
            entries.iter().map(|(id, e)| (id.to_hex(), e)).collect();
        let bytes = serde_json::to_vec_pretty(&raw).map_err(|e| DirectoryError::Corrupt {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        })?;
        cradle_genesis::fsutil::write_replace(&self.path, &bytes, 0o600)
            .map_err(|e| io(std::io::Error::other(e.to_string())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(name: &str, number: &str) -> DirectoryEntry {
        DirectoryEntry {
            name: name.into(),
            staff_number: number.into(),
        }
    }

    #[test]
    fn entries_survive_a_reopen_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staff-directory.json");
        let d = Directory::open(&path).unwrap();
        assert!(d.is_empty());
        d.set(StaffId([1; 16]), entry("Li Na", "OB-0042")).unwrap();
        d.set(StaffId([2; 16]), entry("  Wang Fang ", "MW-7"))
            .unwrap();
        let again = Directory::open(&path).unwrap();
        assert_eq!(
            again.get(&StaffId([2; 16])),
            Some(entry("Wang Fang", "MW-7"))
        );
        assert_eq!(again.len(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_entries_and_damaged_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staff-directory.json");
        let d = Directory::open(&path).unwrap();
        assert!(d.set(StaffId([1; 16]), entry("", "1")).is_err());
        assert!(d.set(StaffId([1; 16]), entry("a\nb", "1")).is_err());
        for sneaky in [
            "Ma \u{202e}Jun",
            "Wang\u{200b}Fang",
            "Li\u{2028}Na",
            "\u{feff}Li",
        ] {
            assert!(
                d.set(StaffId([1; 16]), entry(sneaky, "1")).is_err(),
                "{sneaky:?}"
            );
        }
        let unknown: Result<DirectoryEntry, _> =
            serde_json::from_str(r#"{"name":"a","staff_number":"1","role":"chief"}"#);
        assert!(unknown.is_err());
        assert!(
            d.set(StaffId([1; 16]), entry(&"x".repeat(121), "1"))
                .is_err()
        );
        assert!(
            d.set(StaffId([1; 16]), entry("ok", &"9".repeat(33)))
                .is_err()
        );
        assert!(d.is_empty());
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            Directory::open(&path),
            Err(DirectoryError::Corrupt { .. })
        ));
    }
}
