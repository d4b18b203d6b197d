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

use super::{bus::ReloadOutcome, confirm::Unconfirmed, lockout::Sessions, poisoned, Agent};
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
        self.apply_fleet();
        // A roll-back would return to the pending one's target, the unconfirmed one's,
        // or to `previous`.
        let rollback = match (&self.pending, &self.unconfirmed) {
            (Some(p), _) => &p.rollback_to,
            (None, Some(u)) => &u.rollback_to,
            (None, None) => &previous,
        };
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
        self.apply_fleet();
        Ok(())
    }

    /// Loads the policy again and publishes it if it changed; a refused policy (by the
    /// checker, or by the lock-out preflight unless `force`) leaves the one in force
    /// untouched.
    /// With `confirm_within` (or the configured window), a new policy must then be
    /// confirmed in time or is rolled back; so must the policy on disk when it is
    /// already in force but went in without confirmation.
    pub(super) fn reload(
        &mut self,
        trigger: &str,
        confirm_within: Option<Duration>,
        force: bool,
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
        let sessions = Sessions::read();
        let result = match self.source.load() {
            Err(messages) => Err(messages),
            Ok(loaded) => {
                outcome.messages = loaded.warnings.iter().map(ToString::to_string).collect();
                if loaded.compiled.hash == current.hash {
                    Ok(None)
                } else if let Err(refusal) = self.lock_out(
                    &loaded,
                    Some(&previous),
                    sessions,
                    force,
                    "`ward reload --force` or `ward apply --force`",
                ) {
                    Err(vec![refusal])
                } else {
                    let hash = loaded.compiled.hash.clone();
                    self.publish(loaded)
                        .map(|g| Some((g, hash)))
                        .map_err(|e| vec![format!("{e:#}")])
                }
            }
        };
        match result {
            Ok(Some((generation, hash))) => {
                info!("enforcing generation={generation} policy={hash} (reloaded on {trigger})");
                self.reloaded();
                match (confirm_within, &self.pending) {
                    (Some(within), _) => {
                        // Roll-back goes to the last confirmed (or settled) policy,
                        // however many unconfirmed ones came in between.
                        let rollback_to = self.rollback_target().unwrap_or(previous);
                        let deadline =
                            self.await_confirmation(generation, &hash, rollback_to, within);
                        outcome.confirm_by = Some(deadline);
                    }
                    (None, Some(_)) => {}
                    (None, None) => {
                        self.source.keep_last_good(&self.loaded);
                        let unconfirmed = self.unconfirmed.get_or_insert(Unconfirmed {
                            rollback_to: previous,
                            trigger: String::new(),
                        });
                        trigger.clone_into(&mut unconfirmed.trigger);
                    }
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
                self.reloaded();
                match (&self.pending, confirm_within, self.unconfirmed.take()) {
                    (Some(p), _, unconfirmed) => {
                        outcome.confirm_by = Some(p.wall_deadline());
                        self.unconfirmed = unconfirmed;
                    }
                    (None, Some(within), Some(u)) => {
                        outcome.messages.push(format!(
                            "it went in force on {} without confirmation; it now awaits \
                             confirmation, or policy {} comes back",
                            u.trigger,
                            short(&u.rollback_to.compiled.hash)
                        ));
                        let deadline = self.await_confirmation(
                            current.generation,
                            &current.hash,
                            u.rollback_to,
                            within,
                        );
                        outcome.confirm_by = Some(deadline);
                    }
                    (None, _, unconfirmed) => self.unconfirmed = unconfirmed,
                }
                outcome.ok = true;
            }
            Err(messages) => {
                error!(
                    "reload refused on {trigger}, the previous policy stays in force: {}",
                    messages.join("\n")
                );
                if let Ok(mut status) = self.status.write() {
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
                }
                outcome.messages = messages;
            }
        }
        // The policy in force again, in a newer bundle: its fleet list goes in force.
        self.apply_fleet();
        super::memory::release_freed();
        outcome
    }

    /// Records a reload that left the policy on disk in force.
    fn reloaded(&self) {
        if let Ok(mut status) = self.status.write() {
            status.last_reload_ok = Some(SystemTime::now());
            status.clear(FaultArea::Policy);
        }
    }

    /// The policy a roll-back returns to, taken from the pending confirmation or the
    /// unconfirmed policy in force; `None` when the policy in force is settled.
    fn rollback_target(&mut self) -> Option<Arc<Loaded>> {
        let pending = self.pending.take().map(|p| p.rollback_to.clone());
        pending.or_else(|| self.unconfirmed.take().map(|u| u.rollback_to))
    }
}

/// The first 12 hex digits of a policy hash, as the commands print it.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
