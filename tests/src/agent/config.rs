//! The test agent's files: its configuration (`agent.toml` as TOML text), its state
//! directory, and the removal of pin directories that dead test processes left.
use std::path::{Path, PathBuf};

use crate::util::pid_alive;

use super::BPFFS;

/// The agent's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Judges traffic forwarded between its interfaces.
    Gateway,
    /// Judges the traffic of the host it runs on.
    Host,
}

impl Role {
    /// `gateway` or `host`, as in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Host => "host",
        }
    }
}

/// The agent config file (`ward run --config FILE`) as TOML text; `settings` are
/// further `key = value` lines (event log, metrics, mode…).
pub fn config_toml(
    role: Role,
    interfaces: &[String],
    policy: &Path,
    pin_dir: &Path,
    control_socket: &Path,
    settings: &str,
) -> String {
    let mut t = toml::map::Map::new();
    t.insert("role".into(), toml::Value::String(role.name().into()));
    t.insert(
        "interfaces".into(),
        toml::Value::Array(
            interfaces
                .iter()
                .map(|i| toml::Value::String(i.clone()))
                .collect(),
        ),
    );
    t.insert(
        "policy".into(),
        toml::Value::String(policy.display().to_string()),
    );
    t.insert(
        "pin_dir".into(),
        toml::Value::String(pin_dir.display().to_string()),
    );
    t.insert(
        "control_socket".into(),
        toml::Value::String(control_socket.display().to_string()),
    );
    // The agent's state (the last good policy, the anti-rollback floor) beside its pins,
    // never the machine's /var/lib/ward, unless the settings name one.
    let names_state_dir = toml::from_str::<toml::Table>(settings)
        .map(|s| s.contains_key("state_dir"))
        .unwrap_or(false);
    if !names_state_dir {
        t.insert(
            "state_dir".into(),
            toml::Value::String(state_dir(pin_dir).display().to_string()),
        );
    }
    let base = toml::to_string(&toml::Value::Table(t)).expect("a table of strings serializes");
    // Settings last: they may open tables such as `[response]`.
    format!("{base}\n{settings}")
}

/// The default `state_dir` of the agent pinned in `pin_dir`: a temporary directory
/// named after it.
pub(super) fn state_dir(pin_dir: &Path) -> PathBuf {
    let name = pin_dir.file_name().unwrap_or_default().to_string_lossy();
    std::env::temp_dir().join(format!("{name}-state"))
}

/// Removes pin directories `ward-test-<pid>-*` left by processes that no longer exist.
pub fn clean_stale_pin_dirs() {
    let Ok(dir) = std::fs::read_dir(BPFFS) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("ward-test-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !pid_alive(pid) {
                eprintln!(
                    "ward-tests: removing leftover pin directory {}",
                    e.path().display()
                );
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
