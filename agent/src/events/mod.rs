//! Flow events: from the kernel ring buffer to JSON lines and live subscribers.
pub mod record;

pub use record::FlowRecord;
