//! The control socket: the daemon answers `ward status`, `ward flows`, `ward top` and
//! `ward reload` on a root-only Unix socket, one JSON line per request and per answer.
//! The protocol is described in `docs/control.md`.
mod client;
mod filter;
mod protocol;
mod server;
#[cfg(test)]
pub(crate) mod tests;

use std::path::PathBuf;

pub use client::{Client, FlowEvent, FlowStream};
pub use filter::{parse_addr, FlowFilter, FlowVerdict};
pub use protocol::{
    CountersSummary, Lagged, Request, StatusReply, ZonePairCount, PERMISSION_DENIED,
};
pub use server::{authorized, bind, serve, CounterSource};

/// Why the control socket could not be set up, reached or understood.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket's directory or file could not be created, removed or bound.
    #[error("control socket {path}")]
    Setup {
        /// The directory or socket.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another daemon answers on the socket.
    #[error("another ward daemon is listening on {0}")]
    InUse(PathBuf),
    /// Something that is not a socket is where the socket goes.
    #[error("{0} exists and is not a socket; remove it or set `control_socket`")]
    NotASocket(PathBuf),
    /// Nothing listens on the socket.
    #[error("cannot reach the ward daemon at {0}: is `ward run` running?")]
    Unreachable(PathBuf),
    /// The caller may not use the socket.
    #[error("permission denied on {0}: run as root")]
    PermissionDenied(PathBuf),
    /// Reading from or writing to the daemon failed.
    #[error("connection to the ward daemon at {path}")]
    Connection {
        /// The socket.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The daemon closed the connection without an answer, or ended a stream.
    #[error("the ward daemon at {0} closed the connection")]
    Closed(PathBuf),
    /// The daemon answered with an error.
    #[error("the ward daemon answered: {0}")]
    Daemon(String),
    /// The daemon's answer does not follow the protocol.
    #[error("unexpected answer from the ward daemon: {0}")]
    Protocol(String),
}
