//! What a slot of the zone and rule tries holds once a policy is written there, and
//! the difference between two such contents: what a reload must remove, and what it
//! must write (new entries and entries whose value changed). Kept in memory by the
//! dataplane per slot, so that a one-rule change writes a handful of entries.
use ward_common::{
    rule_key, zone_key_v4, zone_key_v6, RuleKey, ZoneKeyV4, ZoneKeyV6, RULE_KEY_FIXED_BITS,
    ZONE_AUDIT, ZONE_KEY_SLOT_BITS, ZONE_QUARANTINE_ALLOW,
};

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

/// One trie entry: key data (slot byte 0), trie prefix length, value.
pub type Entry<K> = (K, u32, u32);

/// The entries of one slot of each trie, each list sorted by (key data, prefix length);
/// the slot byte of every key is 0 (the slot is set when written).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotEntries {
    /// IPv4 zone trie.
    pub v4: Vec<Entry<ZoneKeyV4>>,
    /// IPv6 zone trie.
    pub v6: Vec<Entry<ZoneKeyV6>>,
    /// Rule trie.
    pub rules: Vec<Entry<RuleKey>>,
}

impl SlotEntries {
    /// What a slot holds once `policy` is written there with `flags`.
    pub fn of(policy: &CompiledPolicy, flags: &ZoneFlags) -> Self {
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
        let prefix = |len: u8| ZONE_KEY_SLOT_BITS + u32::from(len);
        let mut v4: Vec<_> = (policy.v4.iter())
            .map(|(net, zone)| {
                let key = zone_key_v4(0, net.network().octets());
                (key, prefix(net.prefix_len()), zone_value(*zone))
            })
            .collect();
        let mut v6: Vec<_> = (policy.v6.iter())
            .map(|(net, zone)| {
                let key = zone_key_v6(0, net.network().octets());
                (key, prefix(net.prefix_len()), zone_value(*zone))
            })
            .collect();
        let mut rules: Vec<_> = (policy.rules.iter())
            .map(|r| {
                let key = rule_key(0, r.src_zone, r.dst_zone, r.proto, r.port);
                (key, RULE_KEY_FIXED_BITS + u32::from(r.port_bits), r.rule_id)
            })
            .collect();
        v4.sort_unstable();
        v6.sort_unstable();
        rules.sort_unstable();
        SlotEntries { v4, v6, rules }
    }

    /// Entries over all tries.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len() + self.rules.len()
    }
}

/// What turns one trie's slot from its old entries into its new ones.
#[derive(Debug, PartialEq, Eq)]
pub struct Delta<K> {
    /// Keys the new entries lack: (key data, prefix length).
    pub remove: Vec<(K, u32)>,
    /// New entries, and entries whose value changed.
    pub write: Vec<Entry<K>>,
}

/// The difference from `old` to `new` (both sorted by key data and prefix length).
pub fn delta<K: Ord + Copy>(old: &[Entry<K>], new: &[Entry<K>]) -> Delta<K> {
    let (mut remove, mut write) = (Vec::new(), Vec::new());
    let (mut o, mut n) = (old.iter().peekable(), new.iter().peekable());
    loop {
        match (o.peek(), n.peek()) {
            (None, None) => break,
            (Some(&&(k, p, _)), None) => {
                remove.push((k, p));
                o.next();
            }
            (None, Some(&&e)) => {
                write.push(e);
                n.next();
            }
            (Some(&&(ok, op, ov)), Some(&&(nk, np, nv))) => match (ok, op).cmp(&(nk, np)) {
                std::cmp::Ordering::Less => {
                    remove.push((ok, op));
                    o.next();
                }
                std::cmp::Ordering::Greater => {
                    write.push((nk, np, nv));
                    n.next();
                }
                std::cmp::Ordering::Equal => {
                    if ov != nv {
                        write.push((nk, np, nv));
                    }
                    o.next();
                    n.next();
                }
            },
        }
    }
    Delta { remove, write }
}

#[cfg(test)]
mod tests;
