//! The two clocks the agent and the kernel share: wall-clock seconds since the Unix
//! epoch (what pinned maps keep for people) and CLOCK_MONOTONIC (what the kernel's
//! `bpf_ktime_get_ns` reads, so what expiries in maps are compared with).
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::time::{clock_gettime, ClockId};

/// Seconds since the Unix epoch (0 before it).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// CLOCK_MONOTONIC now, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_now() -> Duration {
    // CLOCK_MONOTONIC always exists on Linux: clock_gettime cannot fail for it.
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(Duration::ZERO, Duration::from)
}
