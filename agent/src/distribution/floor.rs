//! Anti-rollback: the highest bundle version applied on this host, kept in
//! `STATE_DIR/applied-bundle.json` so that it survives agent restarts and reboots.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{write_atomic, BundleInfo, DistributionError};

/// The file in `state_dir` that holds the [`Floor`].
pub const FLOOR_FILE: &str = "applied-bundle.json";

/// The highest bundle version applied on this host, and which contents it had.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Floor {
    /// The version.
    pub version: u64,
    /// Its bundle's digest ([`super::Bundle::digest`]).
    pub digest: String,
    /// The key that signed it.
    pub key_id: String,
}

impl Floor {
    /// The floor a bundle sets once applied.
    pub fn of(bundle: &BundleInfo) -> Floor {
        Floor {
            version: bundle.version,
            digest: bundle.digest.clone(),
            key_id: bundle.key_id.clone(),
        }
    }

    /// Accepts a newer version, or the very bundle of the floor again; refuses an
    /// older version and the same version with other contents.
    pub fn admits(&self, bundle: &BundleInfo) -> Result<(), DistributionError> {
        match bundle.version {
            v if v > self.version => Ok(()),
            v if v == self.version && bundle.digest == self.digest => Ok(()),
            v if v == self.version => Err(DistributionError::Replay { version: v }),
            v => Err(DistributionError::Rollback {
                version: v,
                floor: self.version,
            }),
        }
    }
}

/// Where the floor is kept.
#[derive(Clone, Debug)]
pub struct FloorFile(PathBuf);

impl FloorFile {
    /// The floor file in `state_dir`, which is created (mode 0700) if missing.
    pub fn open(state_dir: &Path) -> Result<FloorFile, DistributionError> {
        super::create_state_dir(state_dir)?;
        Ok(FloorFile(state_dir.join(FLOOR_FILE)))
    }

    /// The floor stored, `None` when none is (no bundle applied yet). A file that
    /// cannot be read is an error: the agent does not guess a floor.
    pub fn load(&self) -> Result<Option<Floor>, DistributionError> {
        let text = match std::fs::read_to_string(&self.0) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(DistributionError::Io {
                    path: self.0.clone(),
                    source,
                })
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| DistributionError::State {
                path: self.0.clone(),
                message: format!(
                    "{e}; the anti-rollback floor is unknown (remove the file to start afresh)"
                ),
            })
    }

    /// Stores `floor`, atomically (a crash leaves the old or the new floor).
    pub fn store(&self, floor: &Floor) -> Result<(), DistributionError> {
        let text = serde_json::to_string(floor).expect("a floor serializes");
        write_atomic(&self.0, format!("{text}\n").as_bytes())
    }

    /// Fails unless the floor's directory takes a new file (written, then removed).
    pub fn check_writable(&self) -> Result<(), DistributionError> {
        let probe = self
            .0
            .with_file_name(format!(".write-test-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|source| DistributionError::Io {
                path: probe,
                source,
            })
    }
}
