//! The fleet quarantine in force: the list of the signed bundle applied last, merged
//! into the kernel quarantine table beside the local quarantines. Its entries are
//! marked in the table ([`FLEET_BY`] and the bundle version), so that a newer bundle
//! without them, or a restarted agent, releases them; each ends at its expiry like a
//! local one ([`Agent::expire_quarantines`]).
use std::{
    net::IpAddr,
    time::{Duration, SystemTime},
};

use tracing::{error, info, warn};

use super::{bus::RequestError, Agent};
use crate::{
    dataplane::{QuarantineEntry, FLEET_BY},
    distribution::{FleetEntry, FleetLists},
    response::AlertKind,
    state::FaultArea,
};

/// What putting a fleet quarantine list in force changes in the kernel table.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    /// Entries to write: new, changed, or replacing a local quarantine of the host.
    pub(super) set: Vec<FleetEntry>,
    /// Fleet entries of the table the list no longer holds.
    pub(super) release: Vec<IpAddr>,
}

/// The changes that bring `table` to `list` at `now`: entries of the list not expired
/// and not already in the table as the same fleet entry are set; fleet entries of the
/// table that the list lacks (or lists as expired) are released. Local entries are
/// left alone, but where the list names their host (the signed list wins).
pub(super) fn plan(list: &FleetLists, table: &[QuarantineEntry], now: SystemTime) -> Plan {
    let wanted: Vec<&FleetEntry> = list.entries.iter().filter(|e| e.expires > now).collect();
    let same = |t: &QuarantineEntry, w: &FleetEntry| {
        t.ip == w.ip
            && t.fleet.is_some()
            && t.reason == w.reason
            && t.expires.is_some_and(|x| within_a_second(x, w.expires))
    };
    Plan {
        set: (wanted.iter())
            .filter(|w| !table.iter().any(|t| same(t, w)))
            .map(|w| (*w).clone())
            .collect(),
        release: (table.iter())
            .filter(|t| t.fleet.is_some() && !wanted.iter().any(|w| w.ip == t.ip))
            .map(|t| t.ip)
            .collect(),
    }
}

/// Whether `a` and `b` are the same expiry: the kernel tables keep them in whole
/// seconds.
pub(super) fn within_a_second(a: SystemTime, b: SystemTime) -> bool {
    let d = a.duration_since(b).or_else(|_| b.duration_since(a));
    d.is_ok_and(|d| d <= Duration::from_secs(1))
}

/// `author A`, with `, in NET` for a host of a `cidr` entry.
fn listed_by(entry: &FleetEntry) -> String {
    match entry.cidr {
        Some(net) => format!("author {}, in {net}", entry.author),
        None => format!("author {}", entry.author),
    }
}

/// Why a local request cannot touch the fleet entry `entry`.
pub(super) fn refusal(entry: &QuarantineEntry, why: &'static str) -> RequestError {
    RequestError::Fleet {
        ip: entry.ip,
        version: entry.fleet.as_ref().map_or(0, |f| f.version),
        why,
    }
}

impl Agent {
    /// Puts in force the fleet lists of the policy recorded in force since the last
    /// call, if any: the quarantine list, with an alert for each entry set or released,
    /// and the break-glass grants ([`Agent::apply_fleet_grants`]).
    pub(super) fn apply_fleet(&mut self) {
        let Some(list) = self.source.take_fleet() else {
            return;
        };
        let table = match self.dataplane.quarantines() {
            Ok(table) => table,
            Err(e) => {
                error!("the fleet quarantine list is not put in force: {e}");
                return;
            }
        };
        let now = SystemTime::now();
        let plan = plan(&list, &table, now);
        let origin = match list.version {
            Some(v) => format!("fleet bundle version {v}"),
            None => "fleet: unsigned policy".to_owned(),
        };
        for ip in plan.release {
            match self.dataplane.release(ip) {
                Ok(entry) => {
                    info!("fleet quarantine of {ip} ended: not in force in {origin}");
                    let by = format!("{origin} (no longer listed)");
                    self.alert(AlertKind::Release, &QuarantineEntry { by, ..entry });
                    self.with_response(|r| r.releases_total += 1);
                }
                Err(e) => warn!("releasing the fleet quarantine of {ip}: {e}"),
            }
        }
        let version = list.version.unwrap_or_default();
        for wanted in plan.set {
            let ttl = wanted.expires.duration_since(now).unwrap_or_default();
            let by = format!("{FLEET_BY}{version}");
            match self
                .dataplane
                .quarantine(wanted.ip, Some(ttl), &wanted.reason, &by)
            {
                Ok(entry) => {
                    warn!(
                        "quarantined {} by {origin} (author {}) until {}: {}",
                        wanted.ip,
                        wanted.author,
                        humantime::format_rfc3339_seconds(wanted.expires),
                        wanted.reason
                    );
                    let by = format!("{origin} ({})", listed_by(&wanted));
                    self.alert(AlertKind::Quarantine, &QuarantineEntry { by, ..entry });
                    self.with_response(|r| r.fleet_quarantines_total += 1);
                }
                Err(e) => {
                    let message = format!("{} (fleet) was not quarantined: {e}", wanted.ip);
                    error!("{message}");
                    if let Ok(mut s) = self.status.write() {
                        s.raise(FaultArea::Quarantine, message, 1);
                    }
                }
            }
        }
        self.with_response(|r| r.fleet_version = list.version);
        self.apply_fleet_grants(&list);
        self.fleet = list;
        self.count_quarantines();
    }

    /// `entries` with the author of each fleet entry, from the list in force.
    pub(super) fn with_authors(&self, mut entries: Vec<QuarantineEntry>) -> Vec<QuarantineEntry> {
        for entry in &mut entries {
            if let Some(fleet) = &mut entry.fleet {
                let listed = self.fleet.entries.iter().find(|e| e.ip == entry.ip);
                if let Some(listed) = listed {
                    fleet.author.clone_from(&listed.author);
                    fleet.cidr = listed.cidr.map(|n| n.to_string());
                }
            }
        }
        entries
    }

    /// The fleet entry of `ip` in force now, which a local request must not touch (an
    /// automatic quarantine leaves it as it is).
    pub(super) fn fleet_entry(
        &mut self,
        ip: IpAddr,
    ) -> Result<Option<QuarantineEntry>, RequestError> {
        let now = SystemTime::now();
        Ok(self
            .dataplane
            .quarantine_of(ip)?
            .filter(|e| e.fleet.is_some() && e.expires.is_none_or(|x| x > now)))
    }
}

#[cfg(test)]
mod tests;
