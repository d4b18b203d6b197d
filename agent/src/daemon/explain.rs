//! The daemon's side of `ward explain --live`: the decision on a flow with the policy
//! in force, the agent's configuration, its quarantine table and break-glass grants.
use std::time::SystemTime;

use super::{
    bus::{ExplainLine, RequestError},
    Agent,
};
use crate::policy::{GrantRule, LiveState, Quarantined};

impl Agent {
    /// Decides the flow from `from` to `to` for `service` as the kernel would now.
    pub(super) fn explain(
        &mut self,
        from: &str,
        to: &str,
        service: &str,
    ) -> Result<Vec<ExplainLine>, RequestError> {
        let now = SystemTime::now();
        // The kernel ignores expired entries before the sweep removes them.
        let quarantined = (self.dataplane.quarantines()?.into_iter())
            .filter(|q| q.expires.is_none_or(|end| end > now))
            .map(|q| Quarantined {
                ip: q.ip,
                reason: q.reason,
            })
            .collect();
        let grants = (self.grants.iter())
            .filter(|g| g.expires > now)
            .map(|g| GrantRule {
                id: g.id,
                from: g.from.clone(),
                to: g.to.clone(),
                ports: g.ports(),
                expires: g.expires,
            })
            .collect();
        let mut enforcement = self.config.enforcement();
        enforcement.live = LiveState {
            quarantined,
            quarantine_allow: self.config.response.quarantine_allow.clone(),
            grants,
        };
        let decisions = self
            .loaded
            .policy
            .decide_all(from, to, service, &enforcement)?;
        Ok(decisions.iter().map(ExplainLine::from).collect())
    }
}
