//! This host's own addresses in the kernel (`HOST_ADDRS`): written before the
//! programs are attached and refreshed at every interface watch pass, so that a
//! packet arriving from outside with one of them as its source is denied `spoofed`.
//! The addresses are those the response never quarantines ([`exempt::own_addresses`]),
//! unicast host addresses only: an IPv6 link-local address belongs to one link, and
//! another link may use it too.
use std::net::IpAddr;

use tracing::{info, warn};

use super::Agent;
use crate::response::exempt;

/// The last error writing the addresses, logged once until it changes.
#[derive(Default)]
pub(super) struct HostAddrs {
    error: Option<String>,
}

impl Agent {
    /// Makes `HOST_ADDRS` hold this host's unicast addresses now; logs what changed.
    pub(super) fn refresh_host_addrs(&mut self, state: &mut HostAddrs) {
        let own: Vec<IpAddr> = exempt::own_addresses()
            .into_iter()
            .filter(|ip| exempt::unicast_host(*ip))
            .collect();
        match self.dataplane.set_host_addrs(&own) {
            Ok(synced) => {
                state.error = None;
                if !synced.is_empty() {
                    info!(
                        "host addresses (sources never accepted from outside): added {:?}, removed {:?}",
                        synced.added, synced.removed
                    );
                }
            }
            Err(e) => {
                let error = format!("{:#}", anyhow::Error::from(e));
                if state.error.as_ref() != Some(&error) {
                    warn!("writing this host's addresses, retrying: {error}");
                    state.error = Some(error);
                }
            }
        }
    }
}
