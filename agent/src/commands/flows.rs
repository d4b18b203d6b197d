//! `ward flows`: the daemon's flow events, live.
use std::{
    io::{ErrorKind, Write},
    net::SocketAddr,
    path::Path,
    process::ExitCode,
    time::{Duration, UNIX_EPOCH},
};

use crate::{
    control::{Client, ControlError, FlowEvent, FlowFilter},
    events::record::{Endpoint, FlowRecord},
};

/// Prints the events that match `filter` (filtered by the daemon) to `out` as they come:
/// one table row each, or the JSON record with `json`. Returns when `out` is closed
/// (success) or the daemon goes away (error); skipped events are reported on stderr.
pub fn flows(
    socket: &Path,
    filter: FlowFilter,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let events = Client::new(socket).flows(filter)?;
    let mut emit = |line: &str| match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
        Ok(()) => Ok(true),
    };
    if !json {
        let header = columns(
            "TIME",
            "VERDICT",
            "REASON",
            "PROTO",
            "SRC (ZONE) -> DST (ZONE)",
            "RULE",
        );
        if !emit(&header)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    for event in events {
        let line = match event? {
            FlowEvent::Lagged(n) => {
                eprintln!("ward: warning: {n} events skipped: this client did not keep up");
                continue;
            }
            FlowEvent::Record(r) if json => serde_json::to_string(&r)?,
            FlowEvent::Record(r) => row(&r),
        };
        if !emit(&line)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    Err(ControlError::Closed(socket.to_owned()).into())
}

fn row(r: &FlowRecord) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(r.time).unwrap_or(0));
    let path = format!(
        "{} -> {}",
        endpoint(&r.src_endpoint),
        endpoint(&r.dst_endpoint)
    );
    columns(
        &humantime::format_rfc3339_millis(time).to_string(),
        r.verdict(),
        &r.unmapped.ward.reason,
        &r.connection_info.protocol_name,
        &path,
        r.firewall_rule
            .as_ref()
            .map_or("-", |rule| rule.name.as_str()),
    )
}

fn columns(time: &str, verdict: &str, reason: &str, proto: &str, path: &str, rule: &str) -> String {
    format!("{time:<24}  {verdict:<7}  {reason:<14}  {proto:<6}  {path}  {rule}")
}

/// `address:port (zone)`.
fn endpoint(e: &Endpoint) -> String {
    let address = match (e.ip, e.port) {
        (Some(ip), Some(port)) => SocketAddr::new(ip, port).to_string(),
        (Some(ip), None) => ip.to_string(),
        (None, _) => "?".to_owned(),
    };
    format!("{address} ({})", e.zone)
}
