//! What only the running agent knows and `ward explain --live` adds to the decision:
//! its quarantine table (step 9 of `docs/dataplane.md`) and its break-glass grants
//! (step 11), as the kernel applies them.
use std::net::IpAddr;
use std::time::SystemTime;

use super::endpoint::{Endpoint, Named};
use super::{Policy, Service};

/// The running agent's quarantines and grants (empty offline).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveState {
    /// Quarantined hosts whose quarantine has not expired.
    pub quarantined: Vec<Quarantined>,
    /// `[response] quarantine_allow`: zones a quarantined host may still reach.
    pub quarantine_allow: Vec<String>,
    /// Break-glass grants in force.
    pub grants: Vec<GrantRule>,
}

/// One quarantined host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// The host.
    pub ip: IpAddr,
    /// Why it was quarantined.
    pub reason: String,
}

/// One break-glass grant, as the kernel looks it up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRule {
    /// The grant's number.
    pub id: u32,
    /// Initiator zone.
    pub from: String,
    /// Responder zone.
    pub to: String,
    /// The (protocol code, destination port) pairs it allows (port 0 for ICMP).
    pub ports: Vec<(u8, u16)>,
    /// When it ends.
    pub expires: SystemTime,
}

impl LiveState {
    /// The quarantined host that denies a flow from `s` to `d`, if one does: an end
    /// that is a quarantined address (or a one-host prefix of one) whose other end is
    /// not in a `quarantine_allow` zone (`world` never is). Ends named as zones or wider
    /// prefixes are not single hosts: no quarantine applies to them as a whole.
    pub(crate) fn quarantine(
        &self,
        policy: &Policy,
        s: &Endpoint,
        d: &Endpoint,
    ) -> Option<&Quarantined> {
        let allowed = |peer: &Endpoint| {
            peer.zone != 0
                && (self.quarantine_allow.iter()).any(|z| z == policy.zone_name(peer.zone))
        };
        let src = self.quarantined_host(s);
        let dst = self.quarantined_host(d);
        let peer_allowed = (src.is_none() || allowed(d)) && (dst.is_none() || allowed(s));
        if peer_allowed {
            return None;
        }
        src.or(dst)
    }

    /// The grant allowing `service` from zone `src` to zone `dst`, if one does.
    pub(crate) fn grant(
        &self,
        policy: &Policy,
        src: u32,
        dst: u32,
        service: Service,
    ) -> Option<&GrantRule> {
        let (from, to) = (policy.zone_name(src), policy.zone_name(dst));
        let key = service.proto_port();
        self.grants
            .iter()
            .find(|g| g.from == from && g.to == to && g.ports.contains(&key))
    }

    fn quarantined_host(&self, end: &Endpoint) -> Option<&Quarantined> {
        let host = match end.named {
            Named::Address(a) => a,
            Named::Prefix(net) if net.prefix_len() == net.max_prefix_len() => net.addr(),
            Named::Prefix(_) | Named::Zone => return None,
        };
        self.quarantined.iter().find(|q| q.ip == host)
    }
}
