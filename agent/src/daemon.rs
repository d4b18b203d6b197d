//! `ward run`: load the policy, enforce it, reload it on SIGHUP or file change.
use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use anyhow::{bail, Context as _};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::{
    config::AgentConfig,
    dataplane::Dataplane,
    policy::{self, Loaded},
};

/// How often the policy files are checked for changes.
const POLICY_POLL: Duration = Duration::from_millis(250);

/// Runs the agent until SIGTERM or SIGINT, then detaches.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = AgentConfig::load(config_path)?;
    preflight(&config)?;
    let loaded =
        load_policy(&config.policy).context("the policy is invalid; nothing was attached")?;

    let mut dataplane = Dataplane::load(&config.pin_dir)?;
    // The policy is in the maps before any program is attached: no allow-all, no deny-all.
    let generation = dataplane.apply(&loaded.compiled)?;
    dataplane.attach(config.role, &config.interfaces)?;
    info!(
        "enforcing generation={generation} policy={} role={:?} interfaces={}",
        loaded.compiled.hash,
        config.role,
        config.interfaces.join(",")
    );

    let mut hash = loaded.compiled.hash;
    let mut fingerprint = policy_fingerprint(&config.policy);
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut poll = tokio::time::interval(POLICY_POLL);
    loop {
        let trigger = tokio::select! {
            _ = hup.recv() => "SIGHUP",
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = poll.tick() => {
                let now = policy_fingerprint(&config.policy);
                if now == fingerprint {
                    continue;
                }
                fingerprint = now;
                "policy file change"
            }
        };
        match reload(&mut dataplane, &config.policy, &hash) {
            Ok(Some((generation, new_hash))) => {
                info!(
                    "enforcing generation={generation} policy={new_hash} (reloaded on {trigger})"
                );
                hash = new_hash;
            }
            Ok(None) => info!("policy unchanged on {trigger}; nothing rewritten"),
            Err(e) => {
                error!("reload refused on {trigger}, the previous policy stays in force: {e:#}")
            }
        }
    }
    info!("stopping: detaching from {}", config.interfaces.join(","));
    dataplane.detach();
    Ok(())
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

/// Loads and checks the policy, logging warnings; errors come back in one message.
fn load_policy(path: &Path) -> anyhow::Result<Loaded> {
    match policy::load(&[path.to_owned()]) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                warn!("{w}");
            }
            Ok(loaded)
        }
        Err(diagnostics) => {
            let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            bail!("{}", lines.join("\n"))
        }
    }
}

/// Loads the policy again and applies it if it changed; returns the new generation and hash.
fn reload(
    dataplane: &mut Dataplane,
    path: &Path,
    hash: &str,
) -> anyhow::Result<Option<(u64, String)>> {
    let loaded = load_policy(path)?;
    if loaded.compiled.hash == hash {
        return Ok(None);
    }
    let generation = dataplane.apply(&loaded.compiled)?;
    Ok(Some((generation, loaded.compiled.hash)))
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
