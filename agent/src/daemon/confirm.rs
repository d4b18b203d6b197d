//! Commit-confirmed apply: a new policy stays only if it is confirmed in time, by
//! `ward confirm` or by the confirm probe reaching the management path through it.
//! A policy put in force without a window (no `[failsafe] confirm_within`: a file
//! change, SIGHUP, `ward reload`) is remembered as [`Unconfirmed`], so that a later
//! `ward apply --confirm-within` puts it under confirmation rather than finding
//! nothing to do.
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::{task::JoinHandle, time::Instant};
use tracing::{error, info, warn};

use super::{
    bus::{Bus, Request, RequestError},
    Agent,
};
use crate::{
    policy::Loaded,
    state::{PendingConfirmation, Rollback},
};

/// How often the confirm probe tries, and how long one try may take.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// A policy in force that is rolled back at `deadline` unless confirmed.
pub struct Pending {
    /// The generation awaiting confirmation.
    pub generation: u64,
    /// The last confirmed policy, restored on roll-back.
    pub rollback_to: Arc<Loaded>,
    /// When the roll-back happens.
    pub deadline: Instant,
    wall_deadline: SystemTime,
    probe: Option<JoinHandle<()>>,
}

impl Pending {
    /// Starts waiting `within` for the confirmation of `generation`; with `probe`, a
    /// task tries to connect there every second and confirms on the first success.
    pub fn new(
        generation: u64,
        rollback_to: Arc<Loaded>,
        within: Duration,
        probe: Option<SocketAddr>,
        requests: Bus,
    ) -> Self {
        let probe = probe.map(|addr| tokio::spawn(confirm_probe(addr, generation, requests)));
        Pending {
            generation,
            rollback_to,
            deadline: Instant::now() + within,
            wall_deadline: SystemTime::now() + within,
            probe,
        }
    }

    /// When the roll-back happens, as a wall-clock time.
    pub fn wall_deadline(&self) -> SystemTime {
        self.wall_deadline
    }

    /// What `ward status` shows of it; `hash` is the pending policy's.
    pub fn status(&self, hash: &str) -> PendingConfirmation {
        PendingConfirmation {
            generation: self.generation,
            hash: hash.to_owned(),
            deadline: self.wall_deadline,
            rollback_to: self.rollback_to.compiled.hash.clone(),
        }
    }
}

/// The policy in force went in without confirmation (no window) since the last
/// settled one (the policy the agent started with, or one confirmed or rolled back to).
pub struct Unconfirmed {
    /// The settled policy it replaced: what a roll-back returns to.
    pub rollback_to: Arc<Loaded>,
    /// What put the policy in force now in force (`policy file change`, `SIGHUP`,
    /// `request`).
    pub trigger: String,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(probe) = self.probe.take() {
            probe.abort();
        }
    }
}

impl Agent {
    /// Puts the policy in force, `generation` with `hash`, under confirmation: rolled
    /// back to `rollback_to` unless confirmed `within`. Returns the deadline.
    pub(super) fn await_confirmation(
        &mut self,
        generation: u64,
        hash: &str,
        rollback_to: Arc<Loaded>,
        within: Duration,
    ) -> SystemTime {
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
        let deadline = pending.wall_deadline();
        if let Ok(mut status) = self.status.write() {
            status.pending_confirmation = Some(pending.status(hash));
        }
        self.unconfirmed = None;
        self.pending = Some(pending);
        deadline
    }

    /// Confirms the pending policy (only `generation`'s, when given).
    pub(super) fn confirm(
        &mut self,
        by: &str,
        generation: Option<u64>,
    ) -> Result<u64, RequestError> {
        let pending = match &self.pending {
            Some(p) if generation.is_none_or(|g| g == p.generation) => p.generation,
            _ => return Err(RequestError::NothingToConfirm),
        };
        self.pending = None;
        if let Ok(mut status) = self.status.write() {
            status.pending_confirmation = None;
        }
        self.source.keep_last_good(&self.loaded);
        info!("policy generation {pending} confirmed by {by}");
        Ok(pending)
    }

    /// Commit-confirms the start when `[failsafe] confirm_within` is set: a policy in
    /// force as `generation` that is not the last good one (the last confirmed, kept in
    /// `state_dir`) must be confirmed in time, or the last good one comes back. A start
    /// with none kept (the first) is not commit-confirmed: there is nothing to return
    /// to; its policy becomes the last good one, as every policy in force that awaits
    /// no confirmation does.
    pub(super) fn confirm_start(&mut self, generation: u64) {
        let last_good = match self.config.failsafe.confirm_within {
            Some(within) => self
                .source
                .last_good()
                .load()
                .map(|l| l.map(|l| (l, within))),
            None => Ok(None),
        };
        match last_good {
            Ok(Some((last, within))) if last.compiled.hash != self.loaded.compiled.hash => {
                let hash = self.loaded.compiled.hash.clone();
                warn!(
                    "policy {hash} is not the last confirmed one ({}): the start is commit-confirmed",
                    last.compiled.hash
                );
                self.await_confirmation(generation, &hash, Arc::new(last), within);
            }
            Err(e) => {
                error!("the last confirmed policy cannot be used ({e}): the start is not commit-confirmed");
                self.source.keep_last_good(&self.loaded);
            }
            Ok(_) => self.source.keep_last_good(&self.loaded),
        }
    }

    /// Puts the last confirmed policy back in force, logged and counted.
    pub(super) fn roll_back(&mut self, why: &str) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let unconfirmed = self.loaded.compiled.hash.clone();
        let previous = pending.rollback_to.clone();
        let hash = previous.compiled.hash.clone();
        match self.publish(previous) {
            Ok(generation) => {
                self.source.keep_last_good(&self.loaded);
                error!(
                    "rolled back: policy {unconfirmed} (generation {}) was not kept because {why}; \
                     policy {hash} is in force again as generation {generation}",
                    pending.generation
                );
                if let Ok(mut status) = self.status.write() {
                    status.pending_confirmation = None;
                    status.rollbacks_total += 1;
                    status.last_rollback = Some(Rollback {
                        at: SystemTime::now(),
                        unconfirmed,
                        generation,
                        hash,
                        reason: why.to_owned(),
                    });
                }
            }
            Err(e) => {
                error!("rolling back failed ({e:#}); the unconfirmed policy stays in force");
                if let Ok(mut status) = self.status.write() {
                    status.pending_confirmation = None;
                }
            }
        }
    }
}

/// Connects to `addr` every second until it answers, then confirms `generation`.
async fn confirm_probe(addr: SocketAddr, generation: u64, requests: Bus) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let attempt = tokio::time::timeout(PROBE_EVERY, tokio::net::TcpStream::connect(addr));
        if let Ok(Ok(_)) = attempt.await {
            info!("confirm probe: {addr} answers through generation {generation}");
            let _ = requests
                .send(Request::Confirm {
                    by: format!("the confirm probe to {addr}"),
                    generation: Some(generation),
                    reply: None,
                })
                .await;
            return;
        }
    }
}
