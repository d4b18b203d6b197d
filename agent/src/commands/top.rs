//! `ward top`: packets per second by zone pair, from the daemon's counters.
use std::{
    collections::{BTreeMap, HashMap},
    io::{self, ErrorKind, Write},
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use crate::control::{Client, FlowVerdict, ZonePairCount};

/// Clears a terminal and puts the cursor at the top left.
const CLEAR: &str = "\x1b[H\x1b[2J";

/// Polls the counters every `interval` and prints the rates of the last interval, in
/// place when `clear` (a terminal), one table after the other otherwise. With `once`,
/// prints one table after one interval and returns.
pub fn top(
    socket: &Path,
    interval: Duration,
    once: bool,
    clear: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(socket);
    let mut before = (Instant::now(), client.counters()?);
    let mut separator = if clear { CLEAR } else { "" };
    loop {
        std::thread::sleep(interval);
        let now = (Instant::now(), client.counters()?);
        let rows = rates(&before.1, &now.1, now.0 - before.0);
        match show(out, separator, &rows, interval) {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => break,
            result => result?,
        }
        if once {
            break;
        }
        before = now;
        separator = if clear { CLEAR } else { "\n" };
    }
    Ok(ExitCode::SUCCESS)
}

/// Packets per second of one zone pair, by verdict.
struct Rates {
    src: String,
    dst: String,
    allowed: f64,
    denied: f64,
    audited: f64,
}

/// Rates between two samples `elapsed` apart, by denied packets per second (most first),
/// then by zone names.
fn rates(before: &[ZonePairCount], now: &[ZonePairCount], elapsed: Duration) -> Vec<Rates> {
    let previous: HashMap<_, u64> = before
        .iter()
        .map(|c| ((&c.src_zone, &c.dst_zone, c.verdict), c.packets))
        .collect();
    let seconds = elapsed.as_secs_f64().max(1e-3);
    let mut pairs: BTreeMap<(&String, &String), Rates> = BTreeMap::new();
    for c in now {
        let base = previous
            .get(&(&c.src_zone, &c.dst_zone, c.verdict))
            .copied()
            .unwrap_or(0);
        let rate = c.packets.saturating_sub(base) as f64 / seconds;
        let pair = pairs
            .entry((&c.src_zone, &c.dst_zone))
            .or_insert_with(|| Rates {
                src: c.src_zone.clone(),
                dst: c.dst_zone.clone(),
                allowed: 0.0,
                denied: 0.0,
                audited: 0.0,
            });
        *match c.verdict {
            FlowVerdict::Allow => &mut pair.allowed,
            FlowVerdict::Deny => &mut pair.denied,
            FlowVerdict::Audit => &mut pair.audited,
            FlowVerdict::Alert => continue, // alerts are events, never counted by zone pair
        } += rate;
    }
    let mut rows: Vec<Rates> = pairs.into_values().collect();
    rows.sort_by(|a, b| b.denied.total_cmp(&a.denied)); // stable: names break ties
    rows
}

fn show(
    out: &mut dyn Write,
    separator: &str,
    rows: &[Rates],
    interval: Duration,
) -> io::Result<()> {
    write!(out, "{separator}")?;
    let over = humantime::format_duration(interval);
    writeln!(out, "packets per second by zone pair, over the last {over}")?;
    if rows.is_empty() {
        writeln!(out, "no packet counted yet")?;
        return out.flush();
    }
    let mut table = super::table::plain(
        &["SRC ZONE", "DST ZONE", "ALLOWED/s", "DENIED/s", "AUDITED/s"],
        &[2, 3, 4],
    );
    for r in rows {
        table.add_row(vec![
            r.src.clone(),
            r.dst.clone(),
            format!("{:.1}", r.allowed),
            format!("{:.1}", r.denied),
            format!("{:.1}", r.audited),
        ]);
    }
    write!(out, "{}", super::table::render(&table))?;
    out.flush()
}
