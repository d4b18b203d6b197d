//! The agent's side of break-glass: granting, ending and expiring grants, and carrying
//! them into every new policy slot.
use std::time::SystemTime;

use tracing::{info, warn};

use super::{bus::RequestError, Agent};
use crate::{
    breakglass::{self, BreakglassError, Grant, GrantRequest},
    policy::CompiledPolicy,
    response::{alert, AlertKind},
};

impl Agent {
    /// Takes over the grants an earlier agent left in the table, ending the ones that
    /// expired meanwhile (the kernel stopped honouring them already).
    pub(super) fn restore_grants(&mut self) -> anyhow::Result<()> {
        self.grants = self.dataplane.grants()?;
        for grant in &self.grants {
            info!(
                "break-glass {} stays in force until {}",
                grant.summary(),
                humantime::format_rfc3339_seconds(grant.expires)
            );
        }
        self.show_grants();
        self.expire_grants();
        Ok(())
    }

    /// Starts a grant in the slot in force, with a `breakglass-start` alert.
    pub(super) fn grant(
        &mut self,
        request: &GrantRequest,
        by: String,
    ) -> Result<Grant, RequestError> {
        let grant = breakglass::grant(
            request,
            by,
            &self.config.breakglass,
            &self.loaded.policy,
            &self.grants,
        )?;
        let mut grants = self.grants.clone();
        grants.push(grant.clone());
        self.dataplane
            .write_grants_in_force(&self.loaded.compiled, &grants)?;
        self.grants = grants;
        warn!(
            "break-glass {} granted to {} until {}: {}",
            grant.summary(),
            grant.by,
            humantime::format_rfc3339_seconds(grant.expires),
            grant.reason
        );
        self.breakglass_alert(
            AlertKind::BreakglassStart,
            &grant,
            grant.reason.clone(),
            &grant.by,
        );
        self.show_grants();
        Ok(grant)
    }

    /// Ends grant `id` now, with a `breakglass-end` alert; refused for a fleet grant.
    pub(super) fn end_grant(&mut self, id: u32, by: &str) -> Result<Grant, RequestError> {
        let grant = self
            .grants
            .iter()
            .find(|g| g.id == id)
            .cloned()
            .ok_or(BreakglassError::NoSuchGrant(id))?;
        if let Some(fleet) = &grant.fleet {
            let version = fleet.version;
            return Err(BreakglassError::FleetGrant { id, version }.into());
        }
        self.remove_grant(&grant, format!("ended by {by} before it expired"), by)?;
        Ok(grant)
    }

    /// Ends the grants whose time is up (the kernel ignores them already).
    pub(super) fn expire_grants(&mut self) {
        let now = SystemTime::now();
        let expired: Vec<Grant> = self
            .grants
            .iter()
            .filter(|g| g.expires <= now)
            .cloned()
            .collect();
        for grant in expired {
            if let Err(e) = self.remove_grant(&grant, "expired".into(), "expiry") {
                warn!("ending break-glass {}: {e:#}", grant.summary());
            }
        }
    }

    /// Ends the grants whose zones `policy`, about to be published, no longer has (the
    /// others go into its slot with it).
    pub(super) fn end_orphan_grants(&mut self, policy: &CompiledPolicy) -> anyhow::Result<()> {
        let has = |zone: &str| policy.zone_id(zone).is_some();
        let orphans: Vec<Grant> = self
            .grants
            .iter()
            .filter(|g| !has(&g.from) || !has(&g.to))
            .cloned()
            .collect();
        for grant in orphans {
            let why = format!(
                "ended: zone {} is not in the new policy",
                if has(&grant.from) {
                    &grant.to
                } else {
                    &grant.from
                }
            );
            self.remove_grant(&grant, why, "policy change")?;
        }
        Ok(())
    }

    pub(super) fn remove_grant(
        &mut self,
        grant: &Grant,
        why: String,
        by: &str,
    ) -> anyhow::Result<()> {
        self.dataplane.end_grant(grant.id)?;
        self.grants.retain(|g| g.id != grant.id);
        info!("break-glass {} {why}", grant.summary());
        self.breakglass_alert(AlertKind::BreakglassEnd, grant, why, by);
        self.show_grants();
        Ok(())
    }

    pub(super) fn breakglass_alert(&self, kind: AlertKind, grant: &Grant, why: String, by: &str) {
        let generation = self.status.read().map_or(0, |s| s.generation);
        let record = alert::breakglass(kind, grant, why, by, generation);
        let _ = self.alerts.try_send(record);
    }

    pub(super) fn show_grants(&self) {
        if let Ok(mut status) = self.status.write() {
            status.breakglass = self.grants.clone();
        }
    }
}
