//! Lateral-movement detection: a source denied towards many destinations in a short
//! window is probing what it may not reach.
use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

/// Sources tracked at most; the least recently seen is forgotten beyond this.
const MAX_SOURCES: usize = 10_000;

/// Whether an event with `verdict` and `reason` counts towards a scan: only flows the
/// policy denies (`no-rule`). Not `spoofed` (a forged source would turn the detector
/// against a host it names), `flow-limit` (a host opening many flows the policy
/// allows churns, it does not probe; its budget already holds it back),
/// `not-on-link` (link-scoped traffic from elsewhere), `quarantined` (cut off
/// already), malformed packets or audited ones.
pub fn feeds_scan_detection(verdict: &str, reason: &str) -> bool {
    verdict == "deny" && reason == ward_common::Reason::NoRule.name()
}

/// Counts, per source, the distinct destination addresses and ports it was denied
/// towards within the window.
#[derive(Debug)]
pub struct ScanDetector {
    window: Duration,
    threshold: usize,
    sources: HashMap<IpAddr, Seen>,
}

/// What one source was denied towards: each distinct address and port with when it
/// was last seen. Both stay below the threshold (the source trips there), so a flood
/// of repeats costs the same as one denial.
#[derive(Debug)]
struct Seen {
    addrs: HashMap<IpAddr, Instant>,
    ports: HashMap<u16, Instant>,
    last: Instant,
}

impl ScanDetector {
    /// A detector that trips at `threshold` distinct addresses or ports within `window`.
    pub fn new(threshold: u32, window: Duration) -> Self {
        ScanDetector {
            window,
            threshold: threshold.max(1) as usize,
            sources: HashMap::new(),
        }
    }

    /// Records a denial of `src` towards `dst:port`; returns the distinct addresses and
    /// ports seen in the window when they reach the threshold (the source is then forgotten,
    /// so it trips once per burst).
    pub fn observe(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        port: Option<u16>,
        now: Instant,
    ) -> Option<(usize, usize)> {
        if !self.sources.contains_key(&src) && self.sources.len() >= MAX_SOURCES {
            self.forget_stale(now);
        }
        let window = self.window;
        let seen = self.sources.entry(src).or_insert_with(|| Seen {
            addrs: HashMap::new(),
            ports: HashMap::new(),
            last: now,
        });
        seen.addrs.retain(|_, t| now.duration_since(*t) <= window);
        seen.ports.retain(|_, t| now.duration_since(*t) <= window);
        seen.addrs.insert(dst, now);
        if let Some(port) = port {
            seen.ports.insert(port, now);
        }
        seen.last = now;
        let (addrs, ports) = (seen.addrs.len(), seen.ports.len());
        if addrs >= self.threshold || ports >= self.threshold {
            self.sources.remove(&src);
            return Some((addrs, ports));
        }
        None
    }

    /// Drops sources with nothing in the window, or the oldest one if all are active.
    fn forget_stale(&mut self, now: Instant) {
        let window = self.window;
        self.sources
            .retain(|_, seen| now.duration_since(seen.last) <= window);
        if self.sources.len() >= MAX_SOURCES {
            let oldest = self
                .sources
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(ip, _)| *ip);
            if let Some(ip) = oldest {
                self.sources.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_policy_denials_feed_the_scan_detection() {
        use ward_common::{Reason, Verdict};
        let fed: Vec<&str> = Reason::ALL
            .iter()
            .filter(|r| feeds_scan_detection(Verdict::Deny.name(), r.name()))
            .map(|r| r.name())
            .collect();
        assert_eq!(fed, ["no-rule"]);
        for reason in [
            "spoofed",
            "flow-limit",
            "not-on-link",
            "built-in",
            "quarantined",
        ] {
            assert!(Reason::ALL.iter().any(|r| r.name() == reason), "{reason}");
            assert!(!feeds_scan_detection("deny", reason), "{reason}");
        }
        assert!(!feeds_scan_detection("audit", "no-rule"));
    }

    #[test]
    fn trips_on_distinct_addresses_or_ports_within_the_window() {
        let t0 = Instant::now();
        let mut d = ScanDetector::new(3, Duration::from_secs(5));
        let src = ip("198.18.20.10");
        assert_eq!(d.observe(src, ip("198.18.23.1"), Some(443), t0), None);
        assert_eq!(
            d.observe(src, ip("198.18.23.1"), Some(443), t0),
            None,
            "repeats do not count"
        );
        assert_eq!(d.observe(src, ip("198.18.23.2"), Some(443), t0), None);
        assert_eq!(
            d.observe(src, ip("198.18.23.3"), Some(443), t0),
            Some((3, 1)),
            "three addresses"
        );
        assert_eq!(
            d.observe(src, ip("198.18.23.4"), Some(443), t0),
            None,
            "forgotten after tripping"
        );

        let scanner = ip("198.18.20.11");
        for (i, port) in [22, 80].into_iter().enumerate() {
            assert_eq!(
                d.observe(
                    scanner,
                    ip("198.18.22.10"),
                    Some(port),
                    t0 + Duration::from_millis(i as u64)
                ),
                None
            );
        }
        assert_eq!(
            d.observe(scanner, ip("198.18.22.10"), Some(8080), t0),
            Some((1, 3)),
            "three ports"
        );
    }

    #[test]
    fn a_flood_of_repeats_is_held_as_one_denial() {
        let t0 = Instant::now();
        let mut d = ScanDetector::new(10, Duration::from_secs(5));
        let src = ip("198.18.20.10");
        for i in 0..100_000u64 {
            let now = t0 + Duration::from_micros(i);
            assert_eq!(d.observe(src, ip("198.18.23.10"), Some(9999), now), None);
        }
        let seen = &d.sources[&src];
        assert_eq!((seen.addrs.len(), seen.ports.len()), (1, 1));
    }

    #[test]
    fn old_denials_leave_the_window() {
        let t0 = Instant::now();
        let mut d = ScanDetector::new(3, Duration::from_secs(5));
        let src = ip("2001:db8:20::10");
        d.observe(src, ip("2001:db8:23::1"), None, t0);
        d.observe(src, ip("2001:db8:23::2"), None, t0 + Duration::from_secs(1));
        let later = t0 + Duration::from_secs(7);
        assert_eq!(
            d.observe(src, ip("2001:db8:23::3"), None, later),
            None,
            "the first two are out of the window"
        );
    }
}
