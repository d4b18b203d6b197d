//! The rate of automatic quarantines: at most `max` a minute. A flood of forged
//! sources would otherwise quarantine one address after another until the table is
//! full; past the limit a detection is an alert, not a quarantine.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The span the limit counts over.
pub const PER: Duration = Duration::from_secs(60);

/// Automatic quarantines within the last [`PER`].
#[derive(Debug)]
pub struct AutoLimit {
    max: usize,
    recent: VecDeque<Instant>,
}

impl AutoLimit {
    /// At most `max` automatic quarantines within any [`PER`].
    pub fn new(max: u32) -> Self {
        AutoLimit {
            max: max as usize,
            recent: VecDeque::new(),
        }
    }

    /// Whether one more may be set at `now`; if so, it is counted.
    pub fn admit(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= PER)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.max {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_a_minute() {
        let mut l = AutoLimit::new(3);
        let t0 = Instant::now();
        let admitted: Vec<bool> = (0..5)
            .map(|i| l.admit(t0 + Duration::from_secs(i)))
            .collect();
        assert_eq!(admitted, [true, true, true, false, false]);
        // The first leaves the minute: one more fits, then none until the second leaves.
        assert!(l.admit(t0 + PER));
        assert!(!l.admit(t0 + PER));
        assert!(!l.admit(t0 + PER + Duration::from_millis(999)));
        assert!(l.admit(t0 + PER + Duration::from_secs(1)));
        let mut none = AutoLimit::new(0);
        assert!(!none.admit(t0));
    }
}
