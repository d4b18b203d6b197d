//! The server on a socket in a temporary directory, with a hand-made status, fake
//! counters, a broadcast channel fed by the test and a fake reload handler.
mod filter;
mod server;

use std::{
    fs,
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, UNIX_EPOCH},
};

use serde_json::json;
use tokio::{
    sync::{broadcast, mpsc},
    task::JoinHandle,
};
use ward_common::{Counter, Verdict};

use super::{bind, serve, CounterSource};
use crate::{
    breakglass::{BreakglassError, Grant},
    config::Role,
    daemon::{ExplainLine, ReloadOutcome, Request, RequestError},
    dataplane::{CounterSnapshot, DataplaneError, QuarantineEntry, ZonePairTotals},
    events::FlowRecord,
    policy::{Enforcement, LiveState, Quarantined},
    state::{
        AgentStatus, HookStatus, Mode, PolicyNames, RefusedInterface, ReloadFailure, SinkStats,
        WatchStats,
    },
};

pub(crate) const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// 2023-11-14T22:13:20Z.
pub(crate) const T0: u64 = 1_700_000_000;

pub(crate) fn temp_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ward-control-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn at(seconds: u64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

pub(crate) fn agent_status() -> AgentStatus {
    let hook = |hook: &str| HookStatus {
        interface: "eth0".into(),
        hook: hook.into(),
        attached: true,
    };
    let names = PolicyNames {
        generation: 1,
        hash: HASH.into(),
        zones: vec!["world".into()],
        rules: vec![],
    };
    AgentStatus {
        role: Role::Host,
        mode: Mode::Enforce,
        policy_path: "/etc/ward/policy".into(),
        event_log: None,
        hooks: vec![hook("xdp-ingress"), hook("tc-egress")],
        slots: [None, Some(names)],
        generation: 1,
        started_at: at(T0 - 60),
        loaded_at: Some(at(T0)),
        last_reload_ok: None,
        last_reload_error: Some(ReloadFailure {
            at: at(T0 + 5),
            error: "a.toml:3:1: unknown zone `x`".into(),
        }),
        response: Default::default(),
        failsafe: Default::default(),
        pending_confirmation: None,
        rollbacks_total: 0,
        last_rollback: None,
        faults: Vec::new(),
        watch: WatchStats {
            tamper_total: 1,
            refused: vec![RefusedInterface {
                interface: "wg0".into(),
                reason: "link type NONE is not Ethernet".into(),
            }],
        },
        distribution: Default::default(),
        breakglass: vec![grant(0, "alice (uid 0)"), fleet_grant(2)],
        breakglass_refused: vec![
            "imaging -> ehr ssh of fleet bundle version 7 refused: the 16 grant numbers are all in use".into(),
        ],
        event_sink: Some(SinkStats {
            url: "syslog+tcp://198.18.24.10:10514".into(),
            connected: false,
            sent_total: 30,
            dropped_total: 2,
            lost_total: 1,
        }),
    }
}

/// Grant `id`: imaging may reach billing on https for two hours from T0.
pub(crate) fn grant(id: u32, by: &str) -> Grant {
    Grant {
        id,
        from: "imaging".into(),
        to: "billing".into(),
        service: "https".into(),
        reason: "INC-4711 vendor support".into(),
        by: by.into(),
        since: at(T0),
        expires: at(T0 + 7200),
        expires_ns: 0,
        fleet: None,
    }
}

/// Grant `id` of the break-glass list of signed bundle version 7: imaging may reach
/// billing on tcp/22.
pub(crate) fn fleet_grant(id: u32) -> Grant {
    Grant {
        service: "tcp/22".into(),
        by: "fleet v7".into(),
        fleet: Some(crate::breakglass::FleetMark {
            version: 7,
            author: "netsec@clinic".into(),
        }),
        ..grant(id, "")
    }
}

/// Counts that grow by the same amount at every read.
#[derive(Default)]
pub(crate) struct FakeCounters {
    reads: AtomicU64,
}

impl CounterSource for FakeCounters {
    fn snapshot(&self, _: &[Option<PolicyNames>; 2]) -> Result<CounterSnapshot, DataplaneError> {
        let n = self.reads.fetch_add(1, Ordering::Relaxed) + 1;
        let mut zone_pairs = ZonePairTotals::new();
        for (src, dst, verdict, packets) in [
            ("clinic", "records", Verdict::Allow, 100),
            ("clinic", "records", Verdict::Deny, 2),
            ("guest", "records", Verdict::Deny, 30),
            ("lab", "world", Verdict::Audit, 5),
        ] {
            let counter = Counter {
                packets: packets * n,
                bytes: 60 * packets * n,
            };
            zone_pairs.insert((src.into(), dst.into(), verdict), counter);
        }
        Ok(CounterSnapshot {
            zone_pairs,
            reasons: vec![],
            events_emitted: 37 * n,
            events_suppressed: 1,
            events_lost: 0,
            conntrack_entries: 12,
            conntrack_capacity: 65536,
            ..CounterSnapshot::default()
        })
    }
}

/// A TCP flow event from `src` to `dst`, told apart by `ms`.
pub(crate) fn record(ms: u64, verdict: &str, src: &str, dst: &str) -> FlowRecord {
    let denied = verdict == "deny";
    let (activity, disposition_id, disposition) = match verdict {
        "deny" => (5, 2, "Blocked"),
        "audit" => (6, 17, "Logged"),
        _ => (1, 1, "Allowed"),
    };
    serde_json::from_value(json!({
        "class_uid": 4001, "category_uid": 4, "activity_id": activity,
        "type_uid": 400100 + activity, "time": T0 * 1000 + ms,
        "severity_id": if denied { 3 } else { 1 }, "action_id": if denied { 2 } else { 1 },
        "action": if denied { "Denied" } else { "Allowed" },
        "disposition_id": disposition_id, "disposition": disposition,
        "src_endpoint": { "ip": "198.18.22.7", "port": 51000, "zone": src },
        "dst_endpoint": { "ip": "198.18.21.1", "port": 104, "zone": dst },
        "connection_info": { "protocol_num": 6, "protocol_name": "tcp", "protocol_ver_id": 4,
                             "direction_id": 1, "direction": "Inbound" },
        "traffic": { "bytes": 60, "packets": 1 },
        "metadata": { "version": "1.3.0",
                      "product": { "name": "Ward", "vendor_name": "Ward", "version": "0.1.0" } },
        "unmapped": { "ward": { "verdict": verdict, "reason": if denied { "no-rule" } else { "rule" },
                                "interface": "eth0", "hook": "ingress", "policy_generation": 1 } },
    }))
    .unwrap()
}

/// Answers requests the way the daemon does: quarantines on a list of its own, reloads
/// with `outcomes` (then drops them), grants as asked, ends grant 0 only, confirms
/// generation 3.
async fn fake_daemon(mut requests: mpsc::Receiver<Request>, outcomes: Vec<ReloadOutcome>) {
    let mut outcomes = outcomes.into_iter();
    let mut quarantined: Vec<QuarantineEntry> = Vec::new();
    while let Some(request) = requests.recv().await {
        match request {
            Request::Reload { reply, .. } => {
                if let Some(outcome) = outcomes.next() {
                    let _ = reply.send(outcome);
                }
            }
            Request::Breakglass { request, by, reply } => {
                let granted = Grant {
                    service: request.service,
                    ..grant(1, &by)
                };
                let _ = reply.send(Ok(granted));
            }
            Request::EndBreakglass { id, by, reply } => {
                let _ = reply.send(match id {
                    0 => Ok(grant(0, &by)),
                    _ => Err(BreakglassError::NoSuchGrant(id).into()),
                });
            }
            Request::Confirm { reply, .. } => {
                let _ = reply.expect("ward confirm waits for an answer").send(Ok(3));
            }
            Request::Quarantine {
                ip,
                ttl,
                reason,
                by,
                reply,
            } => {
                let since = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
                let entry = QuarantineEntry {
                    ip,
                    reason,
                    by,
                    since,
                    expires: ttl.map(|t| since + t),
                    fleet: None,
                };
                quarantined.retain(|e| e.ip != ip);
                quarantined.push(entry.clone());
                let _ = reply.send(Ok(entry));
            }
            Request::Release { ip, reply, .. } => {
                let found = quarantined.iter().position(|e| e.ip == ip);
                let _ = reply.send(match found {
                    Some(i) => Ok(quarantined.remove(i)),
                    None => {
                        Err(DataplaneError::Quarantine(format!("{ip} is not quarantined")).into())
                    }
                });
            }
            Request::Quarantines { reply } => {
                let _ = reply.send(Ok(quarantined.clone()));
            }
            Request::Explain {
                from,
                to,
                service,
                reply,
            } => {
                let _ = reply.send(explain_clinic(&from, &to, &service));
            }
        }
    }
}

/// A live explain on the clinic policy with 198.18.20.5 quarantined ("scan").
fn explain_clinic(from: &str, to: &str, service: &str) -> Result<Vec<ExplainLine>, RequestError> {
    let clinic = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/clinic.toml");
    let loaded = crate::policy::load(&[clinic.into()]).expect("the clinic policy loads");
    let enforcement = Enforcement {
        live: LiveState {
            quarantined: vec![Quarantined {
                ip: "198.18.20.5".parse().unwrap(),
                reason: "scan".into(),
            }],
            ..LiveState::default()
        },
        ..Enforcement::default()
    };
    let decisions = loaded.policy.decide_all(from, to, service, &enforcement)?;
    Ok(decisions.iter().map(ExplainLine::from).collect())
}

/// A running server; aborted (with its connections) when dropped.
pub(crate) struct Harness {
    dir: PathBuf,
    pub(crate) socket: PathBuf,
    pub(crate) events: broadcast::Sender<Arc<FlowRecord>>,
    pub(crate) server: JoinHandle<()>,
    /// The state the server answers `status` with.
    pub(crate) status: Arc<RwLock<AgentStatus>>,
}

impl Harness {
    /// Keeps `backlog` events per subscriber; answers reloads with `outcomes`, then drops
    /// them; confirms generation 3 when asked by `ward confirm`.
    pub(crate) fn start(backlog: usize, outcomes: Vec<ReloadOutcome>) -> Harness {
        let dir = temp_dir();
        let socket = dir.join("run/ward.sock");
        let listener = bind(&socket).unwrap();
        let (events, _) = broadcast::channel(backlog);
        let (requests, received) = mpsc::channel::<Request>(1);
        tokio::spawn(fake_daemon(received, outcomes));
        let status = Arc::new(RwLock::new(agent_status()));
        let counters = Arc::new(FakeCounters::default());
        let server = tokio::spawn(serve(
            listener,
            status.clone(),
            counters,
            events.clone(),
            requests,
        ));
        Harness {
            dir,
            socket,
            events,
            server,
            status,
        }
    }

    /// Waits until `clients` connections are subscribed to the events.
    pub(crate) async fn subscribed(&self, clients: usize) {
        while self.events.receiver_count() < clients {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Publishes `records` without yielding to the server in between.
    pub(crate) fn send(&self, records: &[FlowRecord]) {
        for r in records {
            self.events.send(Arc::new(r.clone())).unwrap();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Runs a blocking client off the runtime's thread.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Runs a command on a buffer: its result (an error as `ward: error:` prints it) and output.
pub(crate) fn run(
    command: impl FnOnce(&mut dyn Write) -> anyhow::Result<ExitCode>,
) -> (Result<ExitCode, String>, String) {
    let mut out = Vec::new();
    let result = command(&mut out).map_err(|e| format!("{e:#}"));
    (result, String::from_utf8(out).unwrap())
}

pub(crate) fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}
