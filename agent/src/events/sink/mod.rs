//! `event_sink`: every event also goes to a syslog collector (a SIEM), RFC 5424
//! framed (octet counting, RFC 6587/5425) over TCP or TLS, with the OCSF JSON as the
//! message.
//!
//! The event reader offers each event to a bounded channel ([`SinkHandle::offer`])
//! and never waits: a full channel drops the event from the sink (counted), never
//! from the event log. The sink task ([`task`]) connects, reconnects with back-off,
//! and counts what the collector acknowledged and what a broken connection may have
//! lost. `docs/events.md` documents the framing and the counts.
mod conn;
mod frame;
mod task;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::info;

use super::FlowRecord;
use crate::{
    config::{AgentConfig, SinkTransport},
    state::{SharedStatus, SinkStats},
};
pub use conn::SinkError;
pub use frame::Origin;

/// One event as the sink frames it.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkEvent {
    /// Milliseconds since the Unix epoch (the record's `time`).
    pub time: i64,
    /// The record's OCSF `severity_id`.
    pub severity_id: u32,
    /// `allow`, `deny`, `audit` or `alert` (the MSGID).
    pub verdict: String,
    /// The host that wrote it (`device.hostname`).
    pub hostname: String,
    /// The OCSF JSON line, as in the event log.
    pub json: String,
}

impl SinkEvent {
    /// The sink's view of a record and its JSON line.
    pub fn new(record: &FlowRecord, json: &str) -> Self {
        SinkEvent {
            time: record.time,
            severity_id: record.severity_id,
            verdict: record.verdict().to_owned(),
            hostname: record.device.hostname.clone(),
            json: json.to_owned(),
        }
    }
}

/// The reader's end of the sink: offers events without ever waiting.
#[derive(Clone, Debug)]
pub struct SinkHandle {
    tx: mpsc::Sender<SinkEvent>,
}

impl SinkHandle {
    /// A handle and the receiving end of a channel holding `capacity` events.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<SinkEvent>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (SinkHandle { tx }, rx)
    }

    /// Queues an event for the collector; `false` when it was dropped (the buffer is
    /// full, or the sink task is gone). Never waits.
    pub fn offer(&self, event: SinkEvent) -> bool {
        self.tx.try_send(event).is_ok()
    }
}

/// Starts the sink task of `config.event_sink`, if one is configured, and returns
/// the handle the event reader offers events to. Fails when the TLS settings
/// (`ca_file`) cannot be used.
pub fn start(config: &AgentConfig, status: &SharedStatus) -> Result<Option<SinkHandle>, SinkError> {
    let Some(url) = config.event_sink.clone() else {
        return Ok(None);
    };
    let tls = match url.transport {
        SinkTransport::Tcp => None,
        SinkTransport::Tls => Some(conn::tls_config(config.ca_file.as_deref())?),
    };
    let agent = match &config.agent_name {
        Some(name) => name.clone(),
        None => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let origin = Origin {
        procid: std::process::id(),
        agent,
        role: config.role.name(),
    };
    if let Ok(mut s) = status.write() {
        s.event_sink = Some(SinkStats {
            url: url.to_string(),
            ..SinkStats::default()
        });
    }
    let (handle, rx) = SinkHandle::channel(config.events.sink_buffer);
    info!(
        "event sink {url}: up to {} events buffered",
        config.events.sink_buffer
    );
    let target = conn::Target {
        host: url.host,
        port: url.port,
        tls: tls.map(Arc::new),
    };
    tokio::spawn(task::run(target, origin, rx, status.clone()));
    Ok(Some(handle))
}
