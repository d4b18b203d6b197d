//! The preflight's verdicts: which established sessions to a management port a new
//! policy cuts, under the agent's failsafe and mode, named exactly.
use std::path::Path;

use super::{check, cuts, PreflightError, Session};
use crate::{config::AgentConfig, policy::Policy};

/// Admins reach every host over SSH; the host is 198.18.24.1 (zone `admin`).
const ALLOWS: &str = "[zones.admin]\ncidrs = [\"198.18.24.0/24\", \"2001:db8:24::/64\"]\n\
    [zones.ops]\ncidrs = [\"198.18.30.0/24\"]\n\
    [[allow]]\nfrom = [\"admin\", \"ops\"]\nto = \"any\"\ntcp = [22]\n";
/// The same zones, SSH from `ops` only.
const CUTS_ADMIN: &str = "[zones.admin]\ncidrs = [\"198.18.24.0/24\", \"2001:db8:24::/64\"]\n\
    [zones.ops]\ncidrs = [\"198.18.30.0/24\"]\n\
    [[allow]]\nfrom = \"ops\"\nto = \"any\"\ntcp = [22]\n";

fn policy(text: &str) -> Policy {
    crate::policy::load_texts(&[("p.toml", text)])
        .expect("valid policy")
        .policy
}

fn config(extra: &str) -> AgentConfig {
    let text = format!("role = \"host\"\ninterfaces = [\"eth0\"]\npolicy = \"p\"\n{extra}");
    AgentConfig::parse(Path::new("agent.toml"), &text).expect("valid config")
}

fn session(remote: &str, local: &str) -> Session {
    Session {
        remote: remote.parse().expect("remote"),
        local: local.parse().expect("local"),
    }
}

/// The sessions of the tests: SSH from admin (v4 twice, v6), from ops, from loopback,
/// and an admin session to port 8080 (no management port).
fn sessions() -> Vec<Session> {
    vec![
        session("198.18.24.10:50001", "198.18.24.1:22"),
        session("198.18.24.10:50002", "198.18.24.1:22"),
        session("[2001:db8:24::10]:50003", "[2001:db8:24::1]:22"),
        session("198.18.30.7:50004", "198.18.24.1:22"),
        session("127.0.0.1:50005", "127.0.0.1:22"),
        session("198.18.24.10:50006", "198.18.24.1:8080"),
    ]
}

fn named(config: &AgentConfig, new: &str, current: Option<&str>) -> Vec<String> {
    let current = current.map(policy);
    let found = cuts(
        &policy(new),
        current.as_ref(),
        &config.enforcement(),
        &config.failsafe.tcp_ports,
        &sessions(),
    );
    found.iter().map(ToString::to_string).collect()
}

#[test]
fn a_policy_that_drops_the_admins_ssh_cuts_each_of_their_sessions_once() {
    assert_eq!(
        named(&config(""), CUTS_ADMIN, None),
        [
            "198.18.24.10 → 198.18.24.1:22 (deny admin -> admin tcp/22: no rule allows it)",
            "2001:db8:24::10 → [2001:db8:24::1]:22 (deny admin -> admin tcp/22: no rule allows it)",
        ]
    );
    assert!(named(&config(""), ALLOWS, None).is_empty());
}

#[test]
fn the_failsafe_and_audit_mode_keep_the_sessions() {
    let failsafe = "[failsafe]\nmanagement = [\"198.18.24.0/24\"]\n";
    assert_eq!(
        named(&config(failsafe), CUTS_ADMIN, None),
        ["2001:db8:24::10 → [2001:db8:24::1]:22 (deny admin -> admin tcp/22: no rule allows it)"],
        "the IPv4 management prefix covers only the IPv4 session"
    );
    assert!(named(&config("mode = \"audit\"\n"), CUTS_ADMIN, None).is_empty());
}

#[test]
fn only_the_configured_management_ports_are_looked_at() {
    let ports = "[failsafe]\ntcp_ports = [8080]\n";
    assert_eq!(
        named(&config(ports), CUTS_ADMIN, None),
        ["198.18.24.10 → 198.18.24.1:8080 (deny admin -> admin tcp/8080: no rule allows it)"]
    );
}

#[test]
fn a_session_the_policy_in_force_already_cut_is_not_counted() {
    assert!(named(&config(""), CUTS_ADMIN, Some(CUTS_ADMIN)).is_empty());
    assert_eq!(named(&config(""), CUTS_ADMIN, Some(ALLOWS)).len(), 2);
}

#[test]
fn the_refusal_names_every_session() {
    let e = PreflightError::WouldCut(cuts(
        &policy(CUTS_ADMIN),
        None,
        &config("").enforcement(),
        &[22],
        &sessions()[..1],
    ));
    assert_eq!(
        e.to_string(),
        "the new policy would cut 1 established session to a management port: \
         198.18.24.10 → 198.18.24.1:22 (deny admin -> admin tcp/22: no rule allows it)"
    );
}

#[test]
fn the_socket_table_of_this_namespace_is_read() {
    // Whatever this host's sessions are, none is to a port no one listens on.
    let config = config("[failsafe]\ntcp_ports = [9]\n");
    let read = super::established();
    assert!(read.is_ok(), "this namespace's socket tables: {read:?}");
    check(&policy(CUTS_ADMIN), None, &config, read).expect("nothing to cut on the discard port");
}

#[test]
fn a_socket_table_that_cannot_be_read_refuses() {
    let unread = Err(PreflightError::Read {
        path: "/proc/net/tcp".into(),
        source: std::io::ErrorKind::PermissionDenied.into(),
    });
    let e = check(&policy(ALLOWS), None, &config(""), unread).unwrap_err();
    assert!(matches!(e, PreflightError::Read { .. }), "{e}");
}
