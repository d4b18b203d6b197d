//! A host behind a gateway interface that appears after the agent started.
use ward_tests::{
    netns::{self, veth},
    probe::{Server, TCP_PORTS, UDP_PORTS},
    Clinic, Netns,
};

/// A host namespace `late` behind a new gateway interface `gw_if`, in a subnet no
/// clinic zone covers (zone `world`), with the probe servers.
pub struct Late {
    server: Option<Server>,
    /// The host's namespace.
    pub ns: Netns,
    /// The host's IPv4 address.
    pub v4: std::net::Ipv4Addr,
}

impl Late {
    /// Creates the host and the gateway's interface `gw_if` to it.
    pub fn create(clinic: &Clinic, gw_if: &str) -> Late {
        let ns = Netns::create(&format!("{}late", netns::prefix())).expect("namespace");
        veth(&clinic.gw, gw_if, &ns, "eth0").expect("veth");
        let gw_addrs = ["198.18.26.1/24".into(), "2001:db8:26::1/64".into()];
        clinic.gw.configure_if(gw_if, &gw_addrs).expect(gw_if);
        ns.configure_if(
            "eth0",
            &["198.18.26.10/24".into(), "2001:db8:26::10/64".into()],
        )
        .expect("eth0");
        ns.ip(&["route", "add", "default", "via", "198.18.26.1"])
            .expect("route");
        let server = Server::start(&ns, &TCP_PORTS, &UDP_PORTS).expect("probe server");
        Late {
            server: Some(server),
            ns,
            v4: "198.18.26.10".parse().expect("address"),
        }
    }
}

impl Drop for Late {
    fn drop(&mut self) {
        // The server first: a namespace lives on while a process is inside it.
        self.server.take();
    }
}
