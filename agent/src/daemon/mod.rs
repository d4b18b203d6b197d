//! `ward run`: load the policy, enforce it, report every verdict, reload on SIGHUP,
//! on policy file change or on request (commit-confirmed when asked or configured,
//! and refused by the lock-out preflight when it would cut a management session), and
//! reopen the event log on SIGUSR1 (logrotate).
//!
//! This file wires the agent's tasks together and runs its loop; the rest is by concern:
//! `bus` (the one typed request enum the daemon answers), `reload` (publish, adopt,
//! reload), `policy_watch` (noticing policy file changes), `memory` (the heap a load
//! freed, given back), `confirm` (commit-confirmed apply and roll-back), `lockout`
//! (the lock-out preflight before a policy goes in force), `quarantine`,
//! `breakglass`, `explain` (`ward explain --live`), `health` (lost events), `watch`
//! (interfaces), `addresses` (this host's own addresses in the kernel) and `systemd`.
mod addresses;
mod breakglass;
mod bus;
mod confirm;
mod explain;
mod fleet;
mod fleet_grants;
mod health;
mod lockout;
mod memory;
mod policy_watch;
mod quarantine;
mod reload;
mod systemd;
mod watch;

use std::{
    path::Path,
    sync::{Arc, Mutex, RwLock},
    time::SystemTime,
};

pub use bus::{Bus, ExplainLine, ReloadOutcome, Reply, Request, RequestError};
use confirm::{Pending, Unconfirmed};
use health::LostEvents;

use anyhow::{bail, Context as _};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::{broadcast, mpsc, Notify},
};
use tracing::{error, info, warn};

use crate::{
    config::AgentConfig,
    control,
    dataplane::{Counters, Dataplane, LoadOptions, SharedCounters},
    distribution::Source,
    events::FlowRecord,
    events::{self, EventLog},
    metrics,
    policy::Loaded,
    response,
    state::{AgentStatus, FaultArea, SharedStatus},
};

/// Events buffered for slow live subscribers before they are told they lagged.
const SUBSCRIBER_BACKLOG: usize = 4096;

/// How `ward run` treats what it leaves behind and what it finds.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Detach on SIGTERM/SIGINT (else enforcement stays until `ward uninstall`).
    pub detach_on_exit: bool,
    /// Replace pinned maps an earlier build made with another layout.
    pub reset_state: bool,
    /// Put the start's policy in force even if the lock-out preflight finds
    /// established management sessions it would cut.
    pub force_policy: bool,
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
    /// The policy in force went in without confirmation (see [`Unconfirmed`]).
    unconfirmed: Option<Unconfirmed>,
    /// Where the confirm probe sends its confirmation.
    requests: Bus,
    /// Where the policy comes from (files, signed bundles, `policy_url`).
    source: Source,
    /// Break-glass grants in force (as in the slot in force).
    grants: Vec<crate::breakglass::Grant>,
    /// Where alerts go (into the event stream).
    alerts: mpsc::Sender<FlowRecord>,
    /// The idle slot does not hold the policy in force yet (see [`Agent::sync_idle`]).
    idle_behind: bool,
    /// The fleet lists in force (see [`Agent::apply_fleet`]).
    fleet: crate::distribution::FleetLists,
}

/// Sets the process's allocator up for the daemon (`daemon/memory.rs`): call it
/// before any thread starts, the async runtime's included, and before [`run`].
pub fn configure_allocator() {
    memory::configure();
}

/// Runs the agent until SIGTERM or SIGINT. Enforcement stays in place afterwards
/// (pinned links and maps) unless `options.detach_on_exit`.
pub async fn run(config_path: &Path, options: RunOptions) -> anyhow::Result<()> {
    let config = AgentConfig::load(config_path)?;
    // Signals are taken from the start: a stop during start-up ends the agent cleanly
    // once it enforces, never half-way.
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    preflight(&config)?;
    if let Some(warning) = config.failsafe.warning(config.role) {
        warn!("WARNING: {warning}");
    }
    // Bound first: a second agent stops here, before it touches the pinned maps.
    let control_listener = control::bind(&config.control_socket)
        .with_context(|| format!("control socket {}", config.control_socket.display()))?;
    let earlier = config.pin_dir.join(ward_common::map_names::CONFIG).exists();
    let load_options = LoadOptions {
        conntrack_entries: config.conntrack_entries.map(std::num::NonZeroU32::get),
        reset_incompatible: options.reset_state,
    };
    let (alerts_tx, alerts_rx) = mpsc::channel::<FlowRecord>(256);
    let mut source = Source::open(&config, alerts_tx.clone()).await?;
    // The kernel programs load (maps created or adopted, programs verified) while the
    // policy is read and checked; neither needs the other. Not with `--reset-state`,
    // which may replace pinned maps: only once there is a policy to enforce.
    let pin_dir = config.pin_dir.clone();
    let loading = (!options.reset_state)
        .then(|| std::thread::spawn(move || Dataplane::load_with(&pin_dir, &load_options)));
    // So are the established connections the lock-out preflight judges.
    let sessions = lockout::Sessions::read();
    let (loaded, fallback) = match source.load() {
        Ok(loaded) => (loaded, None),
        Err(messages) => {
            let (loaded, fault) = start_fallback(&source, &messages.join("\n"), earlier, &config)?;
            (Arc::new(loaded), fault)
        }
    };

    let mut dataplane = match loading.map(std::thread::JoinHandle::join) {
        Some(Ok(loaded)) => loaded?,
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        None => Dataplane::load_with(&config.pin_dir, &load_options)?,
    };
    dataplane.configure(&config)?;
    let counters: SharedCounters = Arc::new(Mutex::new(Counters::open(&config.pin_dir)?));
    let status: SharedStatus = Arc::new(RwLock::new(AgentStatus {
        role: config.role,
        mode: config.mode,
        policy_path: config.policy.clone(),
        event_log: config.event_log.clone(),
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
        breakglass_refused: Vec::new(),
        event_sink: None,
    }));
    if let Some(fault) = fallback {
        if let Ok(mut s) = status.write() {
            s.raise(FaultArea::Policy, fault, 1);
        }
    }
    // A bundle fetched from `policy_url` is reloaded when stored, unless the policy
    // file watch sees it land (it would reload it a second time).
    let fetched = (!config.watch_policy).then(|| Arc::new(Notify::new()));
    source.attach(&status, fetched.clone());
    let (requests_tx, mut requests) = mpsc::channel::<Request>(bus::BACKLOG);
    let mut agent = Agent {
        config,
        loaded: loaded.clone(),
        dataplane,
        status,
        counters,
        pending: None,
        unconfirmed: None,
        requests: requests_tx.clone(),
        source,
        grants: Vec::new(),
        alerts: alerts_tx.clone(),
        idle_behind: true,
        fleet: Default::default(),
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
        None => {
            let force = options.force_policy;
            let how = "`ward run --force-policy`";
            if let Err(refusal) = agent.lock_out(&loaded, None, sessions, force, how) {
                bail!("{refusal}");
            }
            agent.publish(loaded.clone())?
        }
    };
    agent.confirm_start(generation);
    memory::release_freed();
    // The programs know this host's addresses before they judge a packet.
    let mut host_addrs = addresses::HostAddrs::default();
    agent.refresh_host_addrs(&mut host_addrs);
    agent.dataplane.attach(&agent.config.interfaces)?;
    agent.show_interfaces();

    let (events_tx, _) = broadcast::channel(SUBSCRIBER_BACKLOG);
    let reopen = Arc::new(Notify::new());
    let log = EventLog::open(agent.config.event_log.as_deref()).context("opening the event log")?;
    let sink = events::sink::start(&agent.config, &agent.status)?;
    let reader = events::reader::run(
        agent.dataplane.take_events()?,
        log,
        sink,
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
    let control = tokio::spawn(control::serve(
        control_listener,
        agent.status.clone(),
        agent.counters.clone(),
        events_tx.clone(),
        requests_tx.clone(),
    ));
    let detector = tokio::spawn(response::detect(
        events_tx.subscribe(),
        agent.config.response.clone(),
        agent.config.failsafe.management.clone(),
        requests_tx,
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
    let mut policy_watch = agent
        .config
        .watch_policy
        .then(|| policy_watch::PolicyWatch::new(&agent.config.policy));
    let mut expiry = tokio::time::interval(quarantine::QUARANTINE_SWEEP);
    let mut health = tokio::time::interval(health::HEALTH_CHECK);
    let mut lost = LostEvents::default();
    let mut interface_watch = tokio::time::interval(watch::INTERFACE_WATCH);
    loop {
        let deadline = agent.pending.as_ref().map(|p| p.deadline);
        let trigger = tokio::select! {
            _ = hup.recv() => "SIGHUP",
            // Log rotation: the event log only, never the policy.
            _ = usr1.recv() => {
                reopen.notify_one();
                continue;
            }
            Some(request) = requests.recv() => {
                agent.handle(request);
                continue;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                if deadline.is_some() => {
                agent.roll_back("it was not confirmed in time");
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
            // Once nothing else is to be done.
            _ = tokio::time::sleep(reload::IDLE_SYNC_DELAY), if agent.idle_behind => {
                agent.sync_idle();
                continue;
            }
            _ = interface_watch.tick() => {
                agent.watch_interfaces();
                agent.refresh_host_addrs(&mut host_addrs);
                continue;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = async { policy_watch.as_mut().expect("guarded").changed().await },
                if policy_watch.is_some() => "policy file change",
            _ = async { fetched.as_ref().expect("guarded").notified().await },
                if fetched.is_some() => "policy_url: new bundle",
        };
        agent.reload(trigger, None, false);
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

/// What a start whose configured policy is refused enforces: the last good policy
/// kept in `state_dir`, or, when none is kept and nothing is in force, the built-in
/// deny-all policy (the failsafe still applies). Returns it with the fault to raise.
/// With a policy in force (pinned by an earlier agent) and none kept, the start fails
/// and the pinned programs keep enforcing it.
fn start_fallback(
    source: &Source,
    refused: &str,
    earlier: bool,
    config: &AgentConfig,
) -> anyhow::Result<(Loaded, Option<String>)> {
    let last_good = source.last_good();
    let kept = last_good.load().unwrap_or_else(|e| {
        error!("the last good policy cannot be used: {e}");
        None
    });
    let (loaded, what) = match kept {
        Some(loaded) => {
            let what = format!(
                "the last good policy {} kept in {}",
                loaded.compiled.hash,
                last_good.path().display()
            );
            (loaded, what)
        }
        None if earlier => bail!(
            "{refused}\nthe policy is invalid and no last good policy is kept in {}; nothing was \
             changed: the programs pinned in {} keep enforcing the policy in force",
            config.state_dir.display(),
            config.pin_dir.display()
        ),
        None => (
            crate::policy::deny_all(),
            "the built-in deny-all policy (only the failsafe passes)".to_owned(),
        ),
    };
    error!("the configured policy is refused: {refused}");
    error!("enforcing {what} until a valid policy arrives (file change, SIGHUP or `ward reload`)");
    let fault = format!("the configured policy is refused ({refused}); enforcing {what}");
    Ok((loaded, Some(fault)))
}

fn poisoned<T>(_: T) -> anyhow::Error {
    anyhow::anyhow!("agent state lock poisoned")
}

/// Checks what would otherwise fail half-way: privileges and interfaces (named ones
/// that are not Ethernet devices; missing ones are attached when they appear).
fn preflight(config: &AgentConfig) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("ward run needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)");
    }
    crate::dataplane::check_interfaces(&config.interfaces)?;
    Ok(())
}
