//! The lock-out preflight: before a policy is put in force, the established TCP
//! connections to this host's management ports (`[failsafe] tcp_ports`, 22 by default)
//! are judged under the new policy, as the kernel would re-judge them (failsafe, rules,
//! audit: [`Policy::decide`], the decision `ward explain` prints). A connection the new
//! policy would cut refuses the change, naming it, unless forced.
//!
//! Connections from a loopback address never cross an interface Ward guards and are
//! not judged.
mod sockets;

use std::{fmt, path::PathBuf};

pub use sockets::{established, parse_table, Session, TABLES};

use crate::{
    config::AgentConfig,
    policy::{Decision, Enforcement, Policy, Service},
};

/// Why the preflight refuses, or could not look.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// A socket table could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The table.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of a socket table is not what the kernel writes.
    #[error("{path}:{line}: not a socket table line: `{text}`")]
    Line {
        /// The table.
        path: PathBuf,
        /// Its line number (the header is line 1).
        line: usize,
        /// The line.
        text: String,
    },
    /// The new policy would cut these connections.
    #[error("{}", Cuts(.0))]
    WouldCut(Vec<Cut>),
}

/// An established connection to a management port the new policy would cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The connection.
    pub session: Session,
    /// The new policy's verdict on it (a deny).
    pub decision: Decision,
}

/// `198.18.24.10 → 198.18.24.1:22 (deny admin -> admin tcp/22: no rule allows it)`.
impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.session, self.decision)
    }
}

/// `the new policy would cut N established session(s) to a management port: CUT; CUT`.
struct Cuts<'a>(&'a [Cut]);

impl fmt::Display for Cuts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        let s = if n == 1 { "" } else { "s" };
        write!(
            f,
            "the new policy would cut {n} established session{s} to a management port: "
        )?;
        for (i, cut) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{cut}")?;
        }
        Ok(())
    }
}

/// The connections of `sessions` to a port of `ports` that `new` cuts under
/// `enforcement`, among those `current` (the policy in force, when known) lets
/// through: a connection the policy in force already cut is not cut again. Each
/// (remote address, local address and port) is named once, in address order.
pub fn cuts(
    new: &Policy,
    current: Option<&Policy>,
    enforcement: &Enforcement,
    ports: &[u16],
    sessions: &[Session],
) -> Vec<Cut> {
    let mut judged: Vec<Session> = sessions
        .iter()
        .filter(|s| ports.contains(&s.local.port()) && !s.remote.ip().is_loopback())
        .map(|s| Session {
            remote: std::net::SocketAddr::new(s.remote.ip(), 0),
            local: s.local,
        })
        .collect();
    judged.sort();
    judged.dedup();
    // Two addresses of one family: always judged (an error would judge nothing).
    let decide = |policy: &Policy, s: &Session| {
        let (from, to) = (s.remote.ip().to_string(), s.local.ip().to_string());
        let service = Service::Tcp(s.local.port());
        policy.decide(&from, &to, service, enforcement).ok()
    };
    judged
        .into_iter()
        .filter(|s| current.is_none_or(|c| decide(c, s).is_some_and(|d| d.passes())))
        .filter_map(|session| {
            let decision = decide(new, &session)?;
            (!decision.passes()).then_some(Cut { session, decision })
        })
        .collect()
}

/// Refuses `new` when it cuts one of `sessions` (this namespace's established
/// connections as [`established`] read them, or why they could not be read) to a
/// management port that `current` lets through (see [`cuts`]).
pub fn check(
    new: &Policy,
    current: Option<&Policy>,
    config: &AgentConfig,
    sessions: Result<Vec<Session>, PreflightError>,
) -> Result<(), PreflightError> {
    let sessions = sessions?;
    let ports = &config.failsafe.tcp_ports;
    let found = cuts(new, current, &config.enforcement(), ports, &sessions);
    if found.is_empty() {
        Ok(())
    } else {
        Err(PreflightError::WouldCut(found))
    }
}

#[cfg(test)]
mod tests;
