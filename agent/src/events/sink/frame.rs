//! RFC 5424 framing of one event: `<PRI>1 TIMESTAMP HOSTNAME ward PROCID MSGID
//! [ward@32473 host=".." agent=".." role=".."] JSON`, octet-counted (`LEN SP MSG`,
//! RFC 6587 section 3.4.1 and RFC 5425 section 4.3).
use std::time::{Duration, UNIX_EPOCH};

use super::SinkEvent;

/// Facility of every message: local0 (16).
pub const FACILITY: u8 = 16;
/// APP-NAME of every message.
pub const APP_NAME: &str = "ward";
/// SD-ID of the structured data (32473: the private enterprise number RFC 5612
/// reserves for documentation and examples).
pub const SD_ID: &str = "ward@32473";

/// What every message of this agent carries besides the event.
#[derive(Clone, Debug)]
pub struct Origin {
    /// The agent's process id (PROCID).
    pub procid: u32,
    /// `agent_name`, or the host name (`agent=` of the structured data).
    pub agent: String,
    /// `host` or `gateway` (`role=`).
    pub role: &'static str,
}

/// The syslog severity of an OCSF `severity_id`: Informational → 6 (info), Low → 5
/// (notice), Medium (a denial) → 4 (warning), High → 3 (error), Critical → 2
/// (critical), Fatal → 1 (alert); unknown and other → 5 (notice).
pub fn severity(severity_id: u32) -> u8 {
    match severity_id {
        1 => 6,
        2 => 5,
        3 => 4,
        4 => 3,
        5 => 2,
        6 => 1,
        _ => 5,
    }
}

/// The octet-counted frame of one event.
pub fn frame(origin: &Origin, event: &SinkEvent) -> Vec<u8> {
    let pri = u32::from(FACILITY) * 8 + u32::from(severity(event.severity_id));
    let millis = u64::try_from(event.time).unwrap_or(0);
    let time = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis));
    let message = format!(
        "<{pri}>1 {time} {host} {APP_NAME} {procid} {msgid} [{SD_ID} host=\"{sd_host}\" \
         agent=\"{agent}\" role=\"{role}\"] {json}",
        host = header_field(&event.hostname, 255),
        procid = origin.procid,
        msgid = header_field(&event.verdict, 32),
        sd_host = param_value(&event.hostname),
        agent = param_value(&origin.agent),
        role = param_value(origin.role),
        json = event.json,
    );
    format!("{} {message}", message.len()).into_bytes()
}

/// A header field: printable US-ASCII without spaces, at most `max` characters;
/// `-` (the nil value) when the value has none.
fn header_field(value: &str, max: usize) -> String {
    let field: String = value
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if field.is_empty() {
        "-".into()
    } else {
        field
    }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped with a backslash (RFC 5424 6.3.3).
fn param_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
