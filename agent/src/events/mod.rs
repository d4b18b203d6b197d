//! Flow events and alerts: from the kernel ring buffer (and the agent's alerts) to
//! OCSF JSON lines stamped with the host's identity, to a syslog collector
//! (`event_sink`), and to live subscribers.
pub mod decode;
pub mod device;
pub mod reader;
pub mod record;
pub mod sink;
mod wire;
pub mod writer;

pub use record::FlowRecord;
pub use writer::EventLog;

#[cfg(test)]
mod tests;
