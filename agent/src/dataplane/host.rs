//! What the programs know about the host they guard: its own addresses
//! (`HOST_ADDRS`, behind the filter `OWN_FILTER`: such a source arriving from outside
//! is spoofed) and the interfaces
//! whose ingress the XDP program guards (`ATTACHED`: a gateway's egress program
//! judges packets forwarded from any other). Both maps are rewritten to match what
//! the agent sees, so entries an earlier agent left go too.
use std::{collections::HashSet, hash::Hash, net::IpAddr};

use aya::{
    maps::{Array, HashMap, MapData},
    Pod,
};
use ward_common::{map_names, AddrKey, OwnFilter};

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
        let name = map_names::HOST_ADDRS;
        let present = keys(&self.map(name)?, name)?;
        // The filter claims every address the table may hold meanwhile: the present
        // and the wanted ones, then the wanted ones alone.
        self.set_own_filter(filter_of(present.union(&wanted)))?;
        let synced = sync(self.map(name)?, name, &present, &wanted)?;
        self.set_own_filter(filter_of(&wanted))?;
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
        let name = map_names::ATTACHED;
        let map = self.map(name)?;
        let present = keys(&map, name)?;
        sync(map, name, &present, &wanted)
    }

    /// Writes the filter in front of `HOST_ADDRS` (`ward_common::own`).
    pub(super) fn set_own_filter(&mut self, filter: OwnFilter) -> Result<(), DataplaneError> {
        let name = map_names::OWN_FILTER;
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(DataplaneError::Missing(name))?;
        let mut array: Array<_, OwnFilter> = Array::try_from(map).map_err(map_err(name))?;
        array.set(0, filter, 0).map_err(map_err(name))
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

/// The filter of the own addresses `keys`.
fn filter_of<'a>(keys: impl IntoIterator<Item = &'a AddrKey>) -> OwnFilter {
    OwnFilter::of(keys.into_iter().map(|k| (k.family, &k.addr)))
}

/// The keys of `map` (named `name`).
fn keys<K: Pod + Eq + Hash>(
    map: &HashMap<&mut MapData, K, u32>,
    name: &'static str,
) -> Result<HashSet<K>, DataplaneError> {
    map.keys().collect::<Result<_, _>>().map_err(map_err(name))
}

/// Removes the keys of `map` that are not `wanted`, then writes the wanted ones it
/// lacks (value 1); `present` is what [`keys`] read of it.
fn sync<K: Pod + Eq + Hash>(
    mut map: HashMap<&mut MapData, K, u32>,
    name: &'static str,
    present: &HashSet<K>,
    wanted: &HashSet<K>,
) -> Result<Synced<K>, DataplaneError> {
    let mut synced = Synced {
        added: Vec::new(),
        removed: Vec::new(),
    };
    for k in present.difference(wanted) {
        map.remove(k).map_err(map_err(name))?;
        synced.removed.push(*k);
    }
    for k in wanted.difference(present) {
        map.insert(k, 1, 0).map_err(map_err(name))?;
        synced.added.push(*k);
    }
    Ok(synced)
}
