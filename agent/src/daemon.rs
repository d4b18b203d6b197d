//! `ward run`: load the policy, enforce it, report every verdict, reload on SIGHUP,
//! on policy file change or on request.
use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, SystemTime},
};

use anyhow::{bail, Context as _};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::{broadcast, mpsc, Notify},
};
use tracing::{error, info, warn};

use crate::{
    config::AgentConfig,
    control,
    dataplane::QuarantineEntry,
    dataplane::{Counters, Dataplane, LoadOptions},
    events::FlowRecord,
    events::{self, EventLog},
    metrics,
    policy::{self, Loaded},
    response::{self, AlertKind, ResponseRequest},
    state::{
        AgentStatus, HookStatus, PolicyNames, ReloadFailure, ReloadOutcome, ReloadRequest,
        ResponseStats, SharedCounters, SharedStatus,
    },
};

/// How often the policy files are checked for changes.
const POLICY_POLL: Duration = Duration::from_millis(250);
/// How often expired quarantines are removed (the kernel ignores them already).
const QUARANTINE_SWEEP: Duration = Duration::from_secs(1);
/// Events buffered for slow live subscribers before they are told they lagged.
const SUBSCRIBER_BACKLOG: usize = 4096;

/// The running agent: its dataplane and what it shares with its tasks.
struct Agent {
    config: AgentConfig,
    /// The policy in force.
    policy: policy::Policy,
    dataplane: Dataplane,
    status: SharedStatus,
    counters: SharedCounters,
}

/// Runs the agent until SIGTERM or SIGINT, then detaches.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = AgentConfig::load(config_path)?;
    preflight(&config)?;
    // Bound first: a second agent stops here, before it touches the pinned maps.
    let control_listener = control::bind(&config.control_socket)
        .with_context(|| format!("control socket {}", config.control_socket.display()))?;
    let loaded = load_policy(&config.policy)
        .map_err(|messages| anyhow::anyhow!("{}", messages.join("\n")))
        .context("the policy is invalid; nothing was attached")?;

    let options = LoadOptions {
        conntrack_entries: config.conntrack_entries.map(std::num::NonZeroU32::get),
    };
    let mut dataplane = Dataplane::load_with(&config.pin_dir, &options)?;
    dataplane.configure(&config)?;
    let counters: SharedCounters = Arc::new(Mutex::new(Counters::open(&config.pin_dir)?));
    let status: SharedStatus = Arc::new(RwLock::new(AgentStatus {
        role: config.role,
        mode: config.mode,
        policy_path: config.policy.clone(),
        hooks: Vec::new(),
        slots: [None, None],
        generation: 0,
        started_at: SystemTime::now(),
        loaded_at: None,
        last_reload_ok: None,
        last_reload_error: None,
        response: Default::default(),
    }));
    let mut agent = Agent {
        config,
        policy: loaded.policy.clone(),
        dataplane,
        status,
        counters,
    };
    // The policy is in the maps before any program is attached: no allow-all, no deny-all.
    let generation = agent.publish(&loaded)?;
    agent.dataplane.attach(&agent.config.interfaces)?;
    agent.set_hooks(true);

    let (events_tx, _) = broadcast::channel(SUBSCRIBER_BACKLOG);
    let (alerts_tx, alerts_rx) = mpsc::channel::<FlowRecord>(256);
    let reopen = Arc::new(Notify::new());
    let log = EventLog::open(agent.config.event_log.as_deref()).context("opening the event log")?;
    let reader = events::reader::run(
        agent.dataplane.take_events()?,
        log,
        agent.status.clone(),
        events_tx.clone(),
        alerts_rx,
        reopen.clone(),
    );
    tokio::spawn(async move {
        if let Err(e) = reader.await {
            error!("event reader stopped: {e}");
        }
    });
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(8);
    let (response_tx, mut response_rx) = mpsc::channel::<ResponseRequest>(64);
    let control = tokio::spawn(control::serve(
        control_listener,
        agent.status.clone(),
        agent.counters.clone(),
        events_tx.clone(),
        reload_tx,
        response_tx.clone(),
    ));
    let detector = tokio::spawn(response::detect(
        events_tx.subscribe(),
        agent.config.response.clone(),
        response_tx,
        alerts_tx.clone(),
        agent.status.clone(),
    ));
    agent.count_quarantines();
    let metrics = agent.config.metrics_listen.map(|listen| {
        let (status, counters) = (agent.status.clone(), agent.counters.clone());
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(listen, status, counters).await {
                error!("metrics_listen {listen}: {e}");
            }
        })
    });

    info!(
        "enforcing generation={generation} policy={} role={:?} mode={:?} interfaces={}",
        loaded.compiled.hash,
        agent.config.role,
        agent.config.mode,
        agent.config.interfaces.join(",")
    );
    let mut fingerprint = policy_fingerprint(&agent.config.policy);
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut poll = tokio::time::interval(POLICY_POLL);
    let mut expiry = tokio::time::interval(QUARANTINE_SWEEP);
    loop {
        let (trigger, reply) = tokio::select! {
            _ = hup.recv() => {
                reopen.notify_one();
                ("SIGHUP", None)
            }
            Some(request) = reload_rx.recv() => ("request", Some(request.reply)),
            Some(request) = response_rx.recv() => {
                agent.respond(request, &alerts_tx);
                continue;
            }
            _ = expiry.tick() => {
                agent.expire_quarantines(&alerts_tx);
                continue;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = poll.tick() => {
                let now = policy_fingerprint(&agent.config.policy);
                if now == fingerprint {
                    continue;
                }
                fingerprint = now;
                ("policy file change", None)
            }
        };
        let outcome = agent.reload(trigger);
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }
    info!(
        "stopping: detaching from {}",
        agent.config.interfaces.join(",")
    );
    control.abort();
    detector.abort();
    if let Some(m) = metrics {
        m.abort();
    }
    agent.dataplane.detach();
    agent.set_hooks(false);
    let _ = std::fs::remove_file(&agent.config.control_socket);
    Ok(())
}

impl Agent {
    /// Publishes a checked policy: harvests the counters of the slot it will overwrite
    /// and names the slot's new ids (before the switch, so no scrape sees new ids with
    /// old names), writes the policy there and switches to it. Returns the generation.
    fn publish(&mut self, loaded: &Loaded) -> anyhow::Result<u64> {
        let next = self.dataplane.config()?.generation + 1;
        let slot = ward_common::slot_of(next);
        {
            let mut counters = self.counters.lock().map_err(poisoned)?;
            let previous = self.status.read().map_err(poisoned)?.slots[slot as usize].clone();
            counters.harvest(slot, previous.as_ref())?;
            self.status.write().map_err(poisoned)?.slots[slot as usize] =
                Some(PolicyNames::new(next, &loaded.compiled));
        }
        let generation = match self.dataplane.apply(&loaded.compiled) {
            Ok(g) => g,
            Err(e) => {
                // The slot was not switched to; its half-written contents have no names.
                self.status.write().map_err(poisoned)?.slots[slot as usize] = None;
                return Err(e.into());
            }
        };
        self.policy = loaded.policy.clone();
        let mut status = self.status.write().map_err(poisoned)?;
        status.generation = generation;
        status.loaded_at = Some(SystemTime::now());
        Ok(generation)
    }

    /// Loads the policy again and publishes it if it changed; a refused policy leaves
    /// the one in force untouched.
    fn reload(&mut self, trigger: &str) -> ReloadOutcome {
        let current = self
            .status
            .read()
            .ok()
            .and_then(|s| s.current().cloned())
            .unwrap_or_default();
        let mut outcome = ReloadOutcome {
            ok: false,
            changed: false,
            generation: current.generation,
            hash: current.hash.clone(),
            messages: Vec::new(),
        };
        let result = match load_policy(&self.config.policy) {
            Err(messages) => Err(messages),
            Ok(loaded) => {
                outcome.messages = loaded.warnings.iter().map(ToString::to_string).collect();
                if loaded.compiled.hash == current.hash {
                    Ok(None)
                } else {
                    self.publish(&loaded)
                        .map(|g| Some((g, loaded.compiled.hash)))
                        .map_err(|e| vec![format!("{e:#}")])
                }
            }
        };
        let mut status = match self.status.write() {
            Ok(s) => s,
            Err(_) => return outcome,
        };
        match result {
            Ok(Some((generation, hash))) => {
                info!("enforcing generation={generation} policy={hash} (reloaded on {trigger})");
                status.last_reload_ok = Some(SystemTime::now());
                outcome = ReloadOutcome {
                    ok: true,
                    changed: true,
                    generation,
                    hash,
                    ..outcome
                };
            }
            Ok(None) => {
                info!("policy unchanged on {trigger}; nothing rewritten");
                status.last_reload_ok = Some(SystemTime::now());
                outcome.ok = true;
            }
            Err(messages) => {
                error!(
                    "reload refused on {trigger}, the previous policy stays in force: {}",
                    messages.join("\n")
                );
                status.last_reload_error = Some(ReloadFailure {
                    at: SystemTime::now(),
                    error: messages.join("\n"),
                });
                outcome.messages = messages;
            }
        }
        outcome
    }

    /// Carries out a quarantine, release or list request and reports it as an alert.
    fn respond(&mut self, request: ResponseRequest, alerts: &mpsc::Sender<FlowRecord>) {
        match request {
            ResponseRequest::Quarantine {
                ip,
                ttl,
                reason,
                by,
                reply,
            } => {
                let done = self
                    .dataplane
                    .quarantine(ip, ttl, &reason, &by)
                    .map_err(|e| format!("{e:#}"));
                if let Ok(entry) = &done {
                    warn!(
                        "quarantined {ip} by {by} until {:?}: {reason}",
                        entry.expires
                    );
                    self.alert(AlertKind::Quarantine, entry, alerts);
                    self.with_response(|r| match by.as_str() {
                        response::AUTO => r.auto_quarantines_total += 1,
                        _ => r.manual_quarantines_total += 1,
                    });
                }
                let _ = reply.send(done);
            }
            ResponseRequest::Release { ip, by, reply } => {
                let done = self.dataplane.release(ip).map_err(|e| format!("{e:#}"));
                if let Ok(entry) = &done {
                    info!("released {ip} ({by})");
                    let released = QuarantineEntry {
                        by: by.clone(),
                        ..entry.clone()
                    };
                    self.alert(AlertKind::Release, &released, alerts);
                    self.with_response(|r| r.releases_total += 1);
                }
                let _ = reply.send(done);
            }
            ResponseRequest::List { reply } => {
                let _ = reply.send(self.dataplane.quarantines().map_err(|e| format!("{e:#}")));
            }
        }
        self.count_quarantines();
    }

    /// Removes the quarantines whose time is up, with an alert each.
    fn expire_quarantines(&mut self, alerts: &mpsc::Sender<FlowRecord>) {
        match self.dataplane.expire() {
            Ok(expired) if expired.is_empty() => {}
            Ok(expired) => {
                for entry in expired {
                    info!("quarantine of {} expired", entry.ip);
                    let ended = QuarantineEntry {
                        by: "expiry".into(),
                        ..entry
                    };
                    self.alert(AlertKind::Release, &ended, alerts);
                    self.with_response(|r| r.releases_total += 1);
                }
                self.count_quarantines();
            }
            Err(e) => warn!("expiring quarantines: {e:#}"),
        }
    }

    fn alert(&self, kind: AlertKind, entry: &QuarantineEntry, alerts: &mpsc::Sender<FlowRecord>) {
        let (zone, generation) = self.zone_of(entry.ip);
        let _ = alerts.try_send(response::alert::record(
            kind, entry.ip, &zone, entry, generation,
        ));
    }

    /// The zone of `ip` in the policy in force, and the generation.
    fn zone_of(&self, ip: std::net::IpAddr) -> (String, u64) {
        let generation = self.status.read().map_or(0, |s| s.generation);
        (self.policy.zone_of(ip).to_owned(), generation)
    }

    /// Records how many hosts are quarantined now.
    fn count_quarantines(&mut self) {
        if let Ok(list) = self.dataplane.quarantines() {
            self.with_response(|r| r.quarantined = list.len());
        }
    }

    fn with_response(&self, f: impl FnOnce(&mut ResponseStats)) {
        if let Ok(mut status) = self.status.write() {
            f(&mut status.response);
        }
    }

    /// Records every configured hook as attached or detached.
    fn set_hooks(&self, attached: bool) {
        if let Ok(mut status) = self.status.write() {
            status.hooks = self
                .config
                .interfaces
                .iter()
                .flat_map(|i| {
                    ["xdp-ingress", "tc-egress"].map(|hook| HookStatus {
                        interface: i.clone(),
                        hook: hook.into(),
                        attached,
                    })
                })
                .collect();
        }
    }
}

fn poisoned<T>(_: T) -> anyhow::Error {
    anyhow::anyhow!("agent state lock poisoned")
}

/// Checks what would otherwise fail half-way: privileges and interfaces.
fn preflight(config: &AgentConfig) -> anyhow::Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("ward run needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)");
    }
    for interface in &config.interfaces {
        let name = std::ffi::CString::new(interface.as_str()).context("interface name")?;
        if unsafe { libc::if_nametoindex(name.as_ptr()) } == 0 {
            bail!("interface {interface} does not exist (in this network namespace)");
        }
    }
    Ok(())
}

/// Loads and checks the policy, logging warnings; on errors, returns them one per line.
fn load_policy(path: &Path) -> Result<Loaded, Vec<String>> {
    match policy::load(&[path.to_owned()]) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                warn!("{w}");
            }
            Ok(loaded)
        }
        Err(diagnostics) => Err(diagnostics.iter().map(ToString::to_string).collect()),
    }
}

/// What identifies the policy files' state: each file's path, size and modification time.
fn policy_fingerprint(path: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let files: Vec<PathBuf> = match std::fs::read_dir(path) {
        Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => vec![path.to_owned()],
    };
    let mut out: Vec<_> = files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let size = meta.as_ref().map_or(0, |m| m.len());
            (f, size, meta.and_then(|m| m.modified().ok()))
        })
        .collect();
    out.sort();
    out
}
