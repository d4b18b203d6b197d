//! What `ward status`, the metrics and the events show of the policy's origin: the
//! bundle in force, the keys, the anti-rollback floor and `policy_url` polling.
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// What a verified bundle is: shown by `ward status`, the metrics and the
/// `policy-applied` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleInfo {
    /// Its version.
    pub version: u64,
    /// SHA-256 of its canonical encoding, hex.
    pub digest: String,
    /// The id of the key that signed it.
    pub key_id: String,
    /// Its policy files, in order.
    pub files: Vec<String>,
}

/// Where the policy comes from and what vouches for it, as `ward status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistributionStatus {
    /// Only signed bundles are enforced.
    pub require_signature: bool,
    /// Ids of the trusted keys.
    pub trusted_keys: Vec<String>,
    /// The bundle the policy in force came from; `None` for an unsigned policy.
    pub bundle: Option<BundleInfo>,
    /// The highest bundle version applied on this host (the anti-rollback floor).
    pub highest_version: Option<u64>,
    /// `policy_url` polling, when configured.
    pub fetch: Option<FetchStatus>,
}

/// The last requests to `policy_url`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchStatus {
    /// The URL.
    pub url: String,
    /// The last request.
    pub last_attempt: Option<SystemTime>,
    /// The last request answered with 200 or 304.
    pub last_success: Option<SystemTime>,
    /// The ETag of the bundle last fetched.
    pub etag: Option<String>,
    /// What the last request got, in one line.
    pub last_result: String,
}

impl FetchStatus {
    /// Nothing fetched yet from `url`.
    pub fn new(url: &str) -> FetchStatus {
        FetchStatus {
            url: url.to_owned(),
            last_attempt: None,
            last_success: None,
            etag: None,
            last_result: String::new(),
        }
    }
}
