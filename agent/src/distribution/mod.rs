//! Signed policy distribution: bundles of policy files signed by the network team,
//! verified and checked against rollback before the agent enforces them, read from
//! disk or fetched from `policy_url`. `docs/bundles.md` specifies the format.
//!
//! - [`Bundle`]: the bundle file, its canonical encoding, signing and verification.
//! - [`TrustedKey`], [`SecretKey`]: the keys (`ward policy keygen`).
//! - [`Floor`]: the anti-rollback rule and where its state is kept.
//! - [`Source`]: what the daemon calls to load the policy and to report it applied.
//! - [`Fetcher`]: `policy_url` over HTTPS with ETags.
//! - [`FleetLists`]: the fleet lists a bundle carries: quarantine (`quarantine.toml`)
//!   and break-glass grants (`breakglass.toml`, [`FleetGrant`]).
use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

mod bundle;
mod fleet;
mod fleet_grants;
mod fleet_text;
mod floor;
mod http;
mod keys;
mod last_good;
mod source;
mod status;
#[cfg(test)]
mod tests;

pub use bundle::{Bundle, BundleFile, BUNDLE_FILE, FORMAT, MAX_BUNDLE_BYTES};
pub use fleet::{parse_list, policy_texts, FleetEntry, FleetLists};
pub use fleet_grants::{parse_grants, FleetGrant};
pub use floor::{Floor, FloorFile, FLOOR_FILE};
pub use http::{Fetched, Fetcher};
pub use keys::{SecretKey, TrustedKey};
pub use last_good::{LastGood, LAST_GOOD_FILE};
pub use source::{bundle_path, Source};
pub use status::{BundleInfo, DistributionStatus, FetchStatus};

/// Why a bundle, a key or a fetch was refused.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A bundle file is not JSON of the bundle's shape.
    #[error("{path}:{line}:{column}: not a policy bundle: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A bundle's format, file names or their order are wrong.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The same, before a file is named.
    #[error("{0}")]
    Shape(String),
    /// `trusted_keys` is empty: no bundle can be verified.
    #[error("the bundle cannot be verified: trusted_keys lists no key")]
    NoTrustedKeys,
    /// The bundle names a key that is not trusted.
    #[error("signed by key {0}, which is not in trusted_keys")]
    UnknownKey(String),
    /// The signature does not match the contents.
    #[error(
        "bad signature (key {0}): the bundle was altered after signing, or not signed by that key"
    )]
    BadSignature(String),
    /// An older version than the one applied on this host.
    #[error("version {version} is older than version {floor} already applied on this host (anti-rollback)")]
    Rollback {
        /// The bundle's version.
        version: u64,
        /// The highest version applied.
        floor: u64,
    },
    /// The version applied on this host, with other contents.
    #[error("version {version} was already applied on this host with other contents: a new policy needs a new version")]
    Replay {
        /// The version.
        version: u64,
    },
    /// An unsigned policy while signatures are required.
    #[error(
        "{0}: unsigned policy refused (require_signature = true): only a signed bundle is enforced"
    )]
    Unsigned(PathBuf),
    /// A key given as text is malformed.
    #[error("{0}")]
    BadKey(String),
    /// A key or certificate file is malformed or unsafe.
    #[error("{path}: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The anti-rollback state cannot be used.
    #[error("{path}: {message}")]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `policy_url` did not give a bundle.
    #[error("policy_url {url}: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// Creates `state_dir` (mode 0700, root's alone) if missing.
pub(crate) fn create_state_dir(state_dir: &Path) -> Result<(), DistributionError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|source| DistributionError::Io {
            path: state_dir.to_owned(),
            source,
        })
}

/// Replaces `path` with `bytes` atomically: a temporary file in the same directory,
/// synced, renamed over `path`, and the directory synced.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DistributionError> {
    let io = |source| DistributionError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}
