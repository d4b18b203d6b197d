//! Ward: an eBPF host micro-segmentation agent.
//!
//! - [`policy`]: the zone policy model, its checker, compiler and flow evaluator (the
//!   frame-by-frame reference dataplane and the fuzz entry points live in the
//!   development crate `ward-reference`).
//! - [`breakglass`]: emergency allows of one service between two zones, expiring by themselves.
//! - [`clock`]: wall-clock seconds and CLOCK_MONOTONIC, as the kernel programs read them.
//! - [`dataplane`]: loading, pinning and attaching the kernel programs, writing their maps.
//! - [`daemon`]: the long-running agent (`ward run`).
//! - [`distribution`]: signed policy bundles, their verification, anti-rollback and
//!   `policy_url`.
//! - [`events`]: flow events from the kernel, as JSON lines and to live subscribers.
//! - [`commands`]: the one-shot CLI commands.
//! - [`control`]: the daemon's root-only control socket, and the client the commands use.
//! - [`metrics`]: the Prometheus endpoint.
//! - [`preflight`]: the lock-out preflight: established management sessions a new
//!   policy would cut.
//! - [`response`]: scan detection and quarantine decisions.
//! - [`state`]: what the running agent knows about itself, shared by its tasks.
pub mod breakglass;
pub mod clock;
pub mod commands;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod distribution;
pub mod events;
pub mod metrics;
pub mod policy;
pub mod preflight;
pub mod response;
pub mod state;
