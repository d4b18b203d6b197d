//! Ward: an eBPF host micro-segmentation agent.
//!
//! - [`policy`]: the zone policy model, its checker, compiler and reference evaluator.
//! - [`dataplane`]: loading, pinning and attaching the kernel programs, writing their maps.
//! - [`daemon`]: the long-running agent (`ward run`).
//! - [`commands`]: the one-shot CLI commands.
pub mod commands;
pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod policy;
