//! `ward flows`: the daemon's flow events, live, and with `--since` the event log's
//! history first; filtered by verdict, zone, address and port.
use std::{
    fs::File,
    io::{BufReader, ErrorKind, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::flows_history::{self, Seen};
use crate::{
    control::{Client, ControlError, FlowEvent, FlowFilter, StatusReply},
    events::record::{Endpoint, FlowRecord},
};

/// Exit code of bad input (an unknown zone).
const BAD_INPUT: u8 = 2;
/// How far before the subscription the history is compared with the live stream: an
/// event's time is its packet's, and it reaches the agent a little later.
const OVERLAP: Duration = Duration::from_secs(2);

/// What `ward flows` shows.
#[derive(Clone, Debug, Default)]
pub struct FlowsOptions {
    /// Which events (all fields must match).
    pub filter: FlowFilter,
    /// The JSON records instead of a table.
    pub json: bool,
    /// First the event log's records of this last stretch of time.
    pub since: Option<Duration>,
    /// Follow the live stream (without it, only the history is printed).
    pub follow: bool,
}

/// Why `ward flows` cannot show what was asked.
#[derive(Debug, thiserror::Error)]
enum FlowsError {
    /// `--since` while the agent writes no event log.
    #[error(
        "the agent writes no event log (`event_log` is not set): --since has no history to read"
    )]
    NoEventLog,
    /// The event log could not be read.
    #[error("event log {0}")]
    Log(PathBuf, #[source] std::io::Error),
}

/// Prints the events that match `options.filter` to `out`: with `since`, the event
/// log's records of that last stretch first; then, with `follow`, the live events as
/// they come (filtered by the daemon). One table row each, or the JSON record with
/// `json`. A zone the policy in force does not have is refused (exit 2, on `err`).
/// Returns when `out` is closed or the history is printed without `follow` (success),
/// or when the daemon goes away (error); skipped events are reported on `err`.
pub fn flows(
    socket: &Path,
    options: &FlowsOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(socket);
    let status = client.status()?;
    if let Some(zone) = options.filter.zone.as_deref() {
        let known = zones_in_force(&status);
        if !known.iter().any(|z| z == zone) {
            writeln!(
                err,
                "ward: error: unknown zone `{zone}`: the policy in force has zones {}",
                known.join(", ")
            )?;
            return Ok(ExitCode::from(BAD_INPUT));
        }
    }
    let log_path = match options.since {
        Some(_) => Some(status.status.event_log.ok_or(FlowsError::NoEventLog)?),
        None => None,
    };
    // Subscribed before the log is read: an event is written to the log before it is
    // sent live, so none falls between the two (one in both is printed once).
    let subscribed_at = SystemTime::now() - OVERLAP;
    let live = match options.follow {
        true => Some(client.flows(options.filter.clone())?),
        false => None,
    };
    let mut emit = |line: &str| match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
        Ok(()) => Ok(true),
    };
    let show = |r: &FlowRecord| match options.json {
        true => serde_json::to_string(r),
        false => Ok(row(r)),
    };
    if !options.json {
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
    let mut seen = Seen::default();
    if let (Some(since), Some(path)) = (options.since, log_path) {
        let from = millis(SystemTime::now() - since);
        let history = match File::open(&path) {
            // Nothing written yet.
            Err(e) if e.kind() == ErrorKind::NotFound => flows_history::History::default(),
            Err(e) => return Err(FlowsError::Log(path, e).into()),
            Ok(log) => flows_history::read(BufReader::new(log), &options.filter, from)
                .map_err(|e| FlowsError::Log(path.clone(), e))?,
        };
        if history.unreadable > 0 {
            let n = history.unreadable;
            writeln!(
                err,
                "ward: warning: {n} lines of {} are not flow records: skipped",
                path.display()
            )?;
        }
        for r in &history.records {
            if !emit(&show(r)?)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
        seen = Seen::new(&history, millis(subscribed_at));
    }
    let Some(events) = live else {
        return Ok(ExitCode::SUCCESS);
    };
    for event in events {
        let line = match event? {
            FlowEvent::Lagged(n) => {
                writeln!(
                    err,
                    "ward: warning: {n} events skipped: this client did not keep up"
                )?;
                continue;
            }
            FlowEvent::Record(r) if seen.repeats(&r) => continue,
            FlowEvent::Record(r) => show(&r)?,
        };
        if !emit(&line)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    Err(ControlError::Closed(socket.to_owned()).into())
}

/// The zone names of the policy in force (`world` included).
fn zones_in_force(status: &StatusReply) -> Vec<String> {
    let slot = &status.status.slots[(status.status.generation & 1) as usize];
    match slot {
        Some(names) if !names.zones.is_empty() => names.zones.clone(),
        _ => vec![crate::policy::WORLD.to_owned()],
    }
}

/// Milliseconds since the epoch, as records give their time.
fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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
