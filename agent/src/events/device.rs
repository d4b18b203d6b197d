//! The host's identity in every record (OCSF `device`): its name and the addresses of
//! the interfaces Ward guards, so that a SIEM tells a thousand hosts apart. The event
//! reader stamps it on each record ([`Identity`]), refreshed as interfaces come, go
//! and change addresses.
use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::state::SharedStatus;

/// How long the identity is used before it is read again.
pub const IDENTITY_REFRESH: Duration = Duration::from_secs(5);

/// OCSF `device`: the host that wrote the record. Read leniently: a field a record
/// lacks (an older agent's, another producer's) reads as its default.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Device {
    /// The host's name (`uname -n`).
    pub hostname: String,
    /// Its first address: the first IPv4 address of a guarded interface, else the
    /// first IPv6 one; absent when they have none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ip: Option<IpAddr>,
    /// OCSF device type: always 0.
    pub type_id: u32,
    /// Always `Unknown`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Every address of every guarded interface, one entry each.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub network_interfaces: Vec<NetworkInterface>,
}

/// OCSF `network_interface`: one address of a guarded interface.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NetworkInterface {
    /// The interface's name.
    pub name: String,
    /// The address.
    pub ip: IpAddr,
    /// OCSF interface type: always 0.
    pub type_id: u32,
    /// Always `Unknown`.
    #[serde(rename = "type")]
    pub type_name: String,
}

impl Device {
    /// `hostname` with `addresses` (interface, address) in order.
    pub fn new(hostname: String, addresses: Vec<(String, IpAddr)>) -> Self {
        let ip = addresses
            .iter()
            .map(|(_, ip)| *ip)
            .find(IpAddr::is_ipv4)
            .or_else(|| addresses.first().map(|(_, ip)| *ip));
        Device {
            hostname,
            ip,
            type_id: 0,
            type_name: "Unknown".into(),
            network_interfaces: addresses
                .into_iter()
                .map(|(name, ip)| NetworkInterface {
                    name,
                    ip,
                    type_id: 0,
                    type_name: "Unknown".into(),
                })
                .collect(),
        }
    }

    /// This host now: its name, and the addresses of `interfaces` that identify it
    /// (neither loopback, unspecified, multicast nor IPv6 link-local).
    pub fn this_host(interfaces: &[&str]) -> Self {
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let addresses = nix::ifaddrs::getifaddrs()
            .map(|list| {
                list.filter(|i| interfaces.contains(&i.interface_name.as_str()))
                    .filter_map(|i| {
                        let a = i.address?;
                        let ip = match a.as_sockaddr_in() {
                            Some(v4) => IpAddr::V4(v4.ip()),
                            None => IpAddr::V6(a.as_sockaddr_in6()?.ip()),
                        };
                        identifies(ip).then_some((i.interface_name, ip))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Device::new(hostname, addresses)
    }
}

/// Whether `ip` can tell this host from another.
fn identifies(ip: IpAddr) -> bool {
    let link_local = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
    !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || link_local)
}

/// The identity the event reader stamps, read again every [`IDENTITY_REFRESH`].
#[derive(Default)]
pub struct Identity {
    device: Device,
    read_at: Option<Instant>,
}

impl Identity {
    /// The host's identity, read again when older than [`IDENTITY_REFRESH`]; the
    /// guarded interfaces are those with a hook in `status`.
    pub fn current(&mut self, status: &SharedStatus) -> &Device {
        let fresh = self.read_at.is_some_and(|t| t.elapsed() < IDENTITY_REFRESH);
        if !fresh {
            let interfaces: Vec<String> = status
                .read()
                .map(|s| s.hooks.iter().map(|h| h.interface.clone()).collect())
                .unwrap_or_default();
            let mut names: Vec<&str> = interfaces.iter().map(String::as_str).collect();
            names.dedup();
            self.device = Device::this_host(&names);
            self.read_at = Some(Instant::now());
        }
        &self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_ipv4_address_is_the_device_ip_and_every_address_is_listed() {
        let d = Device::new(
            "ward-1".into(),
            vec![
                ("eth0".into(), "2001:db8:20::1".parse().unwrap()),
                ("eth0".into(), "198.18.20.1".parse().unwrap()),
                ("eth1".into(), "198.18.21.1".parse().unwrap()),
            ],
        );
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            concat!(
                r#"{"hostname":"ward-1","ip":"198.18.20.1","type_id":0,"type":"Unknown","network_interfaces":["#,
                r#"{"name":"eth0","ip":"2001:db8:20::1","type_id":0,"type":"Unknown"},"#,
                r#"{"name":"eth0","ip":"198.18.20.1","type_id":0,"type":"Unknown"},"#,
                r#"{"name":"eth1","ip":"198.18.21.1","type_id":0,"type":"Unknown"}]}"#
            )
        );
        let v6 = Device::new(
            "h".into(),
            vec![("e".into(), "2001:db8::1".parse().unwrap())],
        );
        assert_eq!(v6.ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(
            serde_json::to_string(&Device::new("h".into(), Vec::new())).unwrap(),
            r#"{"hostname":"h","type_id":0,"type":"Unknown"}"#
        );
    }

    #[test]
    fn only_addresses_that_identify_the_host_count() {
        for (ip, expected) in [
            ("198.18.0.1", true),
            ("2001:db8::1", true),
            ("127.0.0.1", false),
            ("::1", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", true),
            ("ff02::1", false),
            ("0.0.0.0", false),
        ] {
            assert_eq!(identifies(ip.parse().unwrap()), expected, "{ip}");
        }
    }
}
