//! The fleet break-glass grants in force: the grants of the signed bundle applied last,
//! put in force through the break-glass table beside the local grants. They are marked
//! in the table ([`FLEET_BY`] and the bundle version), so that a newer bundle without
//! them, or a restarted agent, ends them; each ends at its expiry like a local one
//! ([`Agent::expire_grants`]). A host with `[breakglass] enabled = false` refuses them
//! and reports it (`ward status`, the log); the rest of the bundle still applies.
use std::time::{Duration, SystemTime};

use tracing::warn;

use super::{fleet::within_a_second, Agent};
use crate::{
    breakglass::{FleetMark, Grant},
    dataplane::FLEET_BY,
    distribution::{FleetGrant, FleetLists},
    response::AlertKind,
};
use ward_common::BREAKGLASS_GRANTS;

/// Why a host with break-glass disabled refuses the fleet grants.
const DISABLED: &str = "break-glass is disabled on this host (`[breakglass] enabled = false`)";

/// What putting a fleet grant list in force changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct GrantPlan {
    /// Grants in force to end, with why: fleet grants the list no longer holds, and
    /// local grants of what a fleet grant is about to allow.
    pub(super) end: Vec<(Grant, String)>,
    /// Listed grants to start.
    pub(super) start: Vec<FleetGrant>,
    /// Listed grants this host refuses, with why.
    pub(super) refused: Vec<(FleetGrant, String)>,
}

/// The changes that bring `in_force` to the grants of `list` meant for the agent
/// called by any of `names`, at `now`; with break-glass not `enabled`, every fleet
/// grant is refused (and those in force end).
pub(super) fn plan_grants(
    list: &FleetLists,
    in_force: &[Grant],
    names: &[String],
    enabled: bool,
    now: SystemTime,
) -> GrantPlan {
    let meant = (list.grants.iter()).filter(|g| g.expires > now && g.is_for(names));
    let (wanted, refused): (Vec<&FleetGrant>, Vec<_>) = match enabled {
        true => (meant.collect(), Vec::new()),
        false => (
            Vec::new(),
            meant.map(|g| (g.clone(), DISABLED.into())).collect(),
        ),
    };
    let origin = origin(list.version);
    let key =
        |g: &Grant, w: &FleetGrant| g.from == w.from && g.to == w.to && g.service == w.service;
    let same = |g: &Grant, w: &FleetGrant| {
        g.fleet.is_some()
            && key(g, w)
            && g.reason == w.reason
            && within_a_second(g.expires, w.expires)
    };
    let start: Vec<FleetGrant> = (wanted.iter())
        .filter(|w| !in_force.iter().any(|g| same(g, w)))
        .map(|w| (*w).clone())
        .collect();
    let end = in_force.iter().filter_map(|g| {
        let why = match &g.fleet {
            Some(_) if !enabled => format!("ended: {DISABLED}"),
            Some(_) if !wanted.iter().any(|w| same(g, w)) => {
                format!("ended: not in force in {origin}")
            }
            None if start.iter().any(|w| key(g, w)) => {
                format!("ended: replaced by a grant of {origin}")
            }
            _ => return None,
        };
        Some((g.clone(), why))
    });
    GrantPlan {
        end: end.collect(),
        start,
        refused,
    }
}

/// `fleet bundle version 7`, as alerts name the list.
fn origin(version: Option<u64>) -> String {
    match version {
        Some(v) => format!("fleet bundle version {v}"),
        None => "fleet: unsigned policy".to_owned(),
    }
}

impl Agent {
    /// Puts in force the grants of `list` meant for this agent, with a
    /// `breakglass-start` alert for each started and a `breakglass-end` for each ended;
    /// the ones refused are shown in `ward status`.
    pub(super) fn apply_fleet_grants(&mut self, list: &FleetLists) {
        let now = SystemTime::now();
        let names = self.host_names();
        let enabled = self.config.breakglass.enabled;
        let plan = plan_grants(list, &self.grants, &names, enabled, now);
        let origin = origin(list.version);
        for (grant, why) in plan.end {
            let by = match grant.fleet {
                Some(_) => format!("{origin} (no longer listed)"),
                None => origin.clone(),
            };
            if let Err(e) = self.remove_grant(&grant, why, &by) {
                warn!("ending break-glass {}: {e:#}", grant.summary());
            }
        }
        let mut refused: Vec<(FleetGrant, String)> = plan.refused;
        let version = list.version.unwrap_or_default();
        for wanted in plan.start {
            if let Err(why) = self.start_fleet_grant(&wanted, version, now) {
                refused.push((wanted, why));
            }
        }
        // Kept grants (and those an earlier agent set) name their author again.
        for grant in &mut self.grants {
            let listed = (list.grants.iter())
                .find(|w| w.from == grant.from && w.to == grant.to && w.service == grant.service);
            if let (Some(mark), Some(listed)) = (&mut grant.fleet, listed) {
                mark.author.clone_from(&listed.author);
            }
        }
        let refused: Vec<String> = (refused.iter())
            .map(|(g, why)| format!("{} of {origin} refused: {why}", g.summary()))
            .collect();
        for line in &refused {
            warn!("fleet break-glass {line}");
        }
        if let Ok(mut status) = self.status.write() {
            status.breakglass_refused = refused;
        }
        self.show_grants();
    }

    /// Starts `wanted` of bundle `version` in a free grant number.
    fn start_fleet_grant(
        &mut self,
        wanted: &FleetGrant,
        version: u64,
        now: SystemTime,
    ) -> Result<(), String> {
        let id = (0..BREAKGLASS_GRANTS)
            .find(|id| self.grants.iter().all(|g| g.id != *id))
            .ok_or_else(|| format!("the {BREAKGLASS_GRANTS} grant numbers are all in use"))?;
        let left = wanted.expires.duration_since(now).unwrap_or_default();
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(crate::clock::unix_seconds(now));
        let grant = Grant {
            id,
            from: wanted.from.clone(),
            to: wanted.to.clone(),
            service: wanted.service.clone(),
            reason: wanted.reason.clone(),
            by: format!("{FLEET_BY}{version}"),
            since,
            expires: wanted.expires,
            expires_ns: crate::clock::monotonic_now()
                .saturating_add(left)
                .as_nanos() as u64,
            fleet: Some(FleetMark {
                version,
                author: wanted.author.clone(),
            }),
        };
        let mut grants = self.grants.clone();
        grants.push(grant.clone());
        (self.dataplane)
            .write_grants_in_force(&self.loaded.compiled, &grants)
            .map_err(|e| format!("not written: {e}"))?;
        self.grants = grants;
        let by = format!("{} (author {})", origin(Some(version)), wanted.author);
        warn!(
            "break-glass {} started by {by} until {}: {}",
            grant.summary(),
            humantime::format_rfc3339_seconds(grant.expires),
            grant.reason
        );
        self.breakglass_alert(
            AlertKind::BreakglassStart,
            &grant,
            grant.reason.clone(),
            &by,
        );
        Ok(())
    }

    /// The names a fleet grant's `hosts` may give this agent: `agent_name` and the host
    /// name.
    fn host_names(&self) -> Vec<String> {
        let host = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned());
        (self.config.agent_name.clone().into_iter())
            .chain(host.ok())
            .collect()
    }
}

#[cfg(test)]
mod tests;
