//! One end of a flow as a person names it to `ward explain` or in a policy test: an
//! address, a CIDR prefix or a zone name, resolved to the zone the kernel would find.
use std::net::IpAddr;

use ipnet::IpNet;

use super::diagnostic::did_you_mean;
use super::evaluate::ZoneIndex;
use super::model::WORLD;
use super::{ExplainError, Policy};

/// An endpoint resolved against a policy: its zone, and the addresses it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Zone id (`world` is 0).
    pub zone: u32,
    /// What was named.
    pub named: Named,
}

/// What an [`Endpoint`] was given as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Named {
    /// One address.
    Address(IpAddr),
    /// A prefix that lies in one zone.
    Prefix(IpNet),
    /// A zone by name (`world` included): every address in it.
    Zone,
}

impl Named {
    /// The address family, when an address or prefix was named.
    fn is_ipv4(&self) -> Option<bool> {
        match self {
            Named::Address(a) => Some(a.is_ipv4()),
            Named::Prefix(n) => Some(matches!(n, IpNet::V4(_))),
            Named::Zone => None,
        }
    }
}

impl Policy {
    /// Resolves `text`, an address (`198.18.20.10`), a CIDR prefix (`198.18.20.0/24`)
    /// or a zone name (`imaging`, `world`). A prefix must lie in one zone: one with a
    /// more specific prefix of another zone inside it is an error.
    pub fn endpoint(&self, text: &str) -> Result<Endpoint, ExplainError> {
        let text = text.trim();
        let zones = ZoneIndex::new(self);
        if let Ok(addr) = text.parse::<IpAddr>() {
            let zone = zones.zone_of(addr);
            return Ok(Endpoint {
                zone,
                named: Named::Address(addr),
            });
        }
        if let Ok(net) = text.parse::<IpNet>() {
            if net.trunc() != net {
                return Err(ExplainError::HostBits(text.to_owned(), net.trunc()));
            }
            let zone = zones.zone_of(net.network());
            let mut inside: Vec<&str> = self
                .zones
                .iter()
                .zip(1u32..)
                .filter(|&(z, id)| {
                    id != zone
                        && z.cidrs
                            .iter()
                            .any(|c| c.prefix_len() > net.prefix_len() && net.contains(c))
                })
                .map(|(z, _)| z.name.as_str())
                .collect();
            if !inside.is_empty() {
                inside.insert(0, self.zone_name(zone));
                return Err(ExplainError::SpansZones(net, inside.join(", ")));
            }
            return Ok(Endpoint {
                zone,
                named: Named::Prefix(net),
            });
        }
        match self.zone_id(text) {
            Some(zone) => Ok(Endpoint {
                zone,
                named: Named::Zone,
            }),
            None => {
                let names = self.zones.iter().map(|z| z.name.as_str());
                let hint = did_you_mean(text, names.chain([WORLD]));
                Err(ExplainError::Endpoint(text.to_owned(), hint))
            }
        }
    }

    /// Whether every address `endpoint` stands for is in one of `prefixes` (a zone
    /// name: every prefix of the zone; `world` never).
    pub(crate) fn within(&self, endpoint: &Endpoint, prefixes: &[IpNet]) -> bool {
        let covered = |net: &IpNet| prefixes.iter().any(|p| p.contains(net));
        match &endpoint.named {
            Named::Address(a) => prefixes.iter().any(|p| p.contains(a)),
            Named::Prefix(n) => covered(n),
            Named::Zone => endpoint.zone.checked_sub(1).is_some_and(|i| {
                let cidrs = &self.zones[i as usize].cidrs;
                !cidrs.is_empty() && cidrs.iter().all(covered)
            }),
        }
    }
}

/// An error when two endpoints name addresses of different families.
pub(crate) fn same_family(
    src: &Endpoint,
    dst: &Endpoint,
    texts: (&str, &str),
) -> Result<(), ExplainError> {
    match (src.named.is_ipv4(), dst.named.is_ipv4()) {
        (Some(a), Some(b)) if a != b => Err(ExplainError::Families(
            texts.0.to_owned(),
            texts.1.to_owned(),
        )),
        _ => Ok(()),
    }
}
