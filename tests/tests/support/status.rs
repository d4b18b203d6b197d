//! `ward status --json` read back into the agent's own types: the command writes every
//! time as an RFC 3339 string, the types keep the serde form of `SystemTime`.
use serde_json::{json, Value};
use ward::control::StatusReply;

/// The reply `ward status --json` printed.
pub fn reply(json: &str) -> StatusReply {
    let mut value: Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("status JSON: {e}: {json}"));
    times_back(&mut value);
    serde_json::from_value(value).unwrap_or_else(|e| panic!("status reply: {e}: {json}"))
}

/// Replaces every RFC 3339 string in `value` by the serde form of its `SystemTime`.
fn times_back(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Ok(time) = humantime::parse_rfc3339(text) {
                let since = time
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after the epoch");
                *value = json!({
                    "secs_since_epoch": since.as_secs(),
                    "nanos_since_epoch": since.subsec_nanos(),
                });
            }
        }
        Value::Array(items) => items.iter_mut().for_each(times_back),
        Value::Object(map) => map.values_mut().for_each(times_back),
        _ => {}
    }
}
