//! The daemon's bus: every request the daemon carries out for someone else (the
//! control socket, the scan detector, the confirm probe) is one [`Request`] on one
//! channel, answered on its `reply` with a typed [`RequestError`] on failure.
//!
//! A new control command adds a variant here, its handling in [`Agent::handle`] and
//! its line in the control protocol.
use std::{net::IpAddr, time::Duration, time::SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::Agent;
use crate::{
    breakglass::{BreakglassError, Grant, GrantRequest},
    dataplane::{DataplaneError, QuarantineEntry},
};

/// Where requests to the daemon go.
pub type Bus = mpsc::Sender<Request>;

/// Where the daemon answers one request.
pub type Reply<T> = oneshot::Sender<Result<T, RequestError>>;

/// How many requests may wait for the daemon.
pub(super) const BACKLOG: usize = 64;

/// A request to the daemon; it answers on `reply`.
#[derive(Debug)]
pub enum Request {
    /// Reload the policy now; with `confirm_within`, roll it back unless confirmed in
    /// time (`None`: the agent configuration's `[failsafe] confirm_within`).
    Reload {
        /// The confirmation window asked for.
        confirm_within: Option<Duration>,
        /// Put it in force even if the lock-out preflight would refuse it.
        force: bool,
        /// Where the outcome goes (a refused policy is an outcome, not an error).
        reply: oneshot::Sender<ReloadOutcome>,
    },
    /// Confirm the policy awaiting confirmation; answers its generation.
    Confirm {
        /// Who confirms (for the log).
        by: String,
        /// Only this generation (the probe confirms what it probed); `None`: any.
        generation: Option<u64>,
        /// Where the outcome goes; `None`: nobody waits for it.
        reply: Option<Reply<u64>>,
    },
    /// Start a break-glass grant; answers it.
    Breakglass {
        /// What is asked.
        request: GrantRequest,
        /// Who asks (the operator's name and uid).
        by: String,
        /// Where the outcome goes.
        reply: Reply<Grant>,
    },
    /// End break-glass grant `id` before it expires; answers what it was.
    EndBreakglass {
        /// The grant's number.
        id: u32,
        /// Who ends it.
        by: String,
        /// Where the outcome goes.
        reply: Reply<Grant>,
    },
    /// Quarantine a host.
    Quarantine {
        /// The host.
        ip: IpAddr,
        /// For how long; until released when `None`.
        ttl: Option<Duration>,
        /// Why.
        reason: String,
        /// Who asks.
        by: String,
        /// The outcome.
        reply: Reply<QuarantineEntry>,
    },
    /// End a host's quarantine.
    Release {
        /// The host.
        ip: IpAddr,
        /// Who asks.
        by: String,
        /// The outcome.
        reply: Reply<QuarantineEntry>,
    },
    /// List the quarantined hosts.
    Quarantines {
        /// The list.
        reply: Reply<Vec<QuarantineEntry>>,
    },
    /// Decide a flow as the kernel would now (`ward explain --live`).
    Explain {
        /// Source: an address, a CIDR prefix or a zone name.
        from: String,
        /// Destination: an address, a CIDR prefix or a zone name.
        to: String,
        /// `tcp/PORT`, `udp/PORT`, `icmp` or a catalogue name.
        service: String,
        /// One line per port.
        reply: Reply<Vec<ExplainLine>>,
    },
}

/// Why the daemon did not carry out a request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// `ward confirm` while no policy awaits confirmation.
    #[error("nothing to confirm: no policy awaits confirmation")]
    NothingToConfirm,
    /// An endpoint or the service of a live explain is not understood.
    #[error(transparent)]
    Explain(#[from] crate::policy::ExplainError),
    /// A break-glass grant was refused or is not in force.
    #[error(transparent)]
    Breakglass(#[from] BreakglassError),
    /// A local quarantine or release of a host of the fleet quarantine list.
    #[error("{ip} is in the fleet quarantine of signed bundle version {version}: {why}")]
    Fleet {
        /// The host.
        ip: std::net::IpAddr,
        /// The version of the bundle that set it.
        version: u64,
        /// Why the request is refused.
        why: &'static str,
    },
    /// The kernel maps could not be read or written (or the host is not quarantined).
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
    /// Anything else, with its causes.
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

/// One line of the answer to a live explain: one port's decision.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExplainLine {
    /// Whether the flow passes (`allow` or `audit`).
    pub passes: bool,
    /// The decision as `ward explain` prints it.
    pub line: String,
}

impl From<&crate::policy::Decision> for ExplainLine {
    fn from(d: &crate::policy::Decision) -> Self {
        ExplainLine {
            passes: d.passes(),
            line: d.to_string(),
        }
    }
}

/// Outcome of a reload, as `ward reload` prints it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReloadOutcome {
    /// Whether the policy in force is the one on disk now.
    pub ok: bool,
    /// Whether a new generation was published (false when unchanged or refused).
    pub changed: bool,
    /// Generation in force after the reload.
    pub generation: u64,
    /// Hash of the policy in force after the reload.
    pub hash: String,
    /// Errors and warnings of the checker, or the dataplane error, one per line.
    pub messages: Vec<String>,
    /// When the new policy is rolled back unless confirmed (commit-confirmed apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_by: Option<SystemTime>,
}

impl Agent {
    /// Carries out one request and answers it.
    pub(super) fn handle(&mut self, request: Request) {
        match request {
            Request::Reload {
                confirm_within,
                force,
                reply,
            } => {
                let _ = reply.send(self.reload("request", confirm_within, force));
            }
            Request::Confirm {
                by,
                generation,
                reply,
            } => {
                let confirmed = self.confirm(&by, generation);
                if let Some(reply) = reply {
                    let _ = reply.send(confirmed);
                }
            }
            Request::Breakglass { request, by, reply } => {
                let _ = reply.send(self.grant(&request, by));
            }
            Request::EndBreakglass { id, by, reply } => {
                let _ = reply.send(self.end_grant(id, &by));
            }
            Request::Quarantine {
                ip,
                ttl,
                reason,
                by,
                reply,
            } => {
                let _ = reply.send(self.quarantine(ip, ttl, reason, by));
                self.count_quarantines();
            }
            Request::Release { ip, by, reply } => {
                let _ = reply.send(self.release(ip, by));
                self.count_quarantines();
            }
            Request::Quarantines { reply } => {
                let list = self.dataplane.quarantines();
                let _ = reply.send(list.map(|l| self.with_authors(l)).map_err(Into::into));
                self.count_quarantines();
            }
            Request::Explain {
                from,
                to,
                service,
                reply,
            } => {
                let _ = reply.send(self.explain(&from, &to, &service));
            }
        }
    }
}
