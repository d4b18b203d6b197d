//! The `event_decode` target: one ring-buffer record through the event decoder.
use ward_common::{Reason, Verdict};

use ward::events::decode::{self, Clock, DecodeError};
use ward::events::FlowRecord;
use ward::state::PolicyNames;

/// Decodes `data` as the event reader does once the fixed policy is in force (generation
/// 1, so slot 1; slot 0 is empty), then checks the record's JSON line reads back as the
/// same record.
pub fn event_decode(data: &[u8]) -> Result<FlowRecord, DecodeError> {
    let event = decode::event(data)?;
    let slots = [None, Some(PolicyNames::new(1, &super::fixed().compiled))];
    let names = slots.get(usize::from(event.slot)).and_then(Option::as_ref);
    let interface = format!("if#{}", event.ifindex);
    let record = decode::record(&event, names, interface, &Clock::new());

    let line = serde_json::to_string(&record).expect("a record encodes as JSON");
    let back: FlowRecord = serde_json::from_str(&line).expect("a record's JSON reads back");
    assert_eq!(back, record, "JSON round trip of {line}");

    let verdict = Verdict::from_code(u32::from(event.verdict)).unwrap_or(Verdict::Deny);
    assert_eq!(record.verdict(), verdict.name(), "verdict of {event:?}");
    let reason = Reason::from_code(event.reason).map_or("unknown", Reason::name);
    assert_eq!(record.unmapped.ward.reason, reason, "reason of {event:?}");
    Ok(record)
}
