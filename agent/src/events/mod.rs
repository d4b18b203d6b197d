//! Flow events: from the kernel ring buffer to JSON lines and live subscribers.
pub mod decode;
pub mod reader;
pub mod record;
pub mod writer;

pub use record::FlowRecord;
pub use writer::EventLog;
