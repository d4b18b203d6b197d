//! Publishing a policy (and adopting the one an earlier agent left in force), and
//! reloading it from its source, commit-confirmed when asked.
use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use tracing::{error, info, warn};

/// How long the daemon waits with nothing to do before it brings the idle slot to the
/// policy in force.
pub(super) const IDLE_SYNC_DELAY: Duration = Duration::from_millis(10);

use super::{bus::ReloadOutcome, confirm::Pending, poisoned, Agent};
use crate::{
    policy::Loaded,
    state::{FaultArea, PolicyNames, ReloadFailure},
};

impl Agent {
    /// Publishes a checked policy: harvests the counters of the slot it will overwrite
    /// and names the slot's new ids (before the switch, so no scrape sees new ids with
    /// old names), writes the policy there with the grants in force and switches to
    /// it. Returns the generation.
    pub(super) fn publish(&mut self, loaded: Arc<Loaded>) -> anyhow::Result<u64> {
        let next = self.dataplane.next_slot()?;
        let slot = usize::from(next.slot);
        // Grants whose zones the new policy lacks end before it is in force.
        self.end_orphan_grants(&loaded.compiled)?;
        {
            let mut counters = self.counters.lock().map_err(poisoned)?;
            let previous = self.status.read().map_err(poisoned)?.slots[slot].clone();
            counters.harvest(next.slot, previous.as_ref())?;
            self.status.write().map_err(poisoned)?.slots[slot] =
                Some(PolicyNames::new(next.generation, &loaded.compiled));
        }
        let generation = match self.dataplane.publish(&loaded.compiled, &self.grants) {
            Ok(g) => g,
            Err(e) => {
                // The slot was not switched to; its half-written contents have no names.
                self.status.write().map_err(poisoned)?.slots[slot] = None;
                return Err(e.into());
            }
        };
        let previous = std::mem::replace(&mut self.loaded, loaded);
        self.idle_behind = true;
        let mut status = self.status.write().map_err(poisoned)?;
        status.generation = generation;
        status.loaded_at = Some(SystemTime::now());
        drop(status);
        self.source.applied(&self.loaded, generation);
        // A roll-back would return to the pending one's target, or to `previous`.
        let rollback = self.pending.as_ref().map_or(&previous, |p| &p.rollback_to);
        self.source
            .keep_files_of(&[&self.loaded.compiled.hash, &rollback.compiled.hash]);
        Ok(generation)
    }

    /// Brings the idle slot to the policy in force, so that the next reload writes only
    /// what it changes from the policy in force (not from the one before it). A
    /// failure only costs the next reload a full write.
    pub(super) fn sync_idle(&mut self) {
        self.idle_behind = false;
        let generation = self.status.read().map_or(0, |s| s.generation);
        match self.dataplane.sync_idle(&self.loaded.compiled) {
            Ok(()) => info!(
                "idle slot brought to generation={generation} (a reload writes its difference from it)"
            ),
            Err(e) => warn!(
                "the idle slot could not be brought to generation {generation} (the next reload \
                 writes every entry): {:#}",
                anyhow::Error::from(e)
            ),
        }
        super::memory::release_freed();
    }

    /// Takes over the policy an earlier agent left in force as `generation` (it is
    /// `self.loaded`, as [`Dataplane::in_force`] found): names its slot, writes nothing.
    pub(super) fn adopt(&mut self, generation: u64) -> anyhow::Result<()> {
        let slot = usize::from(self.dataplane.slot_in_force()?);
        let mut status = self.status.write().map_err(poisoned)?;
        status.slots[slot] = Some(PolicyNames::new(generation, &self.loaded.compiled));
        status.generation = generation;
        status.loaded_at = Some(SystemTime::now());
        drop(status);
        self.source.applied(&self.loaded, generation);
        Ok(())
    }

    /// Loads the policy again and publishes it if it changed; a refused policy leaves
    /// the one in force untouched.
    /// With `confirm_within` (or the configured window), a new policy must then be
    /// confirmed in time or is rolled back.
    pub(super) fn reload(
        &mut self,
        trigger: &str,
        confirm_within: Option<Duration>,
    ) -> ReloadOutcome {
        let confirm_within = confirm_within.or(self.config.failsafe.confirm_within);
        let current = self
            .status
            .read()
            .ok()
            .and_then(|s| s.current().cloned())
            .unwrap_or_default();
        let mut outcome = ReloadOutcome {
            ok: false,
            changed: false,
            generation: current.generation,
            hash: current.hash.clone(),
            messages: Vec::new(),
            confirm_by: None,
        };
        let previous = self.loaded.clone();
        let result = match self.source.load() {
            Err(messages) => Err(messages),
            Ok(loaded) => {
                outcome.messages = loaded.warnings.iter().map(ToString::to_string).collect();
                if loaded.compiled.hash == current.hash {
                    Ok(None)
                } else {
                    let hash = loaded.compiled.hash.clone();
                    self.publish(Arc::new(loaded))
                        .map(|g| Some((g, hash)))
                        .map_err(|e| vec![format!("{e:#}")])
                }
            }
        };
        let mut status = match self.status.write() {
            Ok(s) => s,
            Err(_) => return outcome,
        };
        match result {
            Ok(Some((generation, hash))) => {
                info!("enforcing generation={generation} policy={hash} (reloaded on {trigger})");
                status.last_reload_ok = Some(SystemTime::now());
                status.clear(FaultArea::Policy);
                if let Some(within) = confirm_within {
                    // Roll-back goes to the last confirmed policy, however many
                    // unconfirmed ones came in between.
                    let rollback_to = self
                        .pending
                        .take()
                        .map_or(previous, |p| p.rollback_to.clone());
                    let pending = Pending::new(
                        generation,
                        rollback_to,
                        within,
                        self.config.failsafe.confirm_probe,
                        self.requests.clone(),
                    );
                    warn!(
                        "generation {generation} must be confirmed within {} (`ward confirm`), or the previous policy comes back",
                        humantime::format_duration(within)
                    );
                    outcome.confirm_by = Some(pending.wall_deadline());
                    status.pending_confirmation = Some(pending.status(&hash));
                    self.pending = Some(pending);
                }
                outcome = ReloadOutcome {
                    ok: true,
                    changed: true,
                    generation,
                    hash,
                    ..outcome
                };
            }
            Ok(None) => {
                info!("policy unchanged on {trigger}; nothing rewritten");
                status.clear(FaultArea::Policy);
                if let Some(p) = &self.pending {
                    outcome.confirm_by = Some(p.wall_deadline());
                }
                status.last_reload_ok = Some(SystemTime::now());
                outcome.ok = true;
            }
            Err(messages) => {
                error!(
                    "reload refused on {trigger}, the previous policy stays in force: {}",
                    messages.join("\n")
                );
                status.last_reload_error = Some(ReloadFailure {
                    at: SystemTime::now(),
                    error: messages.join("\n"),
                });
                let first = messages.first().map_or("", String::as_str);
                let message = format!(
                    "reload refused on {trigger}; generation {} stays in force: {first}",
                    status.generation
                );
                status.raise(FaultArea::Policy, message, 1);
                outcome.messages = messages;
            }
        }
        drop(status);
        super::memory::release_freed();
        outcome
    }
}
