//! The decision on a new flow in the kernel's order (`docs/dataplane.md`), for
//! `ward explain` and policy tests: failsafe (10), quarantine (9), rules (7),
//! break-glass (11), then audit (a zone's or the agent's mode turns a deny into
//! `audit`, which passes; never a quarantine's). Quarantines and grants are only known
//! to the running agent ([`LiveState`], empty offline); the flow budget and
//! anti-spoofing of the live addresses are not part of the decision.
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use ward_common::Verdict;

use super::catalogue;
use super::endpoint::{same_family, Endpoint};
use super::live::LiveState;
use super::{ExplainError, Origin, Policy, Service};

/// What the agent configuration adds to the policy's decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Enforcement {
    /// The agent-wide `mode = "audit"`: nothing is dropped.
    pub audit: bool,
    /// `[failsafe] management`: prefixes that may always reach `failsafe_ports`.
    pub management: Vec<IpNet>,
    /// `[failsafe] tcp_ports`.
    pub failsafe_ports: Vec<u16>,
    /// The running agent's quarantines and grants (`ward explain --live`).
    pub live: LiveState,
}

/// What decided a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The failsafe: the source is in this management prefix, the port a failsafe port.
    Failsafe(IpNet),
    /// This end is quarantined (and the other end not in a `quarantine_allow` zone);
    /// the reason it was quarantined.
    Quarantined(IpAddr, String),
    /// The first rule allowing the flow: its id and where it is written.
    Rule(u32, Origin),
    /// No rule allows the flow but this break-glass grant (its number, its end).
    Breakglass(u32, std::time::SystemTime),
    /// No rule allows the flow.
    NoRule,
}

/// Why a flow no rule allows passes anyway, as `audit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditedBy {
    /// The agent-wide `mode = "audit"`.
    Agent,
    /// A zone of the flow in `mode = "audit"` (its name).
    Zone(String),
}

/// The verdict on a new flow, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// `allow`, `deny`, or `audit` (passes, logged).
    pub verdict: Verdict,
    /// Source zone name.
    pub src_zone: String,
    /// Destination zone name.
    pub dst_zone: String,
    /// The service judged.
    pub service: Service,
    /// What decided it.
    pub cause: Cause,
    /// Set when the verdict is `audit`.
    pub audited_by: Option<AuditedBy>,
}

impl Decision {
    /// Whether the flow passes (`allow` or `audit`).
    pub fn passes(&self) -> bool {
        self.verdict != Verdict::Deny
    }
}

/// `allow a -> b tcp/104 by rule #0 at file:12`, `deny a -> b tcp/443: no rule allows
/// it`, `audit a -> b tcp/443: no rule allows it; passes, logged: zone b is in audit
/// mode`, `allow a -> b tcp/22 by the failsafe (management prefix 10.0.0.0/8)`,
/// `deny a -> b tcp/22: 10.0.0.5 is quarantined (scan)`, `allow a -> b tcp/22 by
/// break-glass grant 0 (until 2026-12-07T02:00:00Z)`.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (v, s, d) = (self.verdict.name(), &self.src_zone, &self.dst_zone);
        write!(f, "{v} {s} -> {d} {}", self.service)?;
        match &self.cause {
            Cause::Failsafe(net) => write!(f, " by the failsafe (management prefix {net})")?,
            Cause::Quarantined(ip, why) => write!(f, ": {ip} is quarantined ({why})")?,
            Cause::Rule(id, origin) => write!(f, " by rule #{id} at {origin}")?,
            Cause::Breakglass(id, until) => write!(
                f,
                " by break-glass grant {id} (until {})",
                humantime::format_rfc3339_seconds(*until)
            )?,
            Cause::NoRule => f.write_str(": no rule allows it")?,
        }
        match &self.audited_by {
            None => Ok(()),
            Some(AuditedBy::Agent) => f.write_str("; passes, logged: the agent is in audit mode"),
            Some(AuditedBy::Zone(z)) => {
                write!(f, "; passes, logged: zone {z} is in audit mode")
            }
        }
    }
}

/// The services `text` names: `tcp/PORT`, `udp/PORT`, `icmp`, or a catalogue name
/// (`dicom`: each of its ports).
pub fn services(text: &str) -> Result<Vec<Service>, ExplainError> {
    let text = text.trim();
    if text.contains('/') || text.parse::<Service>().is_ok() {
        return Ok(vec![text.parse()?]);
    }
    let Some(known) = catalogue::lookup(text) else {
        let hint = catalogue::suggest(text)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return Err(ExplainError::UnknownService(text.to_owned(), hint));
    };
    let tcp = known.tcp.iter().map(|&p| Service::Tcp(p));
    Ok(tcp
        .chain(known.udp.iter().map(|&p| Service::Udp(p)))
        .collect())
}

impl Policy {
    /// Decides the flow from `src` to `dst` for each port of `service` (a text of
    /// [`services`]): what `ward explain` prints, offline or live.
    pub fn decide_all(
        &self,
        src: &str,
        dst: &str,
        service: &str,
        enforcement: &Enforcement,
    ) -> Result<Vec<Decision>, ExplainError> {
        services(service)?
            .into_iter()
            .map(|s| self.decide(src, dst, s, enforcement))
            .collect()
    }

    /// Decides a new flow from `src` to `dst` (addresses, prefixes or zone names, see
    /// [`Policy::endpoint`]) for `service`, under `enforcement`.
    pub fn decide(
        &self,
        src: &str,
        dst: &str,
        service: Service,
        enforcement: &Enforcement,
    ) -> Result<Decision, ExplainError> {
        let (s, d) = (self.endpoint(src)?, self.endpoint(dst)?);
        same_family(&s, &d, (src, dst))?;
        let cause = self.cause(&s, &d, service, enforcement);
        let zone_audited = [s.zone, d.zone]
            .into_iter()
            .filter_map(|id| id.checked_sub(1))
            .find(|&i| self.zones[i as usize].audit);
        let audited_by = match cause {
            Cause::NoRule if enforcement.audit => Some(AuditedBy::Agent),
            Cause::NoRule => {
                zone_audited.map(|i| AuditedBy::Zone(self.zones[i as usize].name.clone()))
            }
            _ => None,
        };
        let verdict = match (&cause, &audited_by) {
            (Cause::Quarantined(..), _) | (Cause::NoRule, None) => Verdict::Deny,
            (Cause::NoRule, Some(_)) => Verdict::Audit,
            _ => Verdict::Allow,
        };
        Ok(Decision {
            verdict,
            src_zone: self.zone_name(s.zone).to_owned(),
            dst_zone: self.zone_name(d.zone).to_owned(),
            service,
            cause,
            audited_by,
        })
    }

    /// The failsafe, else a quarantine, else the first rule, else a grant, else nothing.
    fn cause(&self, s: &Endpoint, d: &Endpoint, service: Service, e: &Enforcement) -> Cause {
        if let Service::Tcp(port) = service {
            let management = e
                .management
                .iter()
                .find(|&&m| self.within(s, std::slice::from_ref(&m)));
            if let Some(&net) = management.filter(|_| e.failsafe_ports.contains(&port)) {
                return Cause::Failsafe(net);
            }
        }
        if let Some(q) = e.live.quarantine(self, s, d) {
            return Cause::Quarantined(q.ip, q.reason.clone());
        }
        let (proto, port) = service.proto_port();
        if let Some(id) = self.first_rule(s.zone, d.zone, proto, port) {
            return Cause::Rule(id, self.rules[id as usize].origin.clone());
        }
        match e.live.grant(self, s.zone, d.zone, service) {
            Some(g) => Cause::Breakglass(g.id, g.expires),
            None => Cause::NoRule,
        }
    }
}
