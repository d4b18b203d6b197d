//! The commands' side of the control socket (blocking: one request per connection).
use std::{
    io::{self, BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ControlError, FlowFilter, Request, StatusReply, ZonePairCount, PERMISSION_DENIED};
use crate::{
    breakglass::{Grant, GrantRequest},
    daemon::{ExplainLine, ReloadOutcome},
    dataplane::QuarantineEntry,
    events::FlowRecord,
};
use std::{net::IpAddr, time::Duration};

/// A client of the daemon's control socket.
#[derive(Clone, Debug)]
pub struct Client {
    path: PathBuf,
}

impl Client {
    /// A client of the socket at `path` (nothing is opened until a request).
    pub fn new(path: &Path) -> Self {
        Client {
            path: path.to_owned(),
        }
    }

    /// The agent's state and a counters summary.
    pub fn status(&self) -> Result<StatusReply, ControlError> {
        self.call(&Request::Status)
    }

    /// Totals by zone pair and verdict.
    pub fn counters(&self) -> Result<Vec<ZonePairCount>, ControlError> {
        self.call(&Request::Counters)
    }

    /// Asks the daemon to reload its policy now and waits for the outcome; with
    /// `confirm_within`, the daemon rolls it back unless [`Client::confirm`] comes in time;
    /// with `force`, the lock-out preflight does not stop it.
    pub fn reload(
        &self,
        confirm_within: Option<Duration>,
        force: bool,
    ) -> Result<ReloadOutcome, ControlError> {
        self.call(&Request::Reload {
            confirm_within_secs: confirm_within.map(|d| d.as_secs().max(1)),
            force,
        })
    }

    /// Confirms the policy awaiting confirmation; returns its generation.
    pub fn confirm(&self) -> Result<u64, ControlError> {
        self.call(&Request::Confirm)
    }

    /// Quarantines `ip` for `ttl` (until released when `None`).
    pub fn quarantine(
        &self,
        ip: IpAddr,
        ttl: Option<Duration>,
        reason: &str,
    ) -> Result<QuarantineEntry, ControlError> {
        self.call(&Request::Quarantine {
            ip,
            ttl_secs: ttl.map(|t| t.as_secs().max(1)),
            reason: reason.to_owned(),
        })
    }

    /// Ends the quarantine of `ip`.
    pub fn release(&self, ip: IpAddr) -> Result<QuarantineEntry, ControlError> {
        self.call(&Request::Release { ip })
    }

    /// The quarantined hosts.
    pub fn quarantines(&self) -> Result<Vec<QuarantineEntry>, ControlError> {
        self.call(&Request::Quarantines)
    }

    /// Starts a break-glass grant.
    pub fn breakglass(&self, request: GrantRequest) -> Result<Grant, ControlError> {
        self.call(&Request::Breakglass(request))
    }

    /// Ends break-glass grant `id`; `operator` names who ends it.
    pub fn end_breakglass(&self, id: u32, operator: &str) -> Result<Grant, ControlError> {
        self.call(&Request::EndBreakglass {
            id,
            operator: operator.to_owned(),
        })
    }

    /// The break-glass grants in force.
    pub fn grants(&self) -> Result<Vec<Grant>, ControlError> {
        self.call(&Request::Grants)
    }

    /// The decision on a flow as the agent would take it now, one line per port.
    pub fn explain(
        &self,
        from: &str,
        to: &str,
        service: &str,
    ) -> Result<Vec<ExplainLine>, ControlError> {
        self.call(&Request::Explain {
            from: from.to_owned(),
            to: to.to_owned(),
            service: service.to_owned(),
        })
    }

    /// Subscribes to the flow events that match `filter`; the daemon filters them.
    /// Returns once the daemon is subscribed: every event after that is in the stream.
    pub fn flows(&self, filter: FlowFilter) -> Result<FlowStream, ControlError> {
        let mut reader = self.send(&Request::Flows(filter))?;
        let line = read_line(&mut reader, &self.path)?
            .ok_or_else(|| ControlError::Closed(self.path.clone()))?;
        let value = parse(&line, &self.path)?;
        if value.get("subscribed").and_then(Value::as_bool) != Some(true) {
            return Err(ControlError::Protocol(format!(
                "a flows stream starts with {{\"subscribed\":true}}, not {}",
                line.trim()
            )));
        }
        Ok(FlowStream {
            reader,
            path: self.path.clone(),
        })
    }

    fn call<T: DeserializeOwned>(&self, request: &Request) -> Result<T, ControlError> {
        let mut reader = self.send(request)?;
        let line = read_line(&mut reader, &self.path)?
            .ok_or_else(|| ControlError::Closed(self.path.clone()))?;
        serde_json::from_value(parse(&line, &self.path)?)
            .map_err(|e| ControlError::Protocol(e.to_string()))
    }

    /// Connects and writes the request line.
    fn send(&self, request: &Request) -> Result<BufReader<UnixStream>, ControlError> {
        let mut stream = UnixStream::connect(&self.path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                ControlError::Unreachable(self.path.clone())
            }
            io::ErrorKind::PermissionDenied => ControlError::PermissionDenied(self.path.clone()),
            _ => ControlError::Connection {
                path: self.path.clone(),
                source: e,
            },
        })?;
        let mut line = serde_json::to_vec(request).expect("requests serialize");
        line.push(b'\n');
        match stream.write_all(&line) {
            // A refused peer is answered and cut off at once: its answer is still there to read.
            Err(e)
                if !matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                Err(ControlError::Connection {
                    path: self.path.clone(),
                    source: e,
                })
            }
            _ => Ok(BufReader::new(stream)),
        }
    }
}

/// What a `flows` subscription delivers.
#[derive(Clone, Debug, PartialEq)]
pub enum FlowEvent {
    /// A matching event.
    Record(Box<FlowRecord>),
    /// This many events were skipped because the client did not keep up.
    Lagged(u64),
}

/// The events of a `flows` subscription, until the daemon closes the connection.
#[derive(Debug)]
pub struct FlowStream {
    reader: BufReader<UnixStream>,
    path: PathBuf,
}

impl Iterator for FlowStream {
    type Item = Result<FlowEvent, ControlError>;

    fn next(&mut self) -> Option<Self::Item> {
        let line = match read_line(&mut self.reader, &self.path) {
            Ok(line) => line?,
            Err(e) => return Some(Err(e)),
        };
        Some(parse(&line, &self.path).and_then(|value| {
            if let Some(lagged) = value.get("lagged").and_then(Value::as_u64) {
                return Ok(FlowEvent::Lagged(lagged));
            }
            serde_json::from_value(value)
                .map(|r| FlowEvent::Record(Box::new(r)))
                .map_err(|e| ControlError::Protocol(e.to_string()))
        }))
    }
}

/// The next line, or `None` at the end of the stream.
fn read_line(reader: &mut impl BufRead, path: &Path) -> Result<Option<String>, ControlError> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(line)),
        Err(source) => Err(ControlError::Connection {
            path: path.to_owned(),
            source,
        }),
    }
}

/// A JSON answer line; `{"error": …}` becomes the error.
fn parse(line: &str, path: &Path) -> Result<Value, ControlError> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| ControlError::Protocol(e.to_string()))?;
    match value.get("error").and_then(Value::as_str) {
        Some(PERMISSION_DENIED) => Err(ControlError::PermissionDenied(path.to_owned())),
        Some(error) => Err(ControlError::Daemon(error.to_owned())),
        None => Ok(value),
    }
}
