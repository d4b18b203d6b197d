//! The protocols rules allow: their codes in the kernel's maps
//! ([`ward_common::proto`]), their names in policies, services and diffs, and parsing
//! them. A new protocol starts here.
use std::{fmt, str::FromStr};

use serde::Serialize;
use ward_common::proto;

/// A protocol of the rule table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP echo (IPv4 and IPv6).
    Icmp,
}

impl Protocol {
    /// Every protocol, in their order.
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Icmp];

    /// Its `proto::*` code in the kernel's maps.
    pub const fn code(self) -> u8 {
        match self {
            Protocol::Tcp => proto::TCP,
            Protocol::Udp => proto::UDP,
            Protocol::Icmp => proto::ICMP,
        }
    }

    /// The protocol of a `proto::*` code, if rules can allow it.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    /// `tcp`, `udp` or `icmp`, as policies and services write it.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }

    /// Whether its services have ports (`tcp/443`), unlike ICMP echo (`icmp`).
    pub const fn has_ports(self) -> bool {
        !matches!(self, Protocol::Icmp)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name [`Protocol::from_str`] does not know.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown protocol `{0}`: expected tcp, udp or icmp")]
pub struct UnknownProtocol(
    /// The name given.
    pub String,
);

impl FromStr for Protocol {
    type Err = UnknownProtocol;

    /// A protocol's name (exactly, lower-case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProtocol(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(Protocol::from_code(p.code()), Some(p));
            assert_eq!(p.name().parse::<Protocol>(), Ok(p));
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!(Protocol::from_code(132), None);
        assert!("sctp".parse::<Protocol>().is_err());
        assert!("TCP".parse::<Protocol>().is_err());
    }
}
