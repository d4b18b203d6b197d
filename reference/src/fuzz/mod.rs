//! Entry points of the fuzz targets in `fuzz/` (`cargo xtask fuzz`), shared with the
//! unit tests that replay the seed corpora and the crash regressions.
//!
//! Each entry point takes arbitrary bytes, runs them through the agent code that faces
//! untrusted input, checks properties that must hold whatever the input, and returns
//! the outcome so that a test can assert it. A panic is a bug.
use std::sync::OnceLock;

use ward::policy::{self, Loaded};

mod event;
mod frame;
mod policy_text;
#[cfg(test)]
mod tests;

pub use event::event_decode;
pub use frame::frame;
pub use policy_text::policy;

/// The fixed policy the `frame` and `event_decode` targets judge and name things with.
pub const FIXED_POLICY: &str = r#"
[zones.imaging]
cidrs = ["198.18.20.0/24", "2001:db8:20::/64"]

[zones.pacs]
cidrs = ["198.18.21.0/24", "2001:db8:21::/64"]

[[allow]]
from = "imaging"
to = "pacs"
tcp = [104, "11112-11115"]
udp = [514]
icmp = true
"#;

/// [`FIXED_POLICY`], loaded once.
fn fixed() -> &'static Loaded {
    static FIXED: OnceLock<Loaded> = OnceLock::new();
    FIXED.get_or_init(|| policy::load_str("fixed.toml", FIXED_POLICY).expect("fixed policy loads"))
}
