//! Flow-level evaluation: which zone an address is in and which rule allows a flow.
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use ward_common::{Verdict, WORLD_ZONE};

use super::{Origin, Policy, Protocol};

/// A service as users write it: `tcp/443`, `udp/53` or `icmp` (echo).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// TCP to this destination port.
    Tcp(u16),
    /// UDP to this destination port.
    Udp(u16),
    /// ICMP echo (IPv4 or IPv6).
    Icmp,
}

impl Service {
    /// Its protocol.
    pub fn protocol(self) -> Protocol {
        match self {
            Service::Tcp(_) => Protocol::Tcp,
            Service::Udp(_) => Protocol::Udp,
            Service::Icmp => Protocol::Icmp,
        }
    }

    /// `proto::*` code and rule lookup port.
    pub fn proto_port(self) -> (u8, u16) {
        let port = match self {
            Service::Tcp(p) | Service::Udp(p) => p,
            Service::Icmp => 0,
        };
        (self.protocol().code(), port)
    }
}

/// Errors of [`Service::from_str`] and [`Policy::explain`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExplainError {
    /// The service is not `tcp/PORT`, `udp/PORT` or `icmp`.
    #[error("bad service `{0}`: expected tcp/PORT, udp/PORT or icmp (PORT 1-65535)")]
    Service(String),
    /// One address is IPv4 and the other IPv6.
    #[error("{0} and {1} are not of the same address family")]
    MixedFamilies(IpAddr, IpAddr),
    /// A service name not in the catalogue.
    #[error("unknown service `{0}`{1}: expected a name `ward policy services` lists, tcp/PORT, udp/PORT or icmp")]
    UnknownService(String, String),
    /// An endpoint that is neither an address, a prefix nor a zone of the policy.
    #[error("`{0}` is not an address, a CIDR prefix or a zone of the policy{1}")]
    Endpoint(String, String),
    /// A prefix with host bits set.
    #[error("{0} has host bits set: the network is {1}")]
    HostBits(String, IpNet),
    /// A prefix that holds addresses of more than one zone.
    #[error("{0} spans several zones ({1}): name an address, a narrower prefix or a zone")]
    SpansZones(IpNet, String),
    /// Two endpoints of different address families.
    #[error("{0} and {1} are not of the same address family")]
    Families(String, String),
}

impl FromStr for Service {
    type Err = ExplainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ExplainError::Service(s.to_owned());
        let lower = s.trim().to_ascii_lowercase();
        if lower.parse() == Ok(Protocol::Icmp) {
            return Ok(Service::Icmp);
        }
        let (protocol, port) = lower.split_once('/').ok_or_else(bad)?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(bad)?;
        match protocol.parse() {
            Ok(Protocol::Tcp) => Ok(Service::Tcp(port)),
            Ok(Protocol::Udp) => Ok(Service::Udp(port)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Service::Tcp(p) | Service::Udp(p) => write!(f, "{}/{p}", self.protocol()),
            Service::Icmp => f.write_str(self.protocol().name()),
        }
    }
}

/// The verdict on a new flow and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// Allow when a rule allows the flow.
    pub verdict: Verdict,
    /// Source zone name.
    pub src_zone: String,
    /// Destination zone name.
    pub dst_zone: String,
    /// The service asked about.
    pub service: Service,
    /// The deciding rule (the first that allows the flow): its id and where it is written.
    pub rule: Option<(u32, Origin)>,
}

/// `allow a -> b tcp/104 by rule #0 at file:12` or `deny a -> b tcp/443: no rule allows it`.
impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.verdict == Verdict::Allow {
            "allow"
        } else {
            "deny"
        };
        write!(
            f,
            "{verdict} {} -> {} {}",
            self.src_zone, self.dst_zone, self.service
        )?;
        match &self.rule {
            Some((id, origin)) => write!(f, " by rule #{id} at {origin}"),
            None => f.write_str(": no rule allows it"),
        }
    }
}

impl Policy {
    /// Name of the zone `addr` belongs to (`world` when no prefix covers it).
    pub fn zone_of(&self, addr: IpAddr) -> &str {
        self.zone_name(ZoneIndex::new(self).zone_of(addr))
    }

    /// Explains the verdict on a new flow from `src` to `dst` for `service`.
    pub fn explain(
        &self,
        src: IpAddr,
        dst: IpAddr,
        service: &Service,
    ) -> Result<Explanation, ExplainError> {
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(ExplainError::MixedFamilies(src, dst));
        }
        let zones = ZoneIndex::new(self);
        let (s, d) = (zones.zone_of(src), zones.zone_of(dst));
        let (proto, port) = service.proto_port();
        let rule = self
            .first_rule(s, d, proto, port)
            .map(|id| (id, self.rules[id as usize].origin.clone()));
        Ok(Explanation {
            verdict: if rule.is_some() {
                Verdict::Allow
            } else {
                Verdict::Deny
            },
            src_zone: self.zone_name(s).to_owned(),
            dst_zone: self.zone_name(d).to_owned(),
            service: *service,
            rule,
        })
    }
}

/// Longest-prefix match of addresses to zone ids: one hash lookup per prefix length in use.
#[derive(Clone, Debug, Default)]
pub struct ZoneIndex {
    v4: Lpm,
    v6: Lpm,
}

#[derive(Clone, Debug, Default)]
struct Lpm {
    /// Prefix lengths in use, longest first.
    lens: Vec<u8>,
    /// (masked address, length) → zone id.
    map: HashMap<(u128, u8), u32>,
}

impl Lpm {
    fn insert(&mut self, addr: u128, len: u8, bits: u8, zone: u32) {
        self.map.insert((mask(addr, len, bits), len), zone);
        if let Err(i) = self.lens.binary_search_by(|l| len.cmp(l)) {
            self.lens.insert(i, len);
        }
    }

    fn lookup(&self, addr: u128, bits: u8) -> u32 {
        self.lens
            .iter()
            .find_map(|&len| self.map.get(&(mask(addr, len, bits), len)).copied())
            .unwrap_or(WORLD_ZONE)
    }
}

/// Keeps the first `len` of the `bits` low bits of `addr` (the others are zero already).
fn mask(addr: u128, len: u8, bits: u8) -> u128 {
    let host_bits = u32::from(bits.saturating_sub(len));
    addr & !u128::MAX.checked_shr(128 - host_bits).unwrap_or(0)
}

impl ZoneIndex {
    /// Indexes the prefixes of `policy`'s zones.
    pub fn new(policy: &Policy) -> Self {
        let mut index = ZoneIndex::default();
        for (zone, id) in policy.zones.iter().zip(1u32..) {
            for net in zone.cidrs.iter() {
                match net {
                    IpNet::V4(n) => {
                        index
                            .v4
                            .insert(u32::from(n.addr()).into(), n.prefix_len(), 32, id)
                    }
                    IpNet::V6(n) => index
                        .v6
                        .insert(u128::from(n.addr()), n.prefix_len(), 128, id),
                }
            }
        }
        index
    }

    /// Zone id of `addr` (`world` when no prefix covers it).
    pub fn zone_of(&self, addr: IpAddr) -> u32 {
        match addr {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a).into(), 32),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a), 128),
        }
    }
}
