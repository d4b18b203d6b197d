//! The daemon's side of the control socket.
use std::{
    fs::{DirBuilder, Permissions},
    io,
    os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt},
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use serde::Serialize;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{
        unix::{OwnedReadHalf, OwnedWriteHalf},
        UnixListener, UnixStream,
    },
    sync::{broadcast, oneshot},
    task::JoinSet,
};
use tracing::{debug, warn};

use super::{
    protocol::{ErrorReply, Subscribed},
    ControlError, CountersSummary, FlowFilter, Lagged, Request, StatusReply, ZonePairCount,
    PERMISSION_DENIED,
};
use crate::{
    daemon::{Bus, Request as DaemonRequest, RequestError},
    dataplane::{CounterSnapshot, Counters, DataplaneError},
    events::FlowRecord,
    state::{PolicyNames, SharedStatus},
};

/// Longest request line read; a longer one is a bad request.
const MAX_REQUEST: u64 = 4096;
/// Pause after a failed `accept` (out of file descriptors…) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Where the server reads counters: the pinned maps, or a fake in tests.
pub trait CounterSource: Send + Sync + 'static {
    /// Reads every counter now (blocking); `slots` names the ids of each slot's policy.
    fn snapshot(&self, slots: &[Option<PolicyNames>; 2])
        -> Result<CounterSnapshot, DataplaneError>;
}

impl CounterSource for Mutex<Counters> {
    fn snapshot(
        &self,
        slots: &[Option<PolicyNames>; 2],
    ) -> Result<CounterSnapshot, DataplaneError> {
        // A panic elsewhere does not make the maps unreadable.
        self.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot(slots)
    }
}

/// Whether a peer with user id `peer_uid` may use the socket of a daemon running as
/// `own_uid`: root, or the daemon's own user (the same thing once `ward run` runs as root).
pub fn authorized(peer_uid: u32, own_uid: u32) -> bool {
    peer_uid == 0 || peer_uid == own_uid
}

/// Creates the socket at `path`: its directory (mode 0700) if missing, the socket
/// (mode 0600) in place of a stale one. Refuses when another daemon answers on `path`.
/// Must be called within a Tokio runtime.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let setup = |path: &Path| {
        let path = path.to_owned();
        move |source| ControlError::Setup { path, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(setup(dir))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(ControlError::NotASocket(path.to_owned()))
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(ControlError::InUse(path.to_owned())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).map_err(setup(path))?
            }
            Err(e) => return Err(setup(path)(e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(setup(path)(e)),
    }
    let listener = UnixListener::bind(path).map_err(setup(path))?;
    std::fs::set_permissions(path, Permissions::from_mode(0o600)).map_err(setup(path))?;
    Ok(listener)
}

/// What every connection needs.
struct Context<C> {
    status: SharedStatus,
    counters: Arc<C>,
    events: broadcast::Sender<Arc<FlowRecord>>,
    requests: Bus,
    own_uid: u32,
}

/// Answers connections on `listener`; never returns. Dropping (aborting) the task also
/// closes every open connection. `counters` is the daemon's `SharedCounters`.
pub async fn serve<C: CounterSource>(
    listener: UnixListener,
    status: SharedStatus,
    counters: Arc<C>,
    events: broadcast::Sender<Arc<FlowRecord>>,
    requests: Bus,
) {
    let own_uid = nix::unistd::geteuid().as_raw();
    let context = Arc::new(Context {
        status,
        counters,
        events,
        requests,
        own_uid,
    });
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let context = context.clone();
                    connections.spawn(async move {
                        if let Err(e) = connection(stream, &context).await {
                            debug!("control connection: {e}");
                        }
                    });
                }
                Err(e) => {
                    warn!("control socket: accept: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn connection<C: CounterSource>(stream: UnixStream, context: &Context<C>) -> io::Result<()> {
    let peer = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    if !authorized(peer, context.own_uid) {
        return answer::<()>(&mut write, Err(PERMISSION_DENIED.into())).await;
    }
    let mut read = BufReader::new(read);
    let mut line = String::new();
    if (&mut read).take(MAX_REQUEST).read_line(&mut line).await? == 0 {
        return Ok(()); // connected and left, as `bind` does when probing
    }
    let request = match serde_json::from_str::<Request>(&line) {
        Ok(request) => request,
        Err(e) => return answer::<()>(&mut write, Err(format!("bad request: {e}"))).await,
    };
    match request {
        Request::Status => answer(&mut write, Ok(status(context).await)).await,
        Request::Counters => {
            let list = snapshot(context).await.map(|s| ZonePairCount::list(&s));
            answer(&mut write, list).await
        }
        Request::Reload {
            confirm_within_secs,
            force,
        } => {
            let confirm_within = confirm_within_secs.map(std::time::Duration::from_secs);
            let (reply, outcome) = oneshot::channel();
            let request = DaemonRequest::Reload {
                confirm_within,
                force,
                reply,
            };
            answer(&mut write, ask(context, request, outcome).await).await
        }
        Request::Confirm => {
            let (reply, outcome) = oneshot::channel();
            let request = DaemonRequest::Confirm {
                by: format!("ward confirm (uid {peer})"),
                generation: None,
                reply: Some(reply),
            };
            let confirmed = ask(context, request, outcome).await.and_then(text);
            answer(&mut write, confirmed).await
        }
        Request::Flows(filter) => flows(read, write, context.events.subscribe(), &filter).await,
        Request::Quarantine {
            ip,
            ttl_secs,
            reason,
        } => {
            let (reply, outcome) = oneshot::channel();
            let ttl = ttl_secs.map(std::time::Duration::from_secs);
            let by = format!("ward quarantine (uid {peer})");
            let request = DaemonRequest::Quarantine {
                ip,
                ttl,
                reason,
                by,
                reply,
            };
            answer(&mut write, respond(context, request, outcome).await).await
        }
        Request::Release { ip } => {
            let (reply, outcome) = oneshot::channel();
            let request = DaemonRequest::Release {
                ip,
                by: format!("ward release (uid {peer})"),
                reply,
            };
            answer(&mut write, respond(context, request, outcome).await).await
        }
        Request::Breakglass(request) => {
            let (reply, outcome) = oneshot::channel();
            let by = operator(&request.operator, peer);
            let request = DaemonRequest::Breakglass { request, by, reply };
            let granted = ask(context, request, outcome).await.and_then(text);
            answer(&mut write, granted).await
        }
        Request::EndBreakglass { id, operator: name } => {
            let (reply, outcome) = oneshot::channel();
            let by = operator(&name, peer);
            let request = DaemonRequest::EndBreakglass { id, by, reply };
            let ended = ask(context, request, outcome).await.and_then(text);
            answer(&mut write, ended).await
        }
        Request::Grants => {
            let grants = context
                .status
                .read()
                .map(|s| s.breakglass.clone())
                .map_err(|_| "agent state lock poisoned".to_owned());
            answer(&mut write, grants).await
        }
        Request::Explain { from, to, service } => {
            let (reply, outcome) = oneshot::channel();
            let request = DaemonRequest::Explain {
                from,
                to,
                service,
                reply,
            };
            answer(&mut write, respond(context, request, outcome).await).await
        }
        Request::Quarantines => {
            let (reply, outcome) = oneshot::channel();
            answer(
                &mut write,
                respond(context, DaemonRequest::Quarantines { reply }, outcome).await,
            )
            .await
        }
    }
}

/// Who asks: the name the client gives (`SUDO_USER`, `LOGNAME`) and the peer's uid,
/// which the kernel vouches for.
fn operator(name: &str, uid: u32) -> String {
    match name.trim() {
        "" => format!("uid {uid}"),
        name => format!("{name} (uid {uid})"),
    }
}

/// Hands a request to the daemon and waits for its answer.
async fn respond<C, T>(
    context: &Context<C>,
    request: DaemonRequest,
    outcome: oneshot::Receiver<Result<T, RequestError>>,
) -> Result<T, String> {
    context
        .requests
        .send(request)
        .await
        .map_err(|_| "the daemon takes no response requests".to_owned())?;
    outcome
        .await
        .map_err(|_| "the daemon dropped the request".to_owned())
        .and_then(text)
}

/// The daemon's answer, its error as the client shows it.
fn text<T>(answer: Result<T, RequestError>) -> Result<T, String> {
    answer.map_err(|e| e.to_string())
}

async fn status<C: CounterSource>(context: &Context<C>) -> StatusReply {
    let status = context
        .status
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let (counters, counters_error) = match snapshot(context).await {
        Ok(s) => (Some(CountersSummary::from(&s)), None),
        Err(e) => (None, Some(e)),
    };
    StatusReply {
        warnings: status.warnings(),
        status,
        counters,
        counters_error,
    }
}

/// Reads the counters on a blocking thread (the maps sit behind a std mutex).
async fn snapshot<C: CounterSource>(context: &Context<C>) -> Result<CounterSnapshot, String> {
    let slots = context
        .status
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .slots
        .clone();
    let counters = context.counters.clone();
    match tokio::task::spawn_blocking(move || counters.snapshot(&slots)).await {
        Ok(Ok(snapshot)) => Ok(snapshot),
        Ok(Err(e)) => Err(format!("reading counters: {:#}", anyhow::Error::from(e))),
        Err(e) => Err(format!("reading counters: {e}")),
    }
}

/// Sends a policy request to the daemon and waits for its answer on `outcome`.
async fn ask<C, T>(
    context: &Context<C>,
    request: DaemonRequest,
    outcome: oneshot::Receiver<T>,
) -> Result<T, String> {
    context
        .requests
        .send(request)
        .await
        .map_err(|_| "the daemon takes no policy requests".to_owned())?;
    outcome
        .await
        .map_err(|_| "the daemon dropped the policy request".to_owned())
}

/// Says the subscription is in place, then sends matching events until the client
/// leaves (closes or shuts down its side).
async fn flows(
    mut read: BufReader<OwnedReadHalf>,
    mut write: OwnedWriteHalf,
    mut events: broadcast::Receiver<Arc<FlowRecord>>,
    filter: &FlowFilter,
) -> io::Result<()> {
    // The client may now read what happened before (the event log): nothing after
    // this line is missed.
    send(&mut write, &Subscribed { subscribed: true }).await?;
    let mut ignored = [0u8; 256];
    loop {
        tokio::select! {
            read = read.read(&mut ignored) => if read? == 0 {
                return Ok(());
            },
            event = events.recv() => match event {
                Ok(record) if filter.matches(&record) => send(&mut write, &*record).await?,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(lagged)) => {
                    send(&mut write, &Lagged { lagged }).await?
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// Sends `result`'s value, or `{"error": …}`.
async fn answer<T: Serialize>(
    write: &mut OwnedWriteHalf,
    result: Result<T, String>,
) -> io::Result<()> {
    match result {
        Ok(value) => send(write, &value).await,
        Err(error) => send(write, &ErrorReply { error }).await,
    }
}

async fn send(write: &mut OwnedWriteHalf, value: &impl Serialize) -> io::Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    write.write_all(&line).await
}
