//! Commit-confirmed apply: a new policy stays only if it is confirmed in time, by
//! `ward confirm` or by the confirm probe reaching the management path through it.
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::{task::JoinHandle, time::Instant};
use tracing::{error, info};

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

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(probe) = self.probe.take() {
            probe.abort();
        }
    }
}

impl Agent {
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
        info!("policy generation {pending} confirmed by {by}");
        Ok(pending)
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
