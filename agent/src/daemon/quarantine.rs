//! The daemon's side of quarantine: carrying out quarantine and release requests,
//! expiring quarantines, and the alerts and counts of each.
use std::{net::IpAddr, time::Duration};

use tracing::{info, warn};

use super::{bus::RequestError, Agent};
use crate::{
    dataplane::QuarantineEntry,
    response::{self, AlertKind},
    state::ResponseStats,
};

/// How often expired quarantines and break-glass grants are removed (the kernel
/// ignores them already).
pub(super) const QUARANTINE_SWEEP: Duration = Duration::from_secs(1);

impl Agent {
    /// Quarantines `ip` for `ttl` (or until released), with an alert; refused for a host
    /// of the fleet quarantine list (the automatic response leaves it as it is).
    pub(super) fn quarantine(
        &mut self,
        ip: IpAddr,
        ttl: Option<Duration>,
        reason: String,
        by: String,
    ) -> Result<QuarantineEntry, RequestError> {
        if let Some(fleet) = self.fleet_entry(ip)? {
            // The scan detection finds the host cut off already.
            if by == response::AUTO {
                return Ok(fleet);
            }
            let why = "it is set and ended by the signed bundle, not by hand";
            return Err(super::fleet::refusal(&fleet, why));
        }
        let entry = self.dataplane.quarantine(ip, ttl, &reason, &by)?;
        warn!(
            "quarantined {ip} by {by} until {:?}: {reason}",
            entry.expires
        );
        self.alert(AlertKind::Quarantine, &entry);
        self.with_response(|r| match by.as_str() {
            response::AUTO => r.auto_quarantines_total += 1,
            _ => r.manual_quarantines_total += 1,
        });
        Ok(entry)
    }

    /// Ends the local quarantine of `ip`, with an alert; refused for a fleet entry.
    pub(super) fn release(
        &mut self,
        ip: IpAddr,
        by: String,
    ) -> Result<QuarantineEntry, RequestError> {
        if let Some(fleet) = self.fleet_entry(ip)? {
            let why = "only a newer bundle without it, or its expiry, ends it";
            return Err(super::fleet::refusal(&fleet, why));
        }
        let entry = self.dataplane.release(ip)?;
        info!("released {ip} ({by})");
        let released = QuarantineEntry {
            by,
            ..entry.clone()
        };
        self.alert(AlertKind::Release, &released);
        self.with_response(|r| r.releases_total += 1);
        Ok(entry)
    }

    /// Removes the quarantines whose time is up, with an alert each.
    pub(super) fn expire_quarantines(&mut self) {
        match self.dataplane.expire() {
            Ok(expired) if expired.is_empty() => {}
            Ok(expired) => {
                for entry in expired {
                    info!("quarantine of {} expired", entry.ip);
                    let ended = QuarantineEntry {
                        by: "expiry".into(),
                        ..entry
                    };
                    self.alert(AlertKind::Release, &ended);
                    self.with_response(|r| r.releases_total += 1);
                }
                self.count_quarantines();
            }
            Err(e) => warn!("expiring quarantines: {e:#}"),
        }
    }

    pub(super) fn alert(&self, kind: AlertKind, entry: &QuarantineEntry) {
        let (zone, generation) = self.zone_of(entry.ip);
        let _ = self.alerts.try_send(response::alert::record(
            kind, entry.ip, &zone, entry, generation,
        ));
    }

    /// The zone of `ip` in the policy in force, and the generation.
    fn zone_of(&self, ip: std::net::IpAddr) -> (String, u64) {
        let generation = self.status.read().map_or(0, |s| s.generation);
        (self.loaded.policy.zone_of(ip).to_owned(), generation)
    }

    /// Records how many hosts are quarantined now, and how many by the fleet list.
    pub(super) fn count_quarantines(&mut self) {
        if let Ok(list) = self.dataplane.quarantines() {
            let fleet = list.iter().filter(|e| e.fleet.is_some()).count();
            self.with_response(|r| {
                r.quarantined = list.len();
                r.fleet_quarantined = fleet;
            });
        }
    }

    pub(super) fn with_response(&self, f: impl FnOnce(&mut ResponseStats)) {
        if let Ok(mut status) = self.status.write() {
            f(&mut status.response);
        }
    }
}
