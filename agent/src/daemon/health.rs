//! The lost-events health check: the `events-lost` fault while the kernel finds the
//! event ring buffer full, cleared after a quiet spell.
use std::time::Duration;

use tracing::{info, warn};

use super::Agent;
use crate::state::FaultArea;

/// How often the agent checks for lost events.
pub(super) const HEALTH_CHECK: Duration = Duration::from_secs(1);
/// How long without a lost event before the `events-lost` fault clears.
const EVENTS_LOST_CLEARS: Duration = Duration::from_secs(10);

impl Agent {
    /// Raises the `events-lost` fault when the kernel found the event ring buffer full
    /// since the last check, and clears it after a quiet spell.
    pub(super) fn check_lost_events(&mut self, lost: &mut LostEvents) {
        let total = match self.counters.lock() {
            Ok(c) => c.events(ward_common::EventCounter::Lost),
            Err(_) => return,
        };
        let Ok(total) = total else { return };
        let Ok(mut status) = self.status.write() else {
            return;
        };
        let now = tokio::time::Instant::now();
        let new = total.saturating_sub(lost.total.unwrap_or(total));
        lost.total = Some(total);
        if new > 0 {
            lost.last = Some(now);
            let message = format!(
                "the event ring buffer was full: {total} events lost in all; verdicts and \
                 counters are unaffected, the event reader fell behind"
            );
            if status.raise(FaultArea::EventsLost, message, new) {
                warn!("{new} events lost: the event ring buffer was full (enforcement goes on)");
            }
        } else if lost.last.is_some_and(|t| now - t >= EVENTS_LOST_CLEARS) {
            lost.last = None;
            if let Some(fault) = status.clear(FaultArea::EventsLost) {
                info!(
                    "no events lost for {EVENTS_LOST_CLEARS:?}; {} were lost since {}",
                    fault.count,
                    humantime::format_rfc3339_seconds(fault.since)
                );
            }
        }
    }
}

/// The lost-event counter as last seen.
#[derive(Default)]
pub(super) struct LostEvents {
    /// The total at the last check (`None` before the first).
    total: Option<u64>,
    /// When events were last found lost.
    last: Option<tokio::time::Instant>,
}
