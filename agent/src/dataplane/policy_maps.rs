//! Writing a compiled policy into one slot of the zone and rule tries.
use aya::{
    maps::{lpm_trie::Key, LpmTrie, MapData},
    Ebpf, Pod,
};
use ward_common::{
    map_names, rule_key, zone_key_v4, zone_key_v6, RuleKey, ZoneKeyV4, ZoneKeyV6,
    RULE_KEY_FIXED_BITS, ZONE_AUDIT, ZONE_KEY_SLOT_BITS, ZONE_QUARANTINE_ALLOW,
};

use super::{map_err, DataplaneError};
use crate::policy::CompiledPolicy;

/// Zone flags that come from the agent configuration rather than the policy.
#[derive(Debug, Default)]
pub struct ZoneFlags {
    /// Ids of the zones quarantined hosts may still reach.
    pub quarantine_allow: Vec<u32>,
}

impl ZoneFlags {
    /// A non-zero digest of `policy` with these flags: what a slot holds once written.
    pub fn digest(&self, policy: &CompiledPolicy) -> u64 {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        h.update(policy.hash.as_bytes());
        for id in &self.quarantine_allow {
            h.update(id.to_be_bytes());
        }
        let bytes: [u8; 8] = h.finalize()[..8].try_into().expect("8 of 32 bytes");
        u64::from_be_bytes(bytes).max(1)
    }
}

/// Replaces the contents of `slot` with `policy`: removes what the slot held before
/// and the policy does not, then inserts its entries. In that order the table never
/// holds more than the policy in force plus `policy`, each at most half of it
/// (`policy::capacity`), so a reload cannot fail half-way for room.
pub fn write_slot(
    ebpf: &mut Ebpf,
    slot: u8,
    policy: &CompiledPolicy,
    flags: &ZoneFlags,
) -> Result<(), DataplaneError> {
    // Zone trie values carry the zone's flag bits next to its id.
    let zone_value = |id: u32| {
        let mut value = id;
        if policy.audited_zones.binary_search(&id).is_ok() {
            value |= ZONE_AUDIT;
        }
        if flags.quarantine_allow.contains(&id) {
            value |= ZONE_QUARANTINE_ALLOW;
        }
        value
    };
    let v4 = policy.v4.iter().map(|(net, zone)| {
        let key = Key::new(
            ZONE_KEY_SLOT_BITS + u32::from(net.prefix_len()),
            zone_key_v4(slot, net.network().octets()),
        );
        (key, zone_value(*zone))
    });
    replace::<ZoneKeyV4>(ebpf, map_names::ZONES_V4, slot, v4)?;
    let v6 = policy.v6.iter().map(|(net, zone)| {
        let key = Key::new(
            ZONE_KEY_SLOT_BITS + u32::from(net.prefix_len()),
            zone_key_v6(slot, net.network().octets()),
        );
        (key, zone_value(*zone))
    });
    replace::<ZoneKeyV6>(ebpf, map_names::ZONES_V6, slot, v6)?;
    let rules = policy.rules.iter().map(|r| {
        let data = rule_key(slot, r.src_zone, r.dst_zone, r.proto, r.port);
        (
            Key::new(RULE_KEY_FIXED_BITS + u32::from(r.port_bits), data),
            r.rule_id,
        )
    });
    replace::<RuleKey>(ebpf, map_names::RULES, slot, rules)
}

/// Key data whose first byte is the slot.
trait Slotted: Pod + Eq + std::hash::Hash {
    fn slot(&self) -> u8;
}

impl<const N: usize> Slotted for [u8; N]
where
    [u8; N]: Pod,
{
    fn slot(&self) -> u8 {
        self[0]
    }
}

fn replace<K: Slotted>(
    ebpf: &mut Ebpf,
    name: &'static str,
    slot: u8,
    entries: impl Iterator<Item = (Key<K>, u32)>,
) -> Result<(), DataplaneError> {
    let map = ebpf.map_mut(name).ok_or(DataplaneError::Missing(name))?;
    let mut trie: LpmTrie<&mut MapData, K, u32> = LpmTrie::try_from(map).map_err(map_err(name))?;
    let entries: Vec<(Key<K>, u32)> = entries.collect();
    let wanted: std::collections::HashSet<(u32, K)> = entries
        .iter()
        .map(|(key, _)| (key.prefix_len(), key.data()))
        .collect();
    let stale: Vec<Key<K>> = trie
        .keys()
        .filter_map(Result::ok)
        .filter(|k| k.data().slot() == slot && !wanted.contains(&(k.prefix_len(), k.data())))
        .collect();
    for key in stale {
        trie.remove(&key).map_err(map_err(name))?;
    }
    for (key, value) in &entries {
        trie.insert(key, *value, 0).map_err(map_err(name))?;
    }
    Ok(())
}
