//! The daemon's side of the interface watch: every [`INTERFACE_WATCH`] the dataplane
//! reconciles its attachments with the interfaces there are; each change is logged,
//! tampering is alerted on and counted, and the status shows hooks and refusals, and
//! as faults the named interfaces that are missing and (gateway) the unguarded ones.
use std::time::Duration;

use tracing::{error, info, warn};

use super::Agent;
use crate::{
    config::Role,
    dataplane::{Change, Hook},
    response::alert,
    state::{AgentStatus, FaultArea, HookStatus, RefusedInterface},
};

/// How often the attachments are checked: a detached or replaced program runs again
/// within this interval (plus the time to attach it).
pub(super) const INTERFACE_WATCH: Duration = Duration::from_secs(1);

impl Agent {
    /// Reconciles the attachments, then logs, alerts on and counts what changed.
    pub(super) fn watch_interfaces(&mut self) {
        let changes = self.dataplane.reconcile();
        self.show_coverage();
        if changes.is_empty() {
            return;
        }
        let generation = self.status.read().map_or(0, |s| s.generation);
        let mut tampered = 0;
        for change in changes {
            match change {
                Change::Attached { interface } => {
                    info!("{interface}: attached (it matches `interfaces`)")
                }
                Change::Tampered {
                    interface,
                    hook,
                    found,
                    reattached,
                } => {
                    tampered += 1;
                    let found = match found.as_slice() {
                        [] => "no program".to_owned(),
                        ids => format!("program ids {ids:?}"),
                    };
                    let what = format!(
                        "the {} program was detached or replaced (found {found})",
                        hook.name()
                    );
                    let reason = match &reattached {
                        Ok(()) => format!("{what}; re-attached"),
                        Err(e) => format!("{what}; re-attaching failed, retrying: {e}"),
                    };
                    match reattached {
                        Ok(()) => warn!("tamper on {interface}: {reason}"),
                        Err(_) => error!("tamper on {interface}: {reason}"),
                    }
                    let direction = match hook {
                        Hook::XdpIngress => "ingress",
                        Hook::TcEgress => "egress",
                    };
                    let _ = self
                        .alerts
                        .try_send(alert::tamper(&interface, direction, reason, generation));
                }
                Change::Repaired { interface, hook } => {
                    info!("{interface}: the {} program is re-attached", hook.name())
                }
                Change::Refused { interface, reason } => {
                    warn!("interface {interface} refused, not enforced on: {reason}")
                }
                Change::Removed { interface } => {
                    info!("{interface}: gone; its attachment is dropped")
                }
                Change::Failed { interface, error } => {
                    error!("interface {interface}: attaching failed, retrying: {error}")
                }
            }
        }
        if let Ok(mut status) = self.status.write() {
            status.watch.tamper_total += tampered;
        }
        self.show_interfaces();
    }

    /// Raises (or clears) the faults of what the last pass found unguarded: named
    /// interfaces that do not exist and, on a gateway, interfaces that are up without
    /// the XDP program.
    fn show_coverage(&self) {
        let coverage = self.dataplane.coverage();
        let missing = coverage.missing.iter().map(|i| {
            format!(
                "interface {i} does not exist (in this network namespace): enforced on as \
                 soon as it appears"
            )
        });
        let unguarded = coverage
            .unguarded
            .iter()
            .filter(|_| self.config.role == Role::Gateway)
            .map(|i| {
                format!("unguarded interface {i}: forwarded packets from it are judged on egress")
            });
        let Ok(mut status) = self.status.write() else {
            return;
        };
        set_fault(&mut status, FaultArea::Interfaces, missing.collect());
        set_fault(&mut status, FaultArea::Unguarded, unguarded.collect());
    }

    /// Shows the attached hooks and the refused interfaces in the status.
    pub(super) fn show_interfaces(&self) {
        let hooks = self
            .dataplane
            .hooks()
            .into_iter()
            .map(|(interface, hook, attached)| HookStatus {
                interface,
                hook: hook.name().into(),
                attached,
            })
            .collect();
        let refused = self
            .dataplane
            .refused()
            .into_iter()
            .map(|(interface, reason)| RefusedInterface { interface, reason })
            .collect();
        if let Ok(mut status) = self.status.write() {
            status.hooks = hooks;
            status.watch.refused = refused;
        }
    }
}

/// Raises the fault in `area` with `messages` (logged when they change), or clears
/// it when there are none.
fn set_fault(status: &mut AgentStatus, area: FaultArea, messages: Vec<String>) {
    if messages.is_empty() {
        if let Some(fault) = status.clear(area) {
            info!("fault {} cleared: {}", area.name(), fault.message);
        }
        return;
    }
    let message = messages.join("; ");
    if status
        .faults
        .iter()
        .any(|f| f.area == area && f.message == message)
    {
        return;
    }
    warn!("{message}");
    status.raise(area, message, 1);
}
