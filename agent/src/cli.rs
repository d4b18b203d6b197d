//! The `ward` command line: its commands, their arguments and their help, as clap
//! reads them (`main.rs` runs them).
use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use ward::control::FlowVerdict;

/// Ward: zone allow-lists enforced in the kernel (XDP ingress, TC egress).
#[derive(Parser)]
#[command(name = "ward", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Write the man pages and shell completions into a directory (the Debian package's).
    #[command(hide = true)]
    GenerateAssets {
        /// Output directory: `man/` and `completions/` are created in it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Validate zone policy files or directories, or a signed bundle (exit 0 valid, 1
    /// invalid).
    Check {
        /// Policy files or directories of `*.toml` files, merged into one policy; or one
        /// signed bundle (`*.bundle`, or a directory holding `policy.bundle`).
        #[arg(required_unless_present = "config")]
        paths: Vec<PathBuf>,
        /// Verify the bundle's signature with this trusted public key first: its base64
        /// line or a file holding it (repeatable).
        #[arg(long = "trusted-key", value_name = "KEY")]
        trusted_keys: Vec<String>,
        /// Validate this agent configuration too (parsed only: no root needed,
        /// nothing started).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Warnings fail the check too (exit 1).
        #[arg(long)]
        strict: bool,
        /// `text` (diagnostics on stderr, a summary on stdout) or `json` (one document
        /// on stdout, described in docs/policy-review.md).
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
    },
    /// Explain the verdict on a new flow in the kernel's order (failsafe, quarantine,
    /// rules, break-glass, audit): prints `allow`, `deny` or `audit` first, then why;
    /// one line per port of a named service. Exit 0 passes (allow, audit), 1 denied,
    /// 2 bad input.
    #[command(group = clap::ArgGroup::new("source").required(true).args(["policy", "config", "live"]).multiple(true))]
    Explain {
        /// Policy file or directory, or a signed bundle (default: the `policy` of
        /// `--config`).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Agent configuration: its `mode` and `[failsafe]` apply too.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Verify a signed bundle policy with this trusted public key first: its base64
        /// line or a file holding it (repeatable).
        #[arg(long = "trusted-key", value_name = "KEY", conflicts_with = "live")]
        trusted_keys: Vec<String>,
        /// Ask the running agent: its policy in force, configuration, quarantines and
        /// break-glass grants decide.
        #[arg(long, conflicts_with_all = ["policy", "config"])]
        live: bool,
        #[command(flatten)]
        socket: Socket,
        /// Source: an address, a CIDR prefix or a zone name (`world` included).
        from: String,
        /// Destination: an address, a CIDR prefix or a zone name.
        to: String,
        /// `tcp/PORT`, `udp/PORT`, `icmp` or a name of `ward policy services`.
        service: String,
    },
    /// The fleet as the Prometheus that scrapes the agents sees it.
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// Policy tools: review a change, list named services, sign and verify bundles.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Run the agent: enforce the policy on the configured interfaces. Enforcement
    /// outlives the agent (crash, SIGTERM, upgrade): only `ward uninstall` removes it.
    Run {
        /// Agent configuration file.
        #[arg(long, default_value = "/etc/ward/agent.toml")]
        config: PathBuf,
        /// Detach from the interfaces when stopped (SIGTERM, SIGINT): traffic is then
        /// no longer filtered.
        #[arg(long)]
        detach_on_exit: bool,
        /// Replace pinned maps an earlier build left with another layout (refused
        /// otherwise); what they held starts afresh, enforcement has no gap.
        #[arg(long)]
        reset_state: bool,
        /// Put the policy in force even if it would cut an established session to a
        /// management port (the lock-out preflight refuses the start otherwise).
        #[arg(long)]
        force_policy: bool,
    },
    /// Remove enforcement: detach from every interface and delete the pinned maps.
    /// Refused while the agent runs (stop it first).
    Uninstall {
        /// Agent configuration file.
        #[arg(long, default_value = "/etc/ward/agent.toml")]
        config: PathBuf,
    },
    /// Show the running agent: role, mode, hooks, policy in force, counters.
    Status {
        #[command(flatten)]
        socket: Socket,
        /// Print the daemon's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Follow flow events live (filtered by the daemon); with `--since`, the event
    /// log's history first. Filters combine: an event must match all of them.
    Flows {
        #[command(flatten)]
        socket: Socket,
        /// Only events with this verdict.
        #[arg(long, value_enum)]
        verdict: Option<FlowVerdict>,
        /// Only events whose source or destination is in this zone of the policy in
        /// force (another name is an error, exit 2).
        #[arg(long)]
        zone: Option<String>,
        /// Only events whose source or destination address is this address or in this
        /// CIDR prefix.
        #[arg(long, value_name = "ADDR_OR_CIDR", value_parser = ward::control::parse_addr)]
        addr: Option<ipnet::IpNet>,
        /// Only events whose source or destination port is this one.
        #[arg(long)]
        port: Option<u16>,
        /// First print the event log's matching records of this last stretch (`10m`,
        /// `2h`…), then follow live.
        #[arg(long, value_name = "DURATION", value_parser = interval)]
        since: Option<Duration>,
        /// With `--since`: print the history and exit instead of following live.
        #[arg(long, requires = "since")]
        no_follow: bool,
        /// Print the JSON records instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Packets per second by zone pair and verdict, most denied first.
    Top {
        #[command(flatten)]
        socket: Socket,
        /// Time between samples (`1s`, `500ms`…).
        #[arg(long, default_value = "1s", value_parser = interval)]
        interval: Duration,
        /// Print one table (two samples one interval apart) and exit.
        #[arg(long)]
        once: bool,
    },
    /// Reload the policy now (exit 0 when the policy on disk is in force, 1 when refused).
    Reload {
        #[command(flatten)]
        socket: Socket,
        /// Put it in force even if it would cut an established session to a
        /// management port (the lock-out preflight refuses it otherwise).
        #[arg(long)]
        force: bool,
    },
    /// Apply the policy on disk now, commit-confirmed: it is rolled back unless
    /// `ward confirm` (or the configured confirm probe) arrives within the window. A
    /// policy on disk already in force without confirmation is put under it.
    Apply {
        #[command(flatten)]
        socket: Socket,
        /// The confirmation window, e.g. `60s` or `5m`.
        #[arg(long, value_parser = interval)]
        confirm_within: Duration,
        /// Put it in force even if it would cut an established session to a
        /// management port (the lock-out preflight refuses it otherwise).
        #[arg(long)]
        force: bool,
    },
    /// Confirm the policy applied with `ward apply --confirm-within`.
    Confirm {
        #[command(flatten)]
        socket: Socket,
    },
    /// Quarantine a host (it may then only talk with `[response] quarantine_allow`
    /// zones), or list the quarantined hosts with `--list`.
    #[command(group = clap::ArgGroup::new("what").required(true).args(["ip", "list"]))]
    Quarantine {
        #[command(flatten)]
        socket: Socket,
        /// Host to quarantine.
        #[arg(requires = "reason")]
        ip: Option<String>,
        /// How long, e.g. `2h` or `30m`; until released when absent.
        #[arg(long, value_parser = interval, requires = "ip")]
        ttl: Option<Duration>,
        /// Why (kept with the quarantine and in the alert).
        #[arg(long, requires = "ip")]
        reason: Option<String>,
        /// List the quarantined hosts instead.
        #[arg(long, conflicts_with_all = ["ip", "ttl", "reason"])]
        list: bool,
    },
    /// Break-glass: allow one service from one zone to another on this host for a
    /// while (at most `[breakglass] max_duration`), for a stated reason; the kernel
    /// ends it when its time is up. Or list the grants in force, or end one early.
    #[command(group = clap::ArgGroup::new("what").required(true).args(["from", "list", "end"]))]
    Breakglass {
        #[command(flatten)]
        socket: Socket,
        /// Initiator zone.
        #[arg(long, requires_all = ["to", "service", "duration", "reason"])]
        from: Option<String>,
        /// Responder zone.
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// A name of `ward policy services`, `tcp/PORT`, `udp/PORT` or `icmp`.
        #[arg(long, requires = "from")]
        service: Option<String>,
        /// How long, e.g. `2h` or `30m`.
        #[arg(long = "for", value_name = "DURATION", value_parser = interval, requires = "from")]
        duration: Option<Duration>,
        /// Why (kept with the grant and in both alerts), e.g. an incident number.
        #[arg(long, requires = "from")]
        reason: Option<String>,
        /// List the grants in force instead.
        #[arg(long, conflicts_with_all = ["from", "end"])]
        list: bool,
        /// End grant ID now instead.
        #[arg(long, value_name = "ID", conflicts_with = "from")]
        end: Option<u32>,
    },
    /// End a host's quarantine.
    Release {
        #[command(flatten)]
        socket: Socket,
        /// The quarantined host.
        ip: String,
    },
}

/// `ward policy …`: the network team's tools (review, signed distribution).
#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Make an Ed25519 key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (the
    /// line agents list in `trusted_keys`).
    Keygen {
        /// Where the two files go.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
    /// Sign the `*.toml` files of DIR (a valid policy, and valid fleet lists when
    /// `quarantine.toml` or `breakglass.toml` is one of them) into a bundle.
    Sign {
        /// The secret key file (`ward policy keygen`).
        #[arg(long)]
        key: PathBuf,
        /// A policy test file (`ward policy test`) the policy must pass, or nothing is
        /// signed.
        #[arg(long, value_name = "TESTS")]
        tests: Option<PathBuf>,
        /// The bundle's version; default: the version of the bundle at OUTPUT plus one.
        #[arg(long)]
        version: Option<u64>,
        /// Warnings (printed either way) refuse the signature too.
        #[arg(long)]
        strict: bool,
        /// Directory of the policy files.
        dir: PathBuf,
        /// The bundle file to write.
        #[arg(short, long, value_name = "OUTPUT")]
        output: PathBuf,
    },
    /// Verify a bundle's signature and the policy in it (exit 0 valid, 1 not).
    Verify {
        /// A trusted public key: its base64 line or a file holding it (repeatable).
        #[arg(long = "trusted-key", value_name = "KEY", required = true)]
        trusted_keys: Vec<String>,
        /// The bundle file.
        bundle: PathBuf,
    },
    /// What a policy change newly allows and denies, per zone pair and service, and
    /// which prefixes change zone (exit 0 no difference, 1 differences, 2 invalid input).
    Diff {
        /// The policy before the change: a file or a directory of `*.toml` files, or a
        /// signed bundle.
        old: PathBuf,
        /// The policy after the change.
        new: PathBuf,
        /// Verify signed bundles with this trusted public key first: its base64 line or a
        /// file holding it (repeatable).
        #[arg(long = "trusted-key", value_name = "KEY")]
        trusted_keys: Vec<String>,
        /// Print JSON (shape in docs/policy-review.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check a policy against a test file of flows it must allow or deny, printing the
    /// rule behind each verdict (exit 0 all pass, 1 a test fails, 2 invalid input).
    Test {
        /// The policy: a file or a directory of `*.toml` files.
        policy: PathBuf,
        /// The test file: `[[test]]` tables with `from`, `to`, `service` and
        /// `expect = "allow" | "deny"`.
        tests: PathBuf,
    },
    /// List the named services rules may use in `services = [...]`.
    Services {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `ward fleet …`: the agents seen through Prometheus.
#[derive(Subcommand)]
pub(crate) enum FleetCommand {
    /// Per agent: role, mode, bundle version, enforcing or not, quarantines, faults
    /// (exit 0 all up, enforcing and on one bundle version; 1 not; 2 Prometheus
    /// cannot be asked).
    Status {
        /// Base URL of the Prometheus that scrapes the agents (its HTTP API), e.g.
        /// `http://prometheus:9090`.
        #[arg(long, value_name = "URL")]
        prometheus: String,
        /// The scrape job of the agents.
        #[arg(long, default_value = "ward")]
        job: String,
    },
}

/// Output of `ward check`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CheckFormat {
    /// Diagnostics with their offending lines on stderr, a summary on stdout.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Where the daemon's control socket is.
#[derive(Args)]
pub(crate) struct Socket {
    /// Control socket of the running agent.
    #[arg(
        long = "socket",
        value_name = "PATH",
        default_value = ward::config::DEFAULT_CONTROL_SOCKET
    )]
    pub(crate) path: PathBuf,
}

/// A positive duration such as `1s` or `500ms`.
pub(crate) fn interval(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("the interval must be longer than 0".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}
