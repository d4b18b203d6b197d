//! The sink task: connect, write each event as it comes, confirm what the collector
//! acknowledged, and on a broken connection count what it may have lost and
//! reconnect with back-off. Events that wait in the channel meanwhile are not lost.
use std::{collections::VecDeque, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};
use tracing::{info, warn};

use super::{
    conn::{Connection, Target},
    frame::{frame, Origin},
    SinkEvent,
};
use crate::state::{SharedStatus, SinkStats};

/// The first wait before reconnecting.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// The longest wait before reconnecting.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How often acknowledgements are looked for while events are in flight.
const CONFIRM_EVERY: Duration = Duration::from_millis(200);
/// Events taken from the channel at a time.
const BATCH: usize = 256;

/// Waits before reconnecting: 100 ms, doubling up to 10 s; back to 100 ms once a
/// connection delivered something.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_FIRST,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        wait
    }

    /// Starts again from the first wait.
    pub fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }
}

/// Runs the sink until the channel closes (the reader is gone).
pub async fn run(
    target: Target,
    origin: Origin,
    mut rx: mpsc::Receiver<SinkEvent>,
    status: SharedStatus,
) {
    let mut backoff = Backoff::default();
    // Events taken from the channel but not written yet when a connection broke.
    let mut carried: VecDeque<SinkEvent> = VecDeque::new();
    let mut down_since_logged = false;
    loop {
        let mut conn = match Connection::open(&target).await {
            Ok(conn) => conn,
            Err(e) => {
                if !down_since_logged {
                    warn!("event sink {}:{}: {e}; retrying with back-off (events wait in the sink buffer)", target.host, target.port);
                    down_since_logged = true;
                }
                tokio::time::sleep(backoff.next_wait()).await;
                continue;
            }
        };
        down_since_logged = false;
        info!("event sink {}:{}: connected", target.host, target.port);
        update(&status, |s| s.connected = true);
        let mut session = Session::default();
        let end = session
            .serve(&mut conn, &origin, &mut rx, &mut carried, &status)
            .await;
        let lost = session.in_flight.len() as u64 + session.failed;
        update(&status, |s| {
            s.connected = false;
            s.lost_total += lost;
        });
        if session.confirmed > 0 {
            backoff.reset();
        }
        match end {
            End::Closed => return,
            End::Broken(why) => {
                warn!(
                    "event sink {}:{}: {why}; {lost} events written but not acknowledged are counted as lost",
                    target.host, target.port
                );
                tokio::time::sleep(backoff.next_wait()).await;
            }
        }
    }
}

/// Why a session ended.
enum End {
    /// The reader is gone: nothing more will come.
    Closed,
    /// The connection broke (or the collector closed it).
    Broken(String),
}

/// One connection's events in flight.
#[derive(Default)]
struct Session {
    /// Where each event written and not yet acknowledged ends on the TCP stream.
    in_flight: VecDeque<u64>,
    /// Events acknowledged on this connection.
    confirmed: u64,
    /// Events whose write failed part-way (lost).
    failed: u64,
}

impl Session {
    async fn serve(
        &mut self,
        conn: &mut Connection,
        origin: &Origin,
        rx: &mut mpsc::Receiver<SinkEvent>,
        carried: &mut VecDeque<SinkEvent>,
        status: &SharedStatus,
    ) -> End {
        let mut batch = Vec::with_capacity(BATCH);
        let mut confirm = tokio::time::interval(CONFIRM_EVERY);
        let mut scratch = [0u8; 512];
        loop {
            while let Some(event) = carried.pop_front() {
                if let Err(e) = self.write(conn, origin, &event).await {
                    self.failed += 1;
                    return End::Broken(format!("writing: {e}"));
                }
            }
            if let Err(e) = self.confirm(conn, status) {
                return End::Broken(format!("reading the send queue: {e}"));
            }
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        return End::Closed;
                    }
                    carried.extend(batch.drain(..));
                }
                // The collector sends nothing: only its end of the connection.
                read = conn.stream.read(&mut scratch) => match read {
                    Ok(0) => return End::Broken("the collector closed the connection".into()),
                    Ok(_) => {}
                    Err(e) => return End::Broken(format!("reading: {e}")),
                },
                _ = confirm.tick(), if !self.in_flight.is_empty() => {}
            }
        }
    }

    /// Writes one event and notes where it ends on the stream.
    async fn write(
        &mut self,
        conn: &mut Connection,
        origin: &Origin,
        event: &SinkEvent,
    ) -> std::io::Result<()> {
        conn.stream.write_all(&frame(origin, event)).await?;
        conn.stream.flush().await?;
        self.in_flight.push_back(conn.written());
        Ok(())
    }

    /// Counts the events in flight the collector has acknowledged as sent.
    fn confirm(&mut self, conn: &Connection, status: &SharedStatus) -> std::io::Result<()> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let acknowledged = conn.acknowledged()?;
        let before = self.in_flight.len();
        while self
            .in_flight
            .front()
            .is_some_and(|end| *end <= acknowledged)
        {
            self.in_flight.pop_front();
        }
        let sent = (before - self.in_flight.len()) as u64;
        if sent > 0 {
            self.confirmed += sent;
            update(status, |s| s.sent_total += sent);
        }
        Ok(())
    }
}

/// Changes the sink's counts in the agent's status.
fn update(status: &SharedStatus, change: impl FnOnce(&mut SinkStats)) {
    if let Ok(mut s) = status.write() {
        if let Some(sink) = s.event_sink.as_mut() {
            change(sink);
        }
    }
}
