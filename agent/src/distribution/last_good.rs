//! The last good policy: the files of the policy last put in force, kept in
//! `STATE_DIR/last-good-policy.json`, so that an agent whose configured policy cannot
//! be loaded or verified at start (a bad edit, a bad bundle, a policy too large)
//! enforces the policy it last enforced instead of nothing.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{write_atomic, DistributionError};
use crate::policy::{self, Loaded};

/// The file in `state_dir` that holds the last good policy.
pub const LAST_GOOD_FILE: &str = "last-good-policy.json";

/// What the file holds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    /// The compiled policy's hash when it was stored.
    hash: String,
    /// Its files, `(name, text)`, in merge order.
    files: Vec<(String, String)>,
}

/// Where the last good policy is kept.
#[derive(Clone, Debug)]
pub struct LastGood(PathBuf);

impl LastGood {
    /// The last good policy of `state_dir`.
    pub fn in_dir(state_dir: &Path) -> LastGood {
        LastGood(state_dir.join(LAST_GOOD_FILE))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Keeps `files`, whose compiled policy has hash `hash` (creating `state_dir`,
    /// mode 0700, if needed).
    pub fn store(&self, hash: &str, files: &[(String, String)]) -> Result<(), DistributionError> {
        if let Some(dir) = self.0.parent() {
            super::create_state_dir(dir)?;
        }
        let stored = Stored {
            hash: hash.to_owned(),
            files: files.to_vec(),
        };
        let json = serde_json::to_vec(&stored).expect("strings serialize");
        write_atomic(&self.0, &json)
    }

    /// The last good policy, checked again; `Ok(None)` when none was kept.
    pub fn load(&self) -> Result<Option<Loaded>, String> {
        let bytes = match std::fs::read(&self.0) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", self.0.display())),
        };
        let stored: Stored =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", self.0.display()))?;
        let loaded = policy::load_texts(&stored.files).map_err(|d| {
            let first = d.first().map(ToString::to_string).unwrap_or_default();
            format!(
                "{}: the policy kept there no longer loads: {first}",
                self.0.display()
            )
        })?;
        if loaded.compiled.hash != stored.hash {
            return Err(format!(
                "{}: the policy kept there compiles to {}, not {} (another build?)",
                self.0.display(),
                loaded.compiled.hash,
                stored.hash
            ));
        }
        Ok(Some(loaded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "[zones.a]\ncidrs = [\"198.18.1.0/24\"]\n[zones.b]\ncidrs = [\"198.18.2.0/24\"]\n[[allow]]\nfrom = \"a\"\nto = \"b\"\ntcp = 22\n";

    #[test]
    fn the_policy_stored_is_the_policy_loaded() {
        let dir = std::env::temp_dir().join(format!("ward-last-good-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let last = LastGood::in_dir(&dir.join("state"));
        assert!(last.load().unwrap().is_none(), "nothing kept yet");
        let loaded = policy::load_str("p.toml", POLICY).unwrap();
        let files = vec![("p.toml".to_owned(), POLICY.to_owned())];
        last.store(&loaded.compiled.hash, &files).unwrap();
        let again = last.load().unwrap().expect("kept");
        assert_eq!(again.compiled.hash, loaded.compiled.hash);
        // A file whose hash does not match what it holds is refused, not trusted.
        last.store("0000", &files).unwrap();
        let err = last.load().unwrap_err();
        assert!(err.contains("not 0000"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
