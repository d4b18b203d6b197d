//! Who automatic quarantine may never cut off, and why: `never_quarantine`, the
//! failsafe's management prefixes, this host's own addresses, and anything that is
//! not a unicast host address. A forged source naming one of them (a raw socket can
//! claim any source) must not turn the scan detector into a weapon against the
//! jump hosts, the gateway or the host itself.
use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::ResponseConfig;

/// Who may not be quarantined automatically.
#[derive(Clone, Debug, Default)]
pub struct Exemptions {
    nets: Vec<IpNet>,
    zones: Vec<String>,
    management: Vec<IpNet>,
}

impl Exemptions {
    /// From `[response] never_quarantine` (CIDRs, bare addresses and zone names) and
    /// the failsafe's `management` prefixes.
    pub fn new(config: &ResponseConfig, management: &[IpNet]) -> Self {
        let mut out = Exemptions {
            management: management.to_vec(),
            ..Exemptions::default()
        };
        for item in &config.never_quarantine {
            match item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
            {
                Ok(net) => out.nets.push(net),
                Err(_) => out.zones.push(item.clone()),
            }
        }
        out
    }

    /// Why `ip` (in `zone`) may not be quarantined automatically, or `None`. `own`
    /// are the addresses of this host now.
    pub fn why_not(&self, ip: IpAddr, zone: &str, own: &[IpAddr]) -> Option<&'static str> {
        if !unicast_host(ip) {
            Some("not a unicast host address")
        } else if own.contains(&ip) {
            Some("an address of this host")
        } else if self.management.iter().any(|n| n.contains(&ip)) {
            Some("in the failsafe management prefixes")
        } else if self.nets.iter().any(|n| n.contains(&ip)) || self.zones.iter().any(|z| z == zone)
        {
            Some("never_quarantine")
        } else {
            None
        }
    }
}

/// Whether `ip` can be one host's address: not unspecified, loopback, multicast,
/// broadcast or (IPv6) link-local.
pub fn unicast_host(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast())
        }
        IpAddr::V6(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.is_unicast_link_local()
                || a.to_ipv4_mapped().is_some())
        }
    }
}

/// The addresses of this host's interfaces (in the agent's network namespace), read
/// afresh at each call: they change as interfaces come and go.
pub fn own_addresses() -> Vec<IpAddr> {
    let Ok(list) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    list.filter_map(|i| {
        let a = i.address?;
        if let Some(v4) = a.as_sockaddr_in() {
            Some(IpAddr::V4(v4.ip()))
        } else {
            a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
        }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn never_quarantine_takes_cidrs_addresses_and_zone_names() {
        let config = ResponseConfig {
            never_quarantine: vec![
                "198.18.24.0/24".into(),
                "2001:db8:20::7".into(),
                "pacs".into(),
            ],
            ..ResponseConfig::default()
        };
        let e = Exemptions::new(&config, &[]);
        let why = |a: &str, zone: &str| e.why_not(ip(a), zone, &[]);
        assert_eq!(why("198.18.24.9", "admin"), Some("never_quarantine"));
        assert_eq!(why("2001:db8:20::7", "imaging"), Some("never_quarantine"));
        assert_eq!(why("2001:db8:20::8", "imaging"), None);
        assert_eq!(why("198.18.21.10", "pacs"), Some("never_quarantine"));
        assert_eq!(why("198.18.20.10", "imaging"), None);
    }

    #[test]
    fn management_own_and_non_host_addresses_are_never_quarantined() {
        let management: Vec<IpNet> = vec!["198.18.24.0/24".parse().unwrap()];
        let e = Exemptions::new(&ResponseConfig::default(), &management);
        let own = [ip("198.18.20.1"), ip("2001:db8:20::1")];
        let why = |a: &str| e.why_not(ip(a), "imaging", &own);
        assert_eq!(
            why("198.18.24.10"),
            Some("in the failsafe management prefixes")
        );
        assert_eq!(why("198.18.20.1"), Some("an address of this host"));
        assert_eq!(why("2001:db8:20::1"), Some("an address of this host"));
        for not_a_host in [
            "0.0.0.0",
            "127.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "ff02::1",
            "fe80::1",
            "::ffff:198.18.20.10",
        ] {
            assert_eq!(
                why(not_a_host),
                Some("not a unicast host address"),
                "{not_a_host}"
            );
        }
        assert_eq!(why("198.18.20.10"), None);
        assert_eq!(why("2001:db8:20::10"), None);
    }

    #[test]
    fn this_host_has_addresses() {
        // Every namespace has loopback.
        assert!(own_addresses().contains(&ip("127.0.0.1")));
    }
}
