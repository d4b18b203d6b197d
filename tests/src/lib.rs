//! Ward's network-namespace test harness.
//!
//! - [`netns`]: [`Netns`] guards (unique `wd<pid>-` names, deleted on drop, stale
//!   ones of dead runs pre-cleaned), veth pairs, addresses, sysctls.
//! - [`clinic`]: the simulated clinic ([`Clinic`]): a gateway namespace and one
//!   namespace per host, with echo servers on every host.
//! - [`probe`]: [`reach`] / [`try_reach`] (TCP and UDP echo through `ward-probe`,
//!   ICMP echo through `ping`), [`Hold`] for a long-lived connection.
//! - [`agent`]: [`WardAgent`], a guarded `ward run` with its log captured.
//! - [`matrix`]: lists of checks, expectations from `ward explain`, the table.
//! - [`raw`]: hand-built packets (forged sources, any flags) injected with AF_PACKET,
//!   and a sniffer in the destination namespace counting what arrives.
//!
//! Everything needs root and fails loudly without it. Addresses come from
//! 198.18.0.0/15 and 2001:db8::/32 only, and no namespace is connected to the
//! machine's own interfaces.
pub mod agent;
pub mod clinic;
pub mod matrix;
pub mod netns;
pub mod probe;
pub mod raw;
pub mod util;

pub use agent::{ward_bin, Role, WardAgent};
pub use clinic::{Clinic, Host};
pub use netns::Netns;
pub use probe::{flood, probe_bin, reach, try_reach, use_probe_bin, Hold, Proto, Service};
pub use util::require_root;
