//! Keeping the attachments true to the configuration while the agent runs: interfaces
//! that appear and match `interfaces` (names or `*`/`?`/`[…]` patterns) are attached,
//! layer-3 devices are refused, vanished ones dropped, and a hook whose program was
//! detached or replaced behind the agent's back is attached again. Each pass also
//! records what stays unguarded and keeps the `ATTACHED` map in step.
use std::collections::BTreeMap;

use aya::programs::{SchedClassifier, TcAttachType};
use tracing::warn;
use ward_common::program_names;

use super::{
    attach::{self, tcx_supported, Attachment},
    coverage::{coverage, Coverage},
    netlink::{self, Link},
    Dataplane, DataplaneError,
};
pub use attach::Hook;

/// What one [`Dataplane::reconcile`] changed or found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A matching interface appeared; both programs are attached to it.
    Attached {
        /// The interface.
        interface: String,
    },
    /// A hook no longer ran the agent's program: detached or replaced by someone else.
    Tampered {
        /// The interface.
        interface: String,
        /// The hook.
        hook: Hook,
        /// The programs found there instead (ids; empty: none).
        found: Vec<u32>,
        /// Whether the program was attached again, or why not (retried every pass).
        reattached: Result<(), String>,
    },
    /// A hook that could not be attached again after tampering is attached again.
    Repaired {
        /// The interface.
        interface: String,
        /// The hook.
        hook: Hook,
    },
    /// A matching interface cannot be enforced on: it is not an Ethernet device.
    Refused {
        /// The interface.
        interface: String,
        /// Why, in one line.
        reason: String,
    },
    /// An attached interface disappeared (or was re-created: then it is attached anew).
    Removed {
        /// The interface.
        interface: String,
    },
    /// Attaching to a matching interface failed (reported again only if the error changes).
    Failed {
        /// The interface (`*` when the interfaces could not be listed).
        interface: String,
        /// Why.
        error: String,
    },
}

/// The configured `interfaces`: names, and patterns for interfaces that come and go.
#[derive(Debug, Default)]
pub struct Wanted {
    names: Vec<String>,
    patterns: Vec<glob::Pattern>,
}

impl Wanted {
    /// Parses the `interfaces` entries; an entry with `*`, `?` or `[` is a pattern.
    pub fn new(entries: &[String]) -> Result<Self, DataplaneError> {
        let mut wanted = Wanted::default();
        for entry in entries {
            if is_pattern(entry) {
                let pattern = glob::Pattern::new(entry).map_err(|e| DataplaneError::Interface {
                    interface: entry.clone(),
                    message: format!("invalid pattern in `interfaces`: {e}"),
                })?;
                wanted.patterns.push(pattern);
            } else {
                wanted.names.push(entry.clone());
            }
        }
        Ok(wanted)
    }

    /// The entries that name one interface.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether `interface` is named or matches a pattern.
    pub fn matches(&self, interface: &str) -> bool {
        self.names.iter().any(|n| n == interface)
            || self.patterns.iter().any(|p| p.matches(interface))
    }
}

/// Whether an `interfaces` entry is a pattern rather than a name.
fn is_pattern(entry: &str) -> bool {
    entry.contains(['*', '?', '['])
}

/// Why `link` is refused, or `None` when the programs can run on it.
pub fn refusal(link: &Link) -> Option<String> {
    (!link.is_ethernet()).then(|| {
        format!(
            "link type {} (ARPHRD {}) is not Ethernet: a layer-3 device such as tun or \
             WireGuard has no Ethernet header for Ward's programs to parse",
            link.link_type,
            u16::from(link.link_type)
        )
    })
}

/// Checks `interfaces` before anything is loaded: patterns parse, and every named
/// interface that exists in this network namespace is an Ethernet device (a missing
/// one is attached when it appears).
pub fn check_interfaces(entries: &[String]) -> Result<(), DataplaneError> {
    let wanted = Wanted::new(entries)?;
    let links = netlink::links().map_err(|e| DataplaneError::Interface {
        interface: "*".into(),
        message: e.to_string(),
    })?;
    for name in wanted.names() {
        let fail = |message: String| DataplaneError::Interface {
            interface: name.clone(),
            message,
        };
        let Some(link) = links.iter().find(|l| &l.name == name) else {
            continue;
        };
        if let Some(reason) = refusal(link) {
            return Err(fail(format!(
                "refused: {reason}; remove it from `interfaces`"
            )));
        }
    }
    Ok(())
}

/// What the watch remembers between passes.
#[derive(Debug, Default)]
pub struct Watch {
    /// The configured interfaces.
    pub wanted: Wanted,
    /// Refused interfaces: name → (index, reason), so each is reported once.
    refused: BTreeMap<String, (u32, String)>,
    /// Interfaces whose attach failed: name → error, so each error is reported once.
    failed: BTreeMap<String, String>,
    /// The last error listing the interfaces, reported once.
    list_error: Option<String>,
    /// What the last pass found unguarded.
    coverage: Coverage,
}

/// The ids the kernel gave the agent's two programs.
struct ProgramIds {
    xdp: u32,
    tc: u32,
}

impl Dataplane {
    /// Brings the attachments in line with the interfaces there are now: checks that
    /// every attached hook still runs our program (attaching it again if not), drops
    /// vanished interfaces, attaches new matching ones, refuses non-Ethernet ones.
    pub fn reconcile(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        let (links, ids) = match (netlink::links(), self.program_ids()) {
            (Ok(links), Ok(ids)) => (links, ids),
            (Err(e), _) => return self.list_failed(e.to_string()),
            (_, Err(e)) => return self.list_failed(format!("{:#}", anyhow::Error::from(e))),
        };
        self.watch.list_error = None;

        let mut kept = Vec::new();
        for mut a in std::mem::take(&mut self.attachments) {
            match links.iter().find(|l| l.name == a.interface) {
                Some(link) if link.index == a.ifindex => {
                    self.verify(&mut a, link, &ids, &mut changes);
                    kept.push(a);
                }
                _ => {
                    changes.push(Change::Removed {
                        interface: a.interface.clone(),
                    });
                    a.detach();
                }
            }
        }
        self.attachments = kept;

        self.watch
            .refused
            .retain(|name, (index, _)| links.iter().any(|l| &l.name == name && l.index == *index));
        self.watch
            .failed
            .retain(|name, _| links.iter().any(|l| &l.name == name));
        for link in &links {
            let attached = self.attachments.iter().any(|a| a.interface == link.name);
            if attached || !self.watch.wanted.matches(&link.name) {
                continue;
            }
            if let Some(reason) = refusal(link) {
                if !self.watch.refused.contains_key(&link.name) {
                    self.watch
                        .refused
                        .insert(link.name.clone(), (link.index, reason.clone()));
                    changes.push(Change::Refused {
                        interface: link.name.clone(),
                        reason,
                    });
                }
                continue;
            }
            match attach::attach(&mut self.ebpf, &self.pin_dir, &link.name) {
                Ok(a) => {
                    self.watch.failed.remove(&link.name);
                    self.attachments.push(a);
                    changes.push(Change::Attached {
                        interface: link.name.clone(),
                    });
                }
                Err(e) => {
                    let error = format!("{:#}", anyhow::Error::from(e));
                    if self.watch.failed.get(&link.name) != Some(&error) {
                        self.watch.failed.insert(link.name.clone(), error.clone());
                        changes.push(Change::Failed {
                            interface: link.name.clone(),
                            error,
                        });
                    }
                }
            }
        }
        self.update_coverage(&links);
        changes
    }

    /// What the last [`Dataplane::reconcile`] found unguarded.
    pub fn coverage(&self) -> &Coverage {
        &self.watch.coverage
    }

    /// Records what `links` leave unguarded and tells the programs which interfaces
    /// are guarded (retried at every pass when the map cannot be written).
    fn update_coverage(&mut self, links: &[Link]) {
        if let Err(e) = self.sync_attached() {
            warn!("{:#}", anyhow::Error::from(e));
        }
        let guarded: Vec<&str> = self
            .attachments
            .iter()
            .filter(|a| !a.down.contains(&Hook::XdpIngress))
            .map(|a| a.interface.as_str())
            .collect();
        self.watch.coverage = coverage(links, self.watch.wanted.names(), &guarded);
    }

    /// Every attached interface's hooks, and whether each runs our program.
    pub fn hooks(&self) -> Vec<(String, Hook, bool)> {
        self.attachments
            .iter()
            .flat_map(|a| Hook::ALL.map(|h| (a.interface.clone(), h, !a.down.contains(&h))))
            .collect()
    }

    /// The interfaces refused now, with the reason.
    pub fn refused(&self) -> Vec<(String, String)> {
        self.watch
            .refused
            .iter()
            .map(|(name, (_, reason))| (name.clone(), reason.clone()))
            .collect()
    }

    /// Checks both hooks of `a` on `link`; attaches again what is missing.
    fn verify(
        &mut self,
        a: &mut Attachment,
        link: &Link,
        ids: &ProgramIds,
        changes: &mut Vec<Change>,
    ) {
        for hook in Hook::ALL {
            let (ours, found) = match hook {
                Hook::XdpIngress => (ids.xdp, Ok(link.xdp_programs.clone())),
                Hook::TcEgress => (ids.tc, egress_programs(link)),
            };
            // A hook that cannot be queried now is checked again on the next pass.
            let Ok(found) = found else { continue };
            if found.contains(&ours) {
                continue;
            }
            let was_down = a.down.contains(&hook);
            if !was_down {
                a.down.push(hook);
            }
            let reattached = a
                .reattach(&mut self.ebpf, hook)
                .map_err(|e| format!("{:#}", anyhow::Error::from(e)));
            let interface = a.interface.clone();
            match (was_down, reattached) {
                (false, reattached) => changes.push(Change::Tampered {
                    interface,
                    hook,
                    found,
                    reattached,
                }),
                (true, Ok(())) => changes.push(Change::Repaired { interface, hook }),
                (true, Err(_)) => {}
            }
        }
    }

    fn program_ids(&self) -> Result<ProgramIds, DataplaneError> {
        let id = |name: &'static str| {
            self.ebpf
                .program(name)
                .ok_or(DataplaneError::Missing(name))?
                .info()
                .map(|i| i.id())
                .map_err(|source| DataplaneError::Program { name, source })
        };
        Ok(ProgramIds {
            xdp: id(program_names::XDP_INGRESS)?,
            tc: id(program_names::TC_EGRESS)?,
        })
    }

    /// Reports a failure to list the interfaces, once until it changes.
    fn list_failed(&mut self, error: String) -> Vec<Change> {
        if self.watch.list_error.as_ref() == Some(&error) {
            return Vec::new();
        }
        self.watch.list_error = Some(error.clone());
        vec![Change::Failed {
            interface: "*".into(),
            error,
        }]
    }
}

/// Ids of the programs on `link`'s egress hook: its TCX programs, or below 6.6 the BPF
/// filters of its clsact qdisc.
fn egress_programs(link: &Link) -> Result<Vec<u32>, String> {
    if tcx_supported() {
        let (_, programs) = SchedClassifier::query_tcx(&link.name, TcAttachType::Egress)
            .map_err(|e| e.to_string())?;
        Ok(programs.iter().map(|p| p.id()).collect())
    } else {
        netlink::egress_filter_programs(link.index).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests;
