//! `ward status --json`: the daemon's answer with every time as an RFC 3339 string
//! (UTC, to the second, as the text output shows them) instead of the serde form of
//! `SystemTime` the control socket carries (`{"secs_since_epoch":…,"nanos_since_epoch":…}`).
//! The keys of each object come in name order.
use std::time::{Duration, SystemTime};

use serde_json::Value;

/// Replaces, anywhere in `value`, each object that is exactly the serde form of a
/// `SystemTime` by its RFC 3339 string.
pub(super) fn times_as_rfc3339(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(time) = system_time(map) {
                *value = Value::String(humantime::format_rfc3339_seconds(time).to_string());
                return;
            }
            map.values_mut().for_each(times_as_rfc3339);
        }
        Value::Array(items) => items.iter_mut().for_each(times_as_rfc3339),
        _ => {}
    }
}

/// The time an object `{"secs_since_epoch": S, "nanos_since_epoch": N}` stands for.
fn system_time(map: &serde_json::Map<String, Value>) -> Option<SystemTime> {
    if map.len() != 2 {
        return None;
    }
    let secs = map.get("secs_since_epoch")?.as_u64()?;
    let nanos = u32::try_from(map.get("nanos_since_epoch")?.as_u64()?).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::times_as_rfc3339;

    #[test]
    fn system_times_become_rfc3339_and_nothing_else_changes() {
        #[derive(serde::Serialize)]
        struct Sample {
            started_at: SystemTime,
            loaded_at: Option<SystemTime>,
            last_reload_ok: Option<SystemTime>,
            faults: Vec<Fault>,
            window: Duration,
            secs_since_epoch: u64,
        }
        #[derive(serde::Serialize)]
        struct Fault {
            since: SystemTime,
            count: u64,
        }
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::new(s, 5);
        let sample = Sample {
            started_at: at(1_699_999_940),
            loaded_at: Some(at(1_700_000_000)),
            last_reload_ok: None,
            faults: vec![Fault {
                since: at(1_700_000_100),
                count: 12,
            }],
            window: Duration::from_secs(60),
            secs_since_epoch: 7,
        };
        let mut value = serde_json::to_value(&sample).unwrap();
        times_as_rfc3339(&mut value);
        assert_eq!(
            value.to_string(),
            concat!(
                r#"{"faults":[{"count":12,"since":"2023-11-14T22:15:00Z"}],"last_reload_ok":null,"#,
                r#""loaded_at":"2023-11-14T22:13:20Z","secs_since_epoch":7,"#,
                r#""started_at":"2023-11-14T22:12:20Z","window":{"nanos":0,"secs":60}}"#
            )
        );
    }
}
