//! Break-glass: an emergency allow of one service between two zones on one host,
//! granted by a named person for a stated reason, that ends by itself. The kernel
//! honours its expiry (agent or no agent); the agent removes it then and reports both
//! ends as `alert` events.
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use ward_common::{BREAKGLASS_GRANTS, BREAKGLASS_NAME_LEN, BREAKGLASS_REASON_LEN};

use crate::{
    config::BreakglassConfig,
    policy::{catalogue, Policy, Protocol, Service},
};

/// A break-glass grant in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Its number (0–15), unique among the grants in force.
    pub id: u32,
    /// Initiator zone.
    pub from: String,
    /// Responder zone.
    pub to: String,
    /// The service as asked: a catalogue name (`https`), `tcp/PORT`, `udp/PORT` or `icmp`.
    pub service: String,
    /// Why.
    pub reason: String,
    /// Who asked.
    pub by: String,
    /// When it was granted.
    #[serde(with = "humantime_serde")]
    pub since: SystemTime,
    /// When it ends.
    #[serde(with = "humantime_serde")]
    pub expires: SystemTime,
    /// CLOCK_MONOTONIC expiry in ns, the one the kernel honours.
    #[serde(skip)]
    pub expires_ns: u64,
    /// Put in force by the break-glass list of a signed bundle; `None` for a local one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetMark>,
}

/// Where a fleet grant came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetMark {
    /// The version of the signed bundle that put it in force.
    pub version: u64,
    /// Who asked for it (`author` in `breakglass.toml`); empty when the agent does not
    /// hold the list that set it.
    pub author: String,
}

impl Grant {
    /// The (`proto::*`, destination port) pairs it allows (port 0 for ICMP).
    pub fn ports(&self) -> Vec<(u8, u16)> {
        service_ports(&self.service).unwrap_or_default()
    }

    /// `fleet` or `local`: where the grant was started.
    pub fn source(&self) -> &'static str {
        match self.fleet {
            Some(_) => "fleet",
            None => "local",
        }
    }

    /// `grant 3: imaging -> billing https`.
    pub fn summary(&self) -> String {
        format!(
            "grant {}: {} -> {} {}",
            self.id, self.from, self.to, self.service
        )
    }
}

/// What `ward breakglass` asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRequest {
    /// Initiator zone.
    pub from: String,
    /// Responder zone.
    pub to: String,
    /// A catalogue name, `tcp/PORT`, `udp/PORT` or `icmp`.
    pub service: String,
    /// For how long, in seconds.
    pub for_secs: u64,
    /// Why (required).
    pub reason: String,
    /// Who asks, as they name themselves (`SUDO_USER`, `LOGNAME`); the agent adds the uid.
    pub operator: String,
}

/// Why a break-glass request was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BreakglassError {
    /// `[breakglass] enabled = false`.
    #[error("break-glass is disabled on this host (`[breakglass] enabled = false`)")]
    Disabled,
    /// `--for` is zero or longer than allowed.
    #[error("--for must be longer than 0 and at most {max} (`[breakglass] max_duration`)")]
    Duration {
        /// The configured maximum, human-readable.
        max: String,
    },
    /// No reason, or one too long to keep.
    #[error("--reason is required and at most {BREAKGLASS_REASON_LEN} bytes")]
    Reason,
    /// The operator name is too long to keep.
    #[error("the operator name is at most {BREAKGLASS_NAME_LEN} bytes")]
    Operator,
    /// A zone the policy in force does not have.
    #[error("no zone `{0}` in the policy in force")]
    UnknownZone(String),
    /// A service that is neither catalogued nor `tcp/PORT`, `udp/PORT`, `icmp`.
    #[error("unknown service `{0}`{1}: use a name of `ward policy services`, tcp/PORT, udp/PORT or icmp")]
    UnknownService(String, String),
    /// The policy already allows all of it.
    #[error("the policy already allows {0}: no break-glass needed")]
    AlreadyAllowed(String),
    /// The same grant is in force.
    #[error("{0} already allows this")]
    Duplicate(String),
    /// Every grant number is in use.
    #[error(
        "{BREAKGLASS_GRANTS} grants are in force already; end one with `ward breakglass --end ID`"
    )]
    Full,
    /// `--end` of a grant that is not in force.
    #[error("no break-glass grant {0} is in force")]
    NoSuchGrant(u32),
    /// `--end` of a grant of the fleet list.
    #[error("grant {id} is a fleet grant of signed bundle version {version}: only a newer bundle without it, or its expiry, ends it")]
    FleetGrant {
        /// The grant.
        id: u32,
        /// The bundle that put it in force.
        version: u64,
    },
}

/// The (`proto::*`, port) pairs of `service`: a catalogue name, `tcp/PORT`, `udp/PORT`
/// or `icmp`.
pub fn service_ports(service: &str) -> Result<Vec<(u8, u16)>, BreakglassError> {
    if let Some(known) = catalogue::lookup(service) {
        let ports = |protocol: Protocol| {
            known
                .ports(protocol)
                .iter()
                .map(move |&p| (protocol.code(), p))
        };
        return Ok(Protocol::ALL.into_iter().flat_map(ports).collect());
    }
    match service.parse::<Service>() {
        Ok(s) => Ok(vec![s.proto_port()]),
        Err(_) => {
            let hint = catalogue::suggest(service)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            Err(BreakglassError::UnknownService(service.to_owned(), hint))
        }
    }
}

/// Checks `request` against the configuration, the policy in force and the grants in
/// force, and makes it a grant (`by` names the requester) starting now.
pub fn grant(
    request: &GrantRequest,
    by: String,
    config: &BreakglassConfig,
    policy: &Policy,
    in_force: &[Grant],
) -> Result<Grant, BreakglassError> {
    if !config.enabled {
        return Err(BreakglassError::Disabled);
    }
    let duration = Duration::from_secs(request.for_secs);
    if duration.is_zero() || duration > config.max_duration {
        let max = humantime::format_duration(config.max_duration).to_string();
        return Err(BreakglassError::Duration { max });
    }
    let reason = request.reason.trim();
    if reason.is_empty() || reason.len() > BREAKGLASS_REASON_LEN {
        return Err(BreakglassError::Reason);
    }
    if by.len() > BREAKGLASS_NAME_LEN {
        return Err(BreakglassError::Operator);
    }
    let zone = |name: &str| {
        policy
            .zone_id(name)
            .ok_or_else(|| BreakglassError::UnknownZone(name.to_owned()))
    };
    let (src, dst) = (zone(&request.from)?, zone(&request.to)?);
    let ports = service_ports(&request.service)?;
    if ports
        .iter()
        .all(|&(p, port)| policy.first_rule(src, dst, p, port).is_some())
    {
        let what = format!("{} -> {} {}", request.from, request.to, request.service);
        return Err(BreakglassError::AlreadyAllowed(what));
    }
    if let Some(same) = in_force
        .iter()
        .find(|g| g.from == request.from && g.to == request.to && g.service == request.service)
    {
        return Err(BreakglassError::Duplicate(same.summary()));
    }
    let id = (0..BREAKGLASS_GRANTS)
        .find(|id| in_force.iter().all(|g| g.id != *id))
        .ok_or(BreakglassError::Full)?;
    // Whole seconds, as the pinned map keeps them.
    let since =
        SystemTime::UNIX_EPOCH + Duration::from_secs(crate::clock::unix_seconds(SystemTime::now()));
    Ok(Grant {
        id,
        from: request.from.clone(),
        to: request.to.clone(),
        service: request.service.clone(),
        reason: reason.to_owned(),
        by,
        since,
        expires: since + duration,
        expires_ns: crate::clock::monotonic_now()
            .saturating_add(duration)
            .as_nanos() as u64,
        fleet: None,
    })
}

#[cfg(test)]
mod tests;
