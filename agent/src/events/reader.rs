//! Draining the kernel's event ring buffer: each event becomes a JSON line in the
//! event log (and, offered without waiting, in the `event_sink`) and a record for
//! live subscribers (`ward flows`), at most
//! [`EVENTS_PER_WAKE`] at a time.
use std::{collections::HashMap, sync::Arc};

use aya::maps::{MapData, RingBuf};
use tokio::{
    io::unix::AsyncFd,
    sync::{broadcast, mpsc, Notify},
};
use tracing::{info, warn};

use super::{
    decode,
    device::Identity,
    sink::{SinkEvent, SinkHandle},
    writer::EventLog,
    FlowRecord,
};
use crate::state::{FaultArea, SharedStatus};

/// Events read from the ring buffer per wake-up at most: past it, the reader hands
/// the thread back to the runtime before it reads on, so that a flood never holds
/// up the other tasks (the kernel counts what a full ring buffer loses).
pub const EVENTS_PER_WAKE: usize = 1024;

/// Reads events until the task is dropped, and writes the records that come through
/// `alerts` (from the response) into the same stream, each stamped with this host's
/// identity. `reopen` asks for the log file to be reopened; `sink` is offered
/// every line when an `event_sink` is configured.
pub async fn run(
    ring: RingBuf<MapData>,
    mut log: EventLog,
    sink: Option<SinkHandle>,
    shared: SharedStatus,
    subscribers: broadcast::Sender<Arc<FlowRecord>>,
    mut alerts: mpsc::Receiver<FlowRecord>,
    reopen: Arc<Notify>,
) -> std::io::Result<()> {
    // SAFETY: the ring buffer owns its descriptor and keeps it open for as long as the
    // AsyncFd that owns the ring buffer lives.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let clock = decode::Clock::new();
    let mut interfaces: HashMap<u32, String> = HashMap::new();
    let mut identity = Identity::default();
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                let ring = guard.get_inner_mut();
                let status = shared.read().map_err(|_| std::io::Error::other("status lock poisoned"))?.clone();
                let mut written = Written::default();
                let device = identity.current(&shared);
                let mut read = 0;
                while read < EVENTS_PER_WAKE {
                    let Some(item) = ring.next() else { break };
                    read += 1;
                    let event = match decode::event(&item) {
                        Ok(event) => event,
                        Err(e) => {
                            warn!("event ring: {e}; record skipped");
                            continue;
                        }
                    };
                    let interface = interfaces.entry(event.ifindex).or_insert_with(|| interface_name(event.ifindex)).clone();
                    let mut record = decode::record(&event, status.slot(event.slot), interface, &clock);
                    record.device = device.clone();
                    publish(record, &mut log, sink.as_ref(), &subscribers, &mut written);
                }
                // A full batch may have left events behind: the ring stays ready.
                let more = read == EVENTS_PER_WAKE;
                if !more {
                    guard.clear_ready();
                }
                drop(guard);
                report(&mut log, written, &shared);
                if more {
                    tokio::task::yield_now().await;
                }
            }
            Some(mut record) = alerts.recv() => {
                record.device = identity.current(&shared).clone();
                let mut written = Written::default();
                publish(record, &mut log, sink.as_ref(), &subscribers, &mut written);
                report(&mut log, written, &shared);
            }
            _ = reopen.notified() => match (log.reopen(), log.path()) {
                (Ok(()), Some(path)) => info!("event log {} reopened (SIGUSR1)", path.display()),
                (Ok(()), None) => info!("SIGUSR1: the event log is standard output, nothing to reopen"),
                (Err(e), _) => warn!("event log: reopening: {e}"),
            },
        }
    }
}

/// Lines given to the log in one batch, the last write error, and the lines the
/// sink's full buffer dropped.
#[derive(Default)]
struct Written {
    lines: u64,
    error: Option<std::io::Error>,
    sink_dropped: u64,
}

/// Writes a record to the log, offers it to the sink and hands it to the
/// subscribers (having none is fine).
fn publish(
    record: FlowRecord,
    log: &mut EventLog,
    sink: Option<&SinkHandle>,
    subscribers: &broadcast::Sender<Arc<FlowRecord>>,
    written: &mut Written,
) {
    match serde_json::to_string(&record) {
        Ok(line) => {
            written.lines += 1;
            if let Err(e) = log.write_line(&line) {
                written.error = Some(e);
            }
            if sink.is_some_and(|sink| !sink.offer(SinkEvent::new(&record, &line))) {
                written.sink_dropped += 1;
            }
        }
        Err(e) => warn!("event encoding: {e}"),
    }
    let _ = subscribers.send(Arc::new(record));
}

/// Flushes a batch and reports the event log as faulty (disk full…) or healthy again.
fn report(log: &mut EventLog, mut written: Written, status: &SharedStatus) {
    if let Err(e) = log.flush() {
        written.error = Some(e);
    }
    let Ok(mut status) = status.write() else {
        return;
    };
    if let Some(sink) = status.event_sink.as_mut() {
        sink.dropped_total += written.sink_dropped;
    }
    match written.error {
        Some(e) => {
            let message = format!("writing the event log: {e}");
            if status.raise(FaultArea::EventLog, message, written.lines) {
                warn!("event log: {e}; events are still counted and sent to live subscribers");
            }
        }
        None if written.lines > 0 => {
            if let Some(fault) = status.clear(FaultArea::EventLog) {
                info!(
                    "event log writable again; {} event lines were lost since {}",
                    fault.count,
                    humantime::format_rfc3339_seconds(fault.since)
                );
            }
        }
        None => {}
    }
}

fn interface_name(ifindex: u32) -> String {
    match nix::net::if_::if_indextoname(ifindex) {
        Ok(name) => name.to_string_lossy().into_owned(),
        Err(_) => format!("if#{ifindex}"),
    }
}
