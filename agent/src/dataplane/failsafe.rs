//! The failsafe: management prefixes in their own tries, ports in the config entry.
use aya::{
    maps::{lpm_trie::Key, LpmTrie, MapData},
    Ebpf, Pod,
};
use ipnet::IpNet;
use ward_common::{map_names, Config, FAILSAFE_PORTS};

use super::{map_err, DataplaneError};
use crate::config::FailsafeConfig;

/// Makes the failsafe tries hold exactly `failsafe.management` and sets its ports in
/// `config` (the caller writes `config`). Prefixes go in before the ports, so the
/// kernel never honours ports against a half-written prefix list.
pub fn write(
    ebpf: &mut Ebpf,
    failsafe: &FailsafeConfig,
    config: &mut Config,
) -> Result<(), DataplaneError> {
    let management = if failsafe.is_active() {
        failsafe.management.as_slice()
    } else {
        &[]
    };
    let v4 = management.iter().filter_map(|net| match net {
        IpNet::V4(n) => Some(Key::new(u32::from(n.prefix_len()), n.network().octets())),
        IpNet::V6(_) => None,
    });
    replace::<[u8; 4]>(ebpf, map_names::FAILSAFE_V4, v4.collect())?;
    let v6 = management.iter().filter_map(|net| match net {
        IpNet::V6(n) => Some(Key::new(u32::from(n.prefix_len()), n.network().octets())),
        IpNet::V4(_) => None,
    });
    replace::<[u8; 16]>(ebpf, map_names::FAILSAFE_V6, v6.collect())?;
    config.failsafe_ports = [0; FAILSAFE_PORTS];
    if !management.is_empty() {
        for (slot, port) in config.failsafe_ports.iter_mut().zip(&failsafe.tcp_ports) {
            *slot = *port;
        }
    }
    Ok(())
}

/// Inserts `wanted` into the trie `name`, then removes every other entry.
fn replace<K: Pod + Eq>(
    ebpf: &mut Ebpf,
    name: &'static str,
    wanted: Vec<Key<K>>,
) -> Result<(), DataplaneError> {
    let map = ebpf.map_mut(name).ok_or(DataplaneError::Missing(name))?;
    let mut trie: LpmTrie<&mut MapData, K, u32> = LpmTrie::try_from(map).map_err(map_err(name))?;
    for key in &wanted {
        trie.insert(key, 1, 0).map_err(map_err(name))?;
    }
    let stale: Vec<Key<K>> = trie
        .keys()
        .filter_map(Result::ok)
        .filter(|k| {
            !wanted
                .iter()
                .any(|w| w.prefix_len() == k.prefix_len() && w.data() == k.data())
        })
        .collect();
    for key in &stale {
        trie.remove(key).map_err(map_err(name))?;
    }
    Ok(())
}
