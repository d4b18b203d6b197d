//! The agent configuration (`/etc/ward/agent.toml`).
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod failsafe;
mod limits;
mod sink;
mod structure;
pub use failsafe::FailsafeConfig;
pub use limits::{EventsConfig, LimitsConfig, DEFAULT_EVENTS_PER_SOURCE};
pub use sink::{SinkTransport, SinkUrl, SinkUrlError};

/// Where the agent pins its maps and links unless the configuration says otherwise.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/ward";
/// Where the control socket is unless the configuration says otherwise.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/ward/ward.sock";
/// Where the agent keeps its state unless the configuration says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/ward";

/// Which verdicts produce flow events.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum LogLevel {
    /// No events.
    #[serde(rename = "off")]
    Off,
    /// Denied and audited packets.
    #[default]
    #[serde(rename = "denied")]
    Denied,
    /// Denied and audited packets, and every newly allowed flow.
    #[serde(rename = "denied+new-allowed")]
    DeniedAndNewAllowed,
}

/// What the agent enforces on its interfaces.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Traffic to and from this host: XDP on ingress, TC on egress.
    Host,
    /// Traffic forwarded between the interfaces, judged once where it arrives (XDP),
    /// and the gateway's own traffic (TC egress).
    Gateway,
}

impl Role {
    /// `host` or `gateway`, as in the configuration.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Gateway => "gateway",
        }
    }
}

/// The agent configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Host or gateway.
    pub role: Role,
    /// Interfaces to enforce on.
    pub interfaces: Vec<String>,
    /// Zone policy: a TOML file, a directory of them, a signed bundle (`*.bundle`) or
    /// a directory holding `policy.bundle`. With `policy_url`: where the fetched
    /// bundle is kept (a `*.bundle` file or a directory; default
    /// `STATE_DIR/policy.bundle`).
    #[serde(default)]
    pub policy: PathBuf,
    /// Enforce only bundles signed by one of `trusted_keys`: unsigned policies are
    /// refused, and so are bad signatures, unknown keys and older versions.
    #[serde(default)]
    pub require_signature: bool,
    /// Public keys (base64 Ed25519, as `ward policy keygen` writes them) whose
    /// bundles are accepted.
    #[serde(default)]
    pub trusted_keys: Vec<crate::distribution::TrustedKey>,
    /// HTTPS URL of the signed bundle, polled every `poll_interval` with ETags.
    pub policy_url: Option<String>,
    /// How often `policy_url` is polled.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: std::time::Duration,
    /// PEM file of the CA certificates trusted for `policy_url` and a
    /// `syslog+tls://` `event_sink` (instead of the web PKI roots).
    pub ca_file: Option<PathBuf>,
    /// Where the agent keeps state across restarts: the highest bundle version
    /// applied (anti-rollback).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Reload when the policy files change (watched with inotify; polled every 250 ms
    /// where they cannot be watched); `false`: only on SIGHUP, `ward reload` or
    /// `ward apply`.
    #[serde(default = "default_true")]
    pub watch_policy: bool,
    /// bpffs directory for pinned maps and links.
    #[serde(default = "default_pin_dir")]
    pub pin_dir: PathBuf,
    /// `enforce` (default) or `audit`: drop nothing, log would-be drops.
    #[serde(default)]
    pub mode: crate::policy::Mode,
    /// Which verdicts produce flow events.
    #[serde(default)]
    pub log_level: LogLevel,
    /// Earlier name of `[events] per_source`, still accepted (not both); moved there
    /// by [`AgentConfig::parse`], so always `None` afterwards.
    events_per_source: Option<u32>,
    /// `[events]`: flow events per source and in all.
    #[serde(default)]
    pub events: EventsConfig,
    /// `[limits]`: new tracked flows per source.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// File the JSON event lines go to (reopened on SIGUSR1); standard output when absent.
    pub event_log: Option<PathBuf>,
    /// A syslog collector (SIEM) every event is also sent to, RFC 5424 over TCP or TLS.
    pub event_sink: Option<SinkUrl>,
    /// This agent's name in what `event_sink` receives (`agent=` of the structured
    /// data); the host name when absent.
    pub agent_name: Option<String>,
    /// Address of the Prometheus endpoint; none when absent.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Path of the control socket (`ward status`, `ward flows`…).
    #[serde(default = "default_control_socket")]
    pub control_socket: PathBuf,
    /// Capacity of the connection table (default `CONNTRACK_CAPACITY`, 1,048,576); a
    /// full table evicts its least recently used connection.
    pub conntrack_entries: Option<std::num::NonZeroU32>,
    /// Automatic response to lateral movement.
    #[serde(default)]
    pub response: ResponseConfig,
    /// Management access no policy can remove, and the probe that confirms a policy.
    #[serde(default)]
    pub failsafe: FailsafeConfig,
    /// Emergency allows (`ward breakglass`).
    #[serde(default)]
    pub breakglass: BreakglassConfig,
}

/// `[breakglass]`: whether `ward breakglass` may open emergency allows, and for how long.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BreakglassConfig {
    /// `false`: every `ward breakglass` request is refused.
    pub enabled: bool,
    /// The longest `--for` accepted.
    #[serde(with = "humantime_serde")]
    pub max_duration: std::time::Duration,
}

impl Default for BreakglassConfig {
    fn default() -> Self {
        BreakglassConfig {
            enabled: true,
            max_duration: std::time::Duration::from_secs(8 * 3600),
        }
    }
}

/// `[response]`: when a source is quarantined, and what it may still reach.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// Quarantine sources that probe what they may not reach (else alert only).
    pub auto_quarantine: bool,
    /// Distinct destination addresses, or distinct destination ports, a source must be
    /// denied towards within `window` to be quarantined.
    pub threshold: u32,
    /// The detection window.
    #[serde(with = "humantime_serde")]
    pub window: std::time::Duration,
    /// How long an automatic quarantine lasts.
    #[serde(with = "humantime_serde")]
    pub duration: std::time::Duration,
    /// Hosts (CIDRs) or zones (names) that are alerted on but never quarantined.
    pub never_quarantine: Vec<String>,
    /// Automatic quarantines set at most in any minute; past it, alerts only.
    pub max_auto_quarantines: u32,
    /// Zones a quarantined host may still reach and be reached from (the policy
    /// still applies there).
    pub quarantine_allow: Vec<String>,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        ResponseConfig {
            auto_quarantine: true,
            threshold: 10,
            window: std::time::Duration::from_secs(5),
            duration: std::time::Duration::from_secs(3600),
            never_quarantine: Vec::new(),
            max_auto_quarantines: 10,
            quarantine_allow: Vec::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_pin_dir() -> PathBuf {
    PathBuf::from(DEFAULT_PIN_DIR)
}

fn default_control_socket() -> PathBuf {
    PathBuf::from(DEFAULT_CONTROL_SOCKET)
}

fn default_poll_interval() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The file has several structural errors (unknown keys, wrong types): each one.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
}

impl AgentConfig {
    /// What this configuration adds to the policy's decision on a flow (agent-wide
    /// mode, failsafe), as `ward explain` applies it.
    pub fn enforcement(&self) -> crate::policy::Enforcement {
        crate::policy::Enforcement {
            audit: self.mode == crate::policy::Mode::Audit,
            management: self.failsafe.management.clone(),
            failsafe_ports: self.failsafe.tcp_ports.clone(),
            live: Default::default(),
        }
    }

    /// Reads and validates a configuration file; relative paths (`policy`, `state_dir`,
    /// `ca_file`) are taken relative to it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses configuration text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let invalid = |offset: usize, message: String| {
            let (line, column) = line_column(text, offset);
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                message,
            }
        };
        let mut structural: Vec<ConfigError> = structure::errors::<AgentConfig>(text)
            .into_iter()
            .map(|(offset, message)| invalid(offset, message))
            .collect();
        match structural.len() {
            0 => {}
            1 => return Err(structural.remove(0)),
            _ => return Err(ConfigError::Several(structural)),
        }
        let mut config: AgentConfig = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            invalid(offset, e.message().to_owned())
        })?;
        if config.interfaces.is_empty() {
            let offset = key_offset(text, "interfaces");
            return Err(invalid(offset, "`interfaces` lists no interface".into()));
        }
        if let Some(dir) = path.parent() {
            let paths = [Some(&mut config.policy), Some(&mut config.state_dir)];
            for p in paths.into_iter().chain([config.ca_file.as_mut()]).flatten() {
                if p.is_relative() && !p.as_os_str().is_empty() {
                    *p = dir.join(&*p);
                }
            }
        }
        config
            .check_distribution()
            .map_err(|(key, message)| invalid(key_offset(text, key), message))?;
        config
            .limits
            .check()
            .map_err(|(key, message)| invalid(table_key_offset(text, "limits", key), message))?;
        config
            .events
            .check()
            .map_err(|(key, message)| invalid(table_key_offset(text, "events", key), message))?;
        if let Some(name) = &config.agent_name {
            if name.is_empty() || name.chars().any(char::is_control) {
                let why = "`agent_name` must be a non-empty name without control characters";
                return Err(invalid(key_offset(text, "agent_name"), why.into()));
            }
        }
        if let Some(per_source) = config.events_per_source.take() {
            if config.events.per_source.is_some() {
                let why = "`events_per_source` is the earlier name of `[events] per_source`: \
                           set only one";
                return Err(invalid(key_offset(text, "events_per_source"), why.into()));
            }
            config.events.per_source = Some(per_source);
        }
        Ok(config)
    }

    /// Checks the policy source and signature keys together; on error, the key to
    /// point at and why. Fills in the default `policy` of `policy_url`.
    fn check_distribution(&mut self) -> Result<(), (&'static str, String)> {
        if self.require_signature && self.trusted_keys.is_empty() {
            let why =
                "`require_signature = true` needs `trusted_keys`: no bundle could be verified";
            return Err(("require_signature", why.into()));
        }
        let Some(url) = &self.policy_url else {
            if self.policy.as_os_str().is_empty() {
                return Err(("policy", "`policy` (or `policy_url`) is required".into()));
            }
            return Ok(());
        };
        if !url.starts_with("https://") {
            return Err(("policy_url", format!("`{url}` is not an https:// URL")));
        }
        if self.trusted_keys.is_empty() {
            let why =
                "`policy_url` serves signed bundles: `trusted_keys` must list the signer's key";
            return Err(("policy_url", why.into()));
        }
        if self.poll_interval.is_zero() {
            return Err(("poll_interval", "must be longer than 0".into()));
        }
        if self.policy.as_os_str().is_empty() {
            self.policy = self.state_dir.join(crate::distribution::BUNDLE_FILE);
        } else if !self.policy.is_dir() && self.policy.extension().is_none_or(|e| e != "bundle") {
            let why = "with `policy_url`, `policy` is where the fetched bundle is kept: a \
                       `*.bundle` file or a directory";
            return Err(("policy", why.into()));
        }
        Ok(())
    }
}

/// Byte offset of the top-level `key` as the TOML parser places it (0 when the text
/// does not set it): never inside a comment or a string.
fn key_offset(text: &str, key: &str) -> usize {
    toml_edit::ImDocument::parse(text)
        .ok()
        .and_then(|doc| doc.as_table().key(key).and_then(toml_edit::Key::span))
        .map_or(0, |span| span.start)
}

/// Byte offset of `key` in the table `[table]` (0 when the text does not set it).
fn table_key_offset(text: &str, table: &str, key: &str) -> usize {
    toml_edit::ImDocument::parse(text)
        .ok()
        .and_then(|doc| {
            let table = doc.as_table().get(table)?.as_table()?;
            table.key(key).and_then(toml_edit::Key::span)
        })
        .map_or(0, |span| span.start)
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests;
