//! What the programs know about the host they guard: its own addresses
//! (`HOST_ADDRS`: such a source arriving from outside is spoofed) and the interfaces
//! whose ingress the XDP program guards (`ATTACHED`: a gateway's egress program
//! judges packets forwarded from any other). Both maps are rewritten to match what
//! the agent sees, so entries an earlier agent left go too.
use std::{collections::HashSet, hash::Hash, net::IpAddr};

use aya::{
    maps::{HashMap, MapData},
    Pod,
};
use ward_common::{map_names, AddrKey};

use super::{
    attach::Hook,
    map_err,
    quarantine::{ip_of, key},
    Dataplane, DataplaneError,
};

/// What one rewrite of a map added and removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synced<T> {
    /// Entries written.
    pub added: Vec<T>,
    /// Stale entries removed.
    pub removed: Vec<T>,
}

impl<T> Synced<T> {
    /// Whether the map already matched.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

impl Dataplane {
    /// Makes `HOST_ADDRS` hold exactly `addrs`, this host's own unicast addresses.
    pub fn set_host_addrs(&mut self, addrs: &[IpAddr]) -> Result<Synced<IpAddr>, DataplaneError> {
        let wanted: HashSet<AddrKey> = addrs.iter().map(|ip| key(*ip)).collect();
        let synced = sync(
            self.map(map_names::HOST_ADDRS)?,
            map_names::HOST_ADDRS,
            &wanted,
        )?;
        let ips = |keys: Vec<AddrKey>| keys.iter().filter_map(ip_of).collect();
        Ok(Synced {
            added: ips(synced.added),
            removed: ips(synced.removed),
        })
    }

    /// Makes `ATTACHED` list exactly the interfaces whose XDP hook runs the agent's
    /// program now (a hook found detached and not repaired yet is not guarded).
    pub(super) fn sync_attached(&mut self) -> Result<Synced<u32>, DataplaneError> {
        let wanted: HashSet<u32> = self
            .attachments
            .iter()
            .filter(|a| !a.down.contains(&Hook::XdpIngress))
            .map(|a| a.ifindex)
            .collect();
        sync(self.map(map_names::ATTACHED)?, map_names::ATTACHED, &wanted)
    }

    fn map<K: Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<HashMap<&mut MapData, K, u32>, DataplaneError> {
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(DataplaneError::Missing(name))?;
        HashMap::try_from(map).map_err(map_err(name))
    }
}

/// Removes the keys of `map` that are not `wanted`, then writes the wanted ones it
/// lacks (value 1).
fn sync<K: Pod + Eq + Hash>(
    mut map: HashMap<&mut MapData, K, u32>,
    name: &'static str,
    wanted: &HashSet<K>,
) -> Result<Synced<K>, DataplaneError> {
    let present: HashSet<K> = map
        .keys()
        .collect::<Result<_, _>>()
        .map_err(map_err(name))?;
    let mut synced = Synced {
        added: Vec::new(),
        removed: Vec::new(),
    };
    for k in present.difference(wanted) {
        map.remove(k).map_err(map_err(name))?;
        synced.removed.push(*k);
    }
    for k in wanted.difference(&present) {
        map.insert(k, 1, 0).map_err(map_err(name))?;
        synced.added.push(*k);
    }
    Ok(synced)
}
