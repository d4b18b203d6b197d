//! The simulated clinic: a gateway namespace and one namespace per host, each host
//! on its own veth pair to the gateway, with the subnets `policies/clinic.toml` uses.
//!
//! ```text
//!   imaging  pacs  ehr  billing  admin  clinician  world
//!      \       |    |      |       |        |       /      host side: eth0, .10 / ::10
//!       +------+----+------+- gw --+--------+------+       gateway side: gw-<host>, .1 / ::1
//! ```
//! Every host runs `ward-probe serve` on [`TCP_PORTS`] and [`UDP_PORTS`].
//! `world` sits in a subnet that no clinic zone covers (zone `world`).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, Result};

use crate::netns::{self, veth, Netns};
use crate::probe::{Server, Service, TCP_PORTS, UDP_PORTS};

/// A host of the clinic: (namespace suffix, zone in clinic.toml, subnet number N:
/// IPv4 198.18.N.0/24, IPv6 2001:db8:N::/64 with N read as hex digits).
pub const HOSTS: [(&str, &str, u8); 7] = [
    ("imaging", "imaging", 20),
    ("pacs", "pacs", 21),
    ("ehr", "ehr", 22),
    ("billing", "billing", 23),
    ("admin", "admin", 24),
    ("clinician", "clinicians", 25),
    ("world", "world", 99),
];

/// Flows the clinic scenario forbids, whatever else the policy says: (client host,
/// server host, service). Reverse initiation, wrong service, wrong zone, `world`.
pub const FORBIDDEN: [(&str, &str, Service); 9] = [
    ("imaging", "billing", Service::tcp(443)),
    ("imaging", "ehr", Service::tcp(443)),
    ("imaging", "billing", Service::ICMP),
    ("billing", "pacs", Service::tcp(104)),
    ("pacs", "imaging", Service::tcp(22)),
    ("clinician", "pacs", Service::tcp(104)),
    ("clinician", "pacs", Service::tcp(11112)),
    ("world", "pacs", Service::tcp(104)),
    ("world", "pacs", Service::tcp(11112)),
];

/// Name of the host-side interface in every host namespace.
pub const HOST_IF: &str = "eth0";

static TOPOLOGY: AtomicU32 = AtomicU32::new(0);

/// One host namespace.
#[derive(Debug)]
pub struct Host {
    /// Short name: `imaging`, `pacs`, …, `clinician`, `world`.
    pub name: &'static str,
    /// Its zone in `policies/clinic.toml` (`world`: no zone covers it).
    pub zone: &'static str,
    /// Its namespace.
    pub ns: Netns,
    /// IPv4 address, `198.18.N.10`.
    pub v4: Ipv4Addr,
    /// IPv6 address, `2001:db8:N::10`.
    pub v6: Ipv6Addr,
    /// Gateway-side interface of its veth pair (in the gateway namespace), `gw-<name>`.
    pub gw_if: String,
    /// Host-side interface ([`HOST_IF`]).
    pub host_if: &'static str,
}

impl Host {
    /// Its IPv4 or IPv6 address.
    pub fn addr(&self, v6: bool) -> IpAddr {
        if v6 {
            self.v6.into()
        } else {
            self.v4.into()
        }
    }
}

/// The clinic topology; dropping it stops the servers and deletes every namespace.
pub struct Clinic {
    /// Probe servers, stopped before the namespaces go.
    servers: Vec<Server>,
    /// The hosts, in [`HOSTS`] order.
    pub hosts: Vec<Host>,
    /// The gateway namespace (forwards IPv4 and IPv6 between the hosts).
    pub gw: Netns,
}

fn v6_of(n: u8, host: u16) -> Ipv6Addr {
    // 2001:db8:N:: where N's decimal digits are read as hex (20 → 2001:db8:20::).
    let group = u16::from_str_radix(&n.to_string(), 16).expect("decimal digits are hex digits");
    Ipv6Addr::new(0x2001, 0x0db8, group, 0, 0, 0, 0, host)
}

impl Clinic {
    /// Builds the topology and starts the probe servers; namespaces are named
    /// `wd<pid>-<n>-gw`, `wd<pid>-<n>-imaging`, …
    pub fn create() -> Result<Clinic> {
        crate::util::require_root("the clinic topology");
        let n = TOPOLOGY.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("{}{n}-", netns::prefix());
        netns::clean_leftovers(&prefix);

        let gw = Netns::create(&format!("{prefix}gw"))?;
        let mut clinic = Clinic {
            servers: Vec::new(),
            hosts: Vec::new(),
            gw,
        };
        for (name, zone, net) in HOSTS {
            let ns = Netns::create(&format!("{prefix}{name}"))?;
            let gw_if = format!("gw-{name}");
            let host = Host {
                name,
                zone,
                ns,
                v4: Ipv4Addr::new(198, 18, net, 10),
                v6: v6_of(net, 0x10),
                gw_if,
                host_if: HOST_IF,
            };
            clinic.hosts.push(host);
            let host = clinic.hosts.last().expect("just pushed");
            let gw_v4 = Ipv4Addr::new(198, 18, net, 1);
            let gw_v6 = v6_of(net, 1);
            veth(&clinic.gw, &host.gw_if, &host.ns, HOST_IF)?;
            clinic
                .gw
                .configure_if(&host.gw_if, &[format!("{gw_v4}/24"), format!("{gw_v6}/64")])?;
            host.ns.configure_if(
                HOST_IF,
                &[format!("{}/24", host.v4), format!("{}/64", host.v6)],
            )?;
            host.ns
                .ip(&["route", "add", "default", "via", &gw_v4.to_string()])?;
            host.ns
                .ip(&["-6", "route", "add", "default", "via", &gw_v6.to_string()])?;
        }
        clinic.gw.sysctls(&[
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv6.conf.default.forwarding", "1"),
        ])?;
        for h in &clinic.hosts {
            let s = Server::start(&h.ns, &TCP_PORTS, &UDP_PORTS)
                .with_context(|| format!("probe server on {}", h.name))?;
            clinic.servers.push(s);
        }
        Ok(clinic)
    }

    /// The host named `name`; panics if there is none.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no clinic host {name}"))
    }

    /// The gateway's interfaces (`gw-imaging`, …), for the agent config.
    pub fn gateway_interfaces(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.gw_if.clone()).collect()
    }

    /// Names of every namespace of this topology.
    pub fn namespace_names(&self) -> Vec<String> {
        let mut v = vec![self.gw.name().to_string()];
        v.extend(self.hosts.iter().map(|h| h.ns.name().to_string()));
        v
    }
}

impl Drop for Clinic {
    fn drop(&mut self) {
        // Servers first: a namespace lives on while a process is inside it.
        self.servers.clear();
    }
}
