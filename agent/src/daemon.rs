//! `ward run`: load the policy, enforce it, report every verdict, reload on SIGHUP,
//! on policy file change or on request (commit-confirmed when asked).
mod breakglass;
mod confirm;
mod systemd;
mod watch;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, SystemTime},
};

use confirm::Pending;

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
    dataplane::{Counters, Dataplane, LoadOptions, SharedCounters},
    distribution::Source,
    events::FlowRecord,
    events::{self, EventLog},
    metrics,
    policy::Loaded,
    response::{self, AlertKind, ResponseRequest},
    state::{
        AgentStatus, FaultArea, PolicyNames, PolicyRequest, ReloadFailure, ReloadOutcome,
        ResponseStats, Rollback, SharedStatus,
    },
};

/// How often the policy files are checked for changes.
const POLICY_POLL: Duration = Duration::from_millis(250);
/// How often expired quarantines and break-glass grants are removed (the kernel
/// ignores them already).
const QUARANTINE_SWEEP: Duration = Duration::from_secs(1);
/// How often the agent checks for lost events.
const HEALTH_CHECK: Duration = Duration::from_secs(1);
/// How long without a lost event before the `events-lost` fault clears.
const EVENTS_LOST_CLEARS: Duration = Duration::from_secs(10);
/// Events buffered for slow live subscribers before they are told they lagged.
const SUBSCRIBER_BACKLOG: usize = 4096;

/// How `ward run` treats what it leaves behind and what it finds.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Detach on SIGTERM/SIGINT (else enforcement stays until `ward uninstall`).
    pub detach_on_exit: bool,
    /// Replace pinned maps an earlier build made with another layout.
    pub reset_state: bool,
}

/// The running agent: its dataplane and what it shares with its tasks.
struct Agent {
    config: AgentConfig,
    /// The policy in force.
    loaded: Arc<Loaded>,
    dataplane: Dataplane,
    status: SharedStatus,
    counters: SharedCounters,
    /// The policy in force awaits confirmation (commit-confirmed apply).
    pending: Option<Pending>,
    /// Where the confirm probe sends its confirmation.
    policy_requests: mpsc::Sender<PolicyRequest>,
    /// Where the policy comes from (files, signed bundles, `policy_url`).
    source: Source,
    /// Break-glass grants in force (as in the slot in force).
    grants: Vec<crate::breakglass::Grant>,
    /// Where alerts go (into the event stream).
    alerts: mpsc::Sender<FlowRecord>,
}

/// Runs the agent until SIGTERM or SIGINT. Enforcement stays in place afterwards
/// (pinned links and maps) unless `options.detach_on_exit`.
pub async fn run(config_path: &Path, options: RunOptions) -> anyhow::Result<()> {
    let config = AgentConfig::load(config_path)?;
    // Signals are taken from the start: a stop during start-up ends the agent cleanly
    // once it enforces, never half-way.
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    preflight(&config)?;
    // Bound first: a second agent stops here, before it touches the pinned maps.
    let control_listener = control::bind(&config.control_socket)
        .with_context(|| format!("control socket {}", config.control_socket.display()))?;
    let earlier = config.pin_dir.join(ward_common::map_names::CONFIG).exists();
    let (alerts_tx, alerts_rx) = mpsc::channel::<FlowRecord>(256);
    let mut source = Source::open(&config, alerts_tx.clone()).await?;
    let loaded = source
        .load()
        .map_err(|messages| anyhow::anyhow!("{}", messages.join("\n")))
        .with_context(|| match earlier {
            true => format!(
                "the policy is invalid; nothing was changed: the programs pinned in {} keep \
                 enforcing the last good policy",
                config.pin_dir.display()
            ),
            false => "the policy is invalid; nothing was attached".to_owned(),
        })?;

    let load_options = LoadOptions {
        conntrack_entries: config.conntrack_entries.map(std::num::NonZeroU32::get),
        reset_incompatible: options.reset_state,
    };
    let mut dataplane = Dataplane::load_with(&config.pin_dir, &load_options)?;
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
        failsafe: config.failsafe.clone(),
        pending_confirmation: None,
        rollbacks_total: 0,
        last_rollback: None,
        faults: Vec::new(),
        watch: Default::default(),
        distribution: Default::default(),
        breakglass: Vec::new(),
    }));
    source.attach(&status);
    let (reload_tx, mut reload_rx) = mpsc::channel::<PolicyRequest>(8);
    let loaded = Arc::new(loaded);
    let mut agent = Agent {
        config,
        loaded: loaded.clone(),
        dataplane,
        status,
        counters,
        pending: None,
        policy_requests: reload_tx.clone(),
        source,
        grants: Vec::new(),
        alerts: alerts_tx.clone(),
    };
    // Grants an earlier agent left go into whatever policy is published now.
    agent.restore_grants()?;
    // The policy is in the maps before any program is attached: no allow-all, no
    // deny-all. A policy an earlier agent left in force is not rewritten.
    let generation = match agent.dataplane.in_force(&loaded.compiled)? {
        Some(generation) => {
            agent.adopt(generation)?;
            info!("policy unchanged since the last agent (generation {generation}); nothing rewritten");
            generation
        }
        None => agent.publish(loaded.clone())?,
    };
    agent.dataplane.attach(&agent.config.interfaces)?;
    agent.show_interfaces();

    let (events_tx, _) = broadcast::channel(SUBSCRIBER_BACKLOG);
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

    if agent.config.failsafe.is_active() {
        info!(
            "failsafe: tcp/{:?} from {:?} is always allowed",
            agent.config.failsafe.tcp_ports, agent.config.failsafe.management
        );
    }
    // Interfaces matching a pattern are attached before the agent says it enforces.
    agent.watch_interfaces();
    info!(
        "enforcing generation={generation} policy={} role={:?} mode={:?} interfaces={}",
        loaded.compiled.hash,
        agent.config.role,
        agent.config.mode,
        agent.config.interfaces.join(",")
    );
    systemd::ready();
    let mut fingerprint = policy_fingerprint(&agent.config.policy);
    let mut poll = tokio::time::interval(POLICY_POLL);
    let mut expiry = tokio::time::interval(QUARANTINE_SWEEP);
    let mut health = tokio::time::interval(HEALTH_CHECK);
    let mut lost = LostEvents::default();
    let mut interface_watch = tokio::time::interval(watch::INTERFACE_WATCH);
    loop {
        let deadline = agent.pending.as_ref().map(|p| p.deadline);
        let (trigger, reply, confirm_within) = tokio::select! {
            _ = hup.recv() => {
                reopen.notify_one();
                ("SIGHUP", None, None)
            }
            Some(request) = reload_rx.recv() => match request {
                PolicyRequest::Reload { confirm_within, reply } => {
                    ("request", Some(reply), confirm_within)
                }
                PolicyRequest::Breakglass { request, by, reply } => {
                    let _ = reply.send(agent.grant(&request, by));
                    continue;
                }
                PolicyRequest::EndBreakglass { id, by, reply } => {
                    let _ = reply.send(agent.end_grant(id, &by));
                    continue;
                }
                PolicyRequest::Confirm { by, generation, reply } => {
                    let confirmed = agent.confirm(&by, generation);
                    if let Some(reply) = reply {
                        let _ = reply.send(confirmed);
                    }
                    continue;
                }
            },
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                if deadline.is_some() => {
                agent.roll_back("it was not confirmed in time");
                continue;
            }
            Some(request) = response_rx.recv() => {
                agent.respond(request);
                continue;
            }
            _ = expiry.tick() => {
                agent.expire_quarantines();
                agent.expire_grants();
                continue;
            }
            _ = health.tick() => {
                agent.check_lost_events(&mut lost);
                continue;
            }
            _ = interface_watch.tick() => {
                agent.watch_interfaces();
                continue;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = poll.tick(), if agent.config.watch_policy => {
                let now = policy_fingerprint(&agent.config.policy);
                if now == fingerprint {
                    continue;
                }
                fingerprint = now;
                ("policy file change", None, None)
            }
        };
        let outcome = agent.reload(trigger, confirm_within);
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }
    systemd::stopping();
    control.abort();
    detector.abort();
    if let Some(m) = metrics {
        m.abort();
    }
    if agent.pending.is_some() {
        agent.roll_back("the agent stopped before it was confirmed");
    }
    let interfaces = agent.config.interfaces.join(",");
    if options.detach_on_exit {
        agent.dataplane.detach();
        agent.show_interfaces();
        warn!("stopping: detached from {interfaces} (--detach-on-exit); their traffic is no longer filtered");
    } else {
        let generation = agent.status.read().map_or(0, |s| s.generation);
        info!(
            "stopping: enforcement stays on {interfaces} with generation {generation} (links and maps \
             pinned in {}); the next `ward run` adopts them, `ward uninstall` removes them",
            agent.config.pin_dir.display()
        );
    }
    let _ = std::fs::remove_file(&agent.config.control_socket);
    Ok(())
}

impl Agent {
    /// Publishes a checked policy: harvests the counters of the slot it will overwrite
    /// and names the slot's new ids (before the switch, so no scrape sees new ids with
    /// old names), writes the policy there and switches to it. Returns the generation.
    fn publish(&mut self, loaded: Arc<Loaded>) -> anyhow::Result<u64> {
        let next = self.dataplane.config()?.generation + 1;
        let slot = ward_common::slot_of(next);
        // The idle slot gets the grants in force before it gets the policy.
        self.carry_grants(slot, &loaded.compiled)?;
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
        self.loaded = loaded;
        let mut status = self.status.write().map_err(poisoned)?;
        status.generation = generation;
        status.loaded_at = Some(SystemTime::now());
        drop(status);
        self.source.applied(&self.loaded, generation);
        Ok(generation)
    }

    /// Takes over the policy an earlier agent left in force as `generation` (it is
    /// `self.loaded`, as [`Dataplane::in_force`] found): names its slot, writes nothing.
    fn adopt(&mut self, generation: u64) -> anyhow::Result<()> {
        let slot = ward_common::slot_of(generation);
        let mut status = self.status.write().map_err(poisoned)?;
        status.slots[slot as usize] = Some(PolicyNames::new(generation, &self.loaded.compiled));
        status.generation = generation;
        status.loaded_at = Some(SystemTime::now());
        drop(status);
        self.source.applied(&self.loaded, generation);
        Ok(())
    }

    /// Confirms the pending policy (only `generation`'s, when given).
    fn confirm(&mut self, by: &str, generation: Option<u64>) -> Result<u64, String> {
        let pending = match &self.pending {
            Some(p) if generation.is_none_or(|g| g == p.generation) => p.generation,
            _ => return Err("nothing to confirm: no policy awaits confirmation".into()),
        };
        self.pending = None;
        if let Ok(mut status) = self.status.write() {
            status.pending_confirmation = None;
        }
        info!("policy generation {pending} confirmed by {by}");
        Ok(pending)
    }

    /// Puts the last confirmed policy back in force, logged and counted.
    fn roll_back(&mut self, why: &str) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let unconfirmed = self.loaded.compiled.hash.clone();
        let previous = pending.rollback_to.clone();
        let hash = previous.compiled.hash.clone();
        match self.publish(previous) {
            Ok(generation) => {
                error!(
                    "rolled back: policy {unconfirmed} (generation {}) was not kept because {why}; \
                     policy {hash} is in force again as generation {generation}",
                    pending.generation
                );
                if let Ok(mut status) = self.status.write() {
                    status.pending_confirmation = None;
                    status.rollbacks_total += 1;
                    status.last_rollback = Some(Rollback {
                        at: SystemTime::now(),
                        unconfirmed,
                        generation,
                        hash,
                        reason: why.to_owned(),
                    });
                }
            }
            Err(e) => {
                error!("rolling back failed ({e:#}); the unconfirmed policy stays in force");
                if let Ok(mut status) = self.status.write() {
                    status.pending_confirmation = None;
                }
            }
        }
    }

    /// Loads the policy again and publishes it if it changed; a refused policy leaves
    /// the one in force untouched.
    /// With `confirm_within` (or the configured window), a new policy must then be
    /// confirmed in time or is rolled back.
    fn reload(&mut self, trigger: &str, confirm_within: Option<Duration>) -> ReloadOutcome {
        let confirm_within = confirm_within.or(self.config.failsafe.confirm_within);
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
            confirm_by: None,
        };
        let previous = self.loaded.clone();
        let result = match self.source.load() {
            Err(messages) => Err(messages),
            Ok(loaded) => {
                outcome.messages = loaded.warnings.iter().map(ToString::to_string).collect();
                if loaded.compiled.hash == current.hash {
                    Ok(None)
                } else {
                    let hash = loaded.compiled.hash.clone();
                    self.publish(Arc::new(loaded))
                        .map(|g| Some((g, hash)))
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
                status.clear(FaultArea::Policy);
                if let Some(within) = confirm_within {
                    // Roll-back goes to the last confirmed policy, however many
                    // unconfirmed ones came in between.
                    let rollback_to = self
                        .pending
                        .take()
                        .map_or(previous, |p| p.rollback_to.clone());
                    let pending = Pending::new(
                        generation,
                        rollback_to,
                        within,
                        self.config.failsafe.confirm_probe,
                        self.policy_requests.clone(),
                    );
                    warn!(
                        "generation {generation} must be confirmed within {} (`ward confirm`), or the previous policy comes back",
                        humantime::format_duration(within)
                    );
                    outcome.confirm_by = Some(pending.wall_deadline());
                    status.pending_confirmation = Some(pending.status(&hash));
                    self.pending = Some(pending);
                }
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
                status.clear(FaultArea::Policy);
                if let Some(p) = &self.pending {
                    outcome.confirm_by = Some(p.wall_deadline());
                }
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
                let first = messages.first().map_or("", String::as_str);
                let message = format!(
                    "reload refused on {trigger}; generation {} stays in force: {first}",
                    status.generation
                );
                status.raise(FaultArea::Policy, message, 1);
                outcome.messages = messages;
            }
        }
        outcome
    }

    /// Carries out a quarantine, release or list request and reports it as an alert.
    fn respond(&mut self, request: ResponseRequest) {
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
                    self.alert(AlertKind::Quarantine, entry);
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
                    self.alert(AlertKind::Release, &released);
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

    /// Raises the `events-lost` fault when the kernel found the event ring buffer full
    /// since the last check, and clears it after a quiet spell.
    fn check_lost_events(&mut self, lost: &mut LostEvents) {
        let total = match self.counters.lock() {
            Ok(c) => c.events(ward_common::EventCounter::Lost),
            Err(_) => return,
        };
        let Ok(total) = total else { return };
        let Ok(mut status) = self.status.write() else {
            return;
        };
        let now = tokio::time::Instant::now();
        let new = total.saturating_sub(lost.total.unwrap_or(total));
        lost.total = Some(total);
        if new > 0 {
            lost.last = Some(now);
            let message = format!(
                "the event ring buffer was full: {total} events lost in all; verdicts and \
                 counters are unaffected, the event reader fell behind"
            );
            if status.raise(FaultArea::EventsLost, message, new) {
                warn!("{new} events lost: the event ring buffer was full (enforcement goes on)");
            }
        } else if lost.last.is_some_and(|t| now - t >= EVENTS_LOST_CLEARS) {
            lost.last = None;
            if let Some(fault) = status.clear(FaultArea::EventsLost) {
                info!(
                    "no events lost for {EVENTS_LOST_CLEARS:?}; {} were lost since {}",
                    fault.count,
                    humantime::format_rfc3339_seconds(fault.since)
                );
            }
        }
    }

    /// Removes the quarantines whose time is up, with an alert each.
    fn expire_quarantines(&mut self) {
        match self.dataplane.expire() {
            Ok(expired) if expired.is_empty() => {}
            Ok(expired) => {
                for entry in expired {
                    info!("quarantine of {} expired", entry.ip);
                    let ended = QuarantineEntry {
                        by: "expiry".into(),
                        ..entry
                    };
                    self.alert(AlertKind::Release, &ended);
                    self.with_response(|r| r.releases_total += 1);
                }
                self.count_quarantines();
            }
            Err(e) => warn!("expiring quarantines: {e:#}"),
        }
    }

    fn alert(&self, kind: AlertKind, entry: &QuarantineEntry) {
        let (zone, generation) = self.zone_of(entry.ip);
        let _ = self.alerts.try_send(response::alert::record(
            kind, entry.ip, &zone, entry, generation,
        ));
    }

    /// The zone of `ip` in the policy in force, and the generation.
    fn zone_of(&self, ip: std::net::IpAddr) -> (String, u64) {
        let generation = self.status.read().map_or(0, |s| s.generation);
        (self.loaded.policy.zone_of(ip).to_owned(), generation)
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
}

/// The lost-event counter as last seen.
#[derive(Default)]
struct LostEvents {
    /// The total at the last check (`None` before the first).
    total: Option<u64>,
    /// When events were last found lost.
    last: Option<tokio::time::Instant>,
}

fn poisoned<T>(_: T) -> anyhow::Error {
    anyhow::anyhow!("agent state lock poisoned")
}

/// Checks what would otherwise fail half-way: privileges and interfaces.
fn preflight(config: &AgentConfig) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("ward run needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)");
    }
    crate::dataplane::check_interfaces(&config.interfaces)?;
    Ok(())
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
