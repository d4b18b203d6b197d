//! Writing a compiled policy into one slot of the zone and rule maps: only the
//! difference from what the slot holds when the dataplane remembers it, else every
//! entry (after a restart, or a write that failed half-way).
//!
//! Each map's removals, then its writes, go by `BPF_MAP_DELETE_BATCH` and
//! `BPF_MAP_UPDATE_BATCH` (`batch`): one `bpf()` call per 16,384 entries rather than
//! per entry (a full replace of a 100,000-CIDR policy rewrites about 470,000). Hash
//! maps take batches since Linux 5.6, LPM tries where the kernel gives them the generic
//! batch operations (6.18 does), arrays since 5.6; where a kernel refuses, the entries
//! go one call each, with the same result. The rule tables are written by a thread of
//! their own meanwhile. What a one-rule change writes is still its difference alone.
use std::borrow::Cow;

use aya::{
    maps::{lpm_trie::Key, Array, HashMap, LpmTrie, Map, MapData},
    Ebpf, Pod,
};
use tracing::debug;
use ward_common::{
    map_names, HostKeyV4, HostKeyV6, NetKeyV6, RulePair, RulePairKey, RuleRange, NET_V6_PREFIX,
    SLOT_RULE_RANGES,
};

use super::{
    batch::{self, BatchError, Path},
    map_err,
    slot_entries::{delta, Entry, SlotEntries},
    DataplaneError,
};

/// The maps a policy is written into (both slots in each).
pub const POLICY_MAPS: [&str; 7] = [
    map_names::ZONES_V4,
    map_names::ZONES_V6,
    map_names::HOSTS_V4,
    map_names::HOSTS_V6,
    map_names::NETS_V6,
    map_names::RULE_PAIRS,
    map_names::RULE_RANGES,
];

/// Entries removed and written by one [`write_slot`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Entries removed.
    pub removed: usize,
    /// Entries inserted or updated.
    pub written: usize,
}

impl std::ops::AddAssign for Written {
    fn add_assign(&mut self, other: Self) {
        self.removed += other.removed;
        self.written += other.written;
    }
}

/// Makes `slot` hold `new`: with `held` (what the slot holds), removes what `new`
/// lacks and writes what is new or changed; without it, removes every entry of the
/// slot `new` lacks, then writes all of `new`. Removing first, a map never holds more
/// than the policy in force plus the new one, each at most half of it
/// (`policy::capacity`), so a reload cannot fail half-way for room.
///
/// The maps are written by two threads (each map has its own lock in the kernel): one
/// writes the rule tables and the IPv4 zone maps, this one the IPv6 zone maps, about
/// half the entries each at 100,000 prefixes per family. On failure, what the other
/// thread was writing is finished or has failed too before this returns; the slot is
/// then unknown to the caller either way.
pub fn write_slot(
    ebpf: &mut Ebpf,
    slot: u8,
    new: &SlotEntries,
    held: Option<&SlotEntries>,
) -> Result<Written, DataplaneError> {
    let mut maps: std::collections::HashMap<&str, &mut Map> = (ebpf.maps_mut())
        .filter(|(name, _)| POLICY_MAPS.contains(name))
        .collect();
    let mut take = |name: &'static str| maps.remove(name).ok_or(DataplaneError::Missing(name));
    let (pairs, ranges) = (take(map_names::RULE_PAIRS)?, take(map_names::RULE_RANGES)?);
    let (zones_v4, zones_v6) = (take(map_names::ZONES_V4)?, take(map_names::ZONES_V6)?);
    let (hosts_v4, hosts_v6, nets_v6) = (
        take(map_names::HOSTS_V4)?,
        take(map_names::HOSTS_V6)?,
        take(map_names::NETS_V6)?,
    );
    std::thread::scope(|s| {
        let rules_v4 = s.spawn(move || {
            let mut written = write_rules(pairs, ranges, slot, new, held)?;
            let hosts_v4 = (hosts_v4, map_names::HOSTS_V4, 32);
            written += write_hash(hosts_v4, slot, &new.hosts_v4, held.map(|h| &h.hosts_v4[..]))?;
            let v4 = held.map(|h| &h.v4[..]);
            written += write_trie(zones_v4, map_names::ZONES_V4, slot, &new.v4, v4)?;
            Ok::<_, DataplaneError>(written)
        });
        let v6 = (|| {
            let hosts_v6 = (hosts_v6, map_names::HOSTS_V6, 128);
            let mut written =
                write_hash(hosts_v6, slot, &new.hosts_v6, held.map(|h| &h.hosts_v6[..]))?;
            let nets_v6 = (nets_v6, map_names::NETS_V6, u32::from(NET_V6_PREFIX));
            written += write_hash(nets_v6, slot, &new.nets_v6, held.map(|h| &h.nets_v6[..]))?;
            let v6 = held.map(|h| &h.v6[..]);
            written += write_trie(zones_v6, map_names::ZONES_V6, slot, &new.v6, v6)?;
            Ok::<_, DataplaneError>(written)
        })();
        let mut written = match rules_v4.join() {
            Ok(written) => written?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        written += v6?;
        Ok(written)
    })
}

/// A key that names its slot.
trait Slotted: Pod + Ord {
    fn slot(&self) -> u8;
    /// The same key in `slot`.
    fn in_slot(self, slot: u8) -> Self;
}

/// Trie key data: the slot is the first byte.
impl<const N: usize> Slotted for [u8; N]
where
    [u8; N]: Pod,
{
    fn slot(&self) -> u8 {
        self[0]
    }

    fn in_slot(mut self, slot: u8) -> Self {
        self[0] = slot;
        self
    }
}

/// Zone hash keys: the slot is a field.
macro_rules! slotted_field {
    ($($key:ty),*) => {$(
        impl Slotted for $key {
            fn slot(&self) -> u8 {
                self.slot
            }

            fn in_slot(mut self, slot: u8) -> Self {
                self.slot = slot;
                self
            }
        }
    )*};
}
slotted_field!(HostKeyV4, HostKeyV6, NetKeyV6, RulePairKey);

/// Indices of the range array: each slot has its part, `SLOT_RULE_RANGES` long.
impl Slotted for u32 {
    fn slot(&self) -> u8 {
        (self / SLOT_RULE_RANGES) as u8
    }

    fn in_slot(self, slot: u8) -> Self {
        self % SLOT_RULE_RANGES + u32::from(slot) * SLOT_RULE_RANGES
    }
}

/// Keys to remove (key in slot 0, prefix length) and entries to write.
type Plan<'a, K, V> = (Vec<(K, u32)>, Cow<'a, [Entry<K, V>]>);

/// What to remove from and write to `slot` of a map: the difference from `held`, or
/// without it, the keys of the slot (`pinned`, read only then, slot 0) that `new`
/// lacks and every entry of `new`.
fn plan<'a, K: Slotted + Copy, V: PartialEq + Copy>(
    new: &'a [Entry<K, V>],
    held: Option<&[Entry<K, V>]>,
    pinned: impl FnOnce() -> Vec<(K, u32)>,
) -> Plan<'a, K, V> {
    match held {
        Some(held) => {
            let d = delta(held, new);
            (d.remove, Cow::Owned(d.write))
        }
        None => {
            let stale = pinned()
                .into_iter()
                .filter(|(data, len)| {
                    new.binary_search_by(|(d, l, _)| (d, l).cmp(&(data, len)))
                        .is_err()
                })
                .collect();
            (stale, Cow::Borrowed(new))
        }
    }
}

/// Makes `slot` of the trie `map` (called `name`) hold `new` (see [`plan`] and
/// [`apply`]).
fn write_trie<K: Slotted + Copy>(
    map: &mut Map,
    name: &'static str,
    slot: u8,
    new: &[Entry<K>],
    held: Option<&[Entry<K>]>,
) -> Result<Written, DataplaneError> {
    let map = &*map;
    // Checks the map's type and its key and value sizes against `K` and `u32`.
    let trie: LpmTrie<&MapData, K, u32> = LpmTrie::try_from(map).map_err(map_err(name))?;
    let (remove, write) = plan(new, held, || {
        trie.keys()
            .filter_map(Result::ok)
            .filter(|k| k.data().slot() == slot)
            .map(|k| (k.data().in_slot(0), k.prefix_len()))
            .collect()
    });
    let Map::LpmTrie(data) = map else {
        return Err(DataplaneError::Missing(name));
    };
    let key = |data: K, len| Key::new(len, data.in_slot(slot));
    apply(data, name, &remove, &write, key)
}

/// [`write_trie`] for a hash: the map, its name and the prefix length its entries
/// have (the map implies it).
fn write_hash<K: Slotted + Copy, V: Pod + PartialEq>(
    (map, name, len): (&mut Map, &'static str, u32),
    slot: u8,
    new: &[Entry<K, V>],
    held: Option<&[Entry<K, V>]>,
) -> Result<Written, DataplaneError> {
    let map = &*map;
    // Checks the map's type and its key and value sizes against `K` and `V`.
    let hash: HashMap<&MapData, K, V> = HashMap::try_from(map).map_err(map_err(name))?;
    let (remove, write) = plan(new, held, || {
        hash.keys()
            .filter_map(Result::ok)
            .filter(|k| k.slot() == slot)
            .map(|k| (k.in_slot(0), len))
            .collect()
    });
    let Map::HashMap(data) = map else {
        return Err(DataplaneError::Missing(name));
    };
    apply(data, name, &remove, &write, |key: K, _| key.in_slot(slot))
}

/// Makes `slot` of the rule tables hold `new`'s: the ranges first, then the pairs
/// naming them. Nothing is removed from the range array (an element no pair names
/// is never read): its writes are the elements that differ from `held`, or all.
fn write_rules(
    pairs: &mut Map,
    ranges: &mut Map,
    slot: u8,
    new: &SlotEntries,
    held: Option<&SlotEntries>,
) -> Result<Written, DataplaneError> {
    let name = map_names::RULE_RANGES;
    let array = &*ranges;
    // Checks the map's type and its value size against `RuleRange`.
    Array::<&MapData, RuleRange>::try_from(array).map_err(map_err(name))?;
    let Map::Array(data) = array else {
        return Err(DataplaneError::Missing(name));
    };
    let (_, write) = plan(&new.ranges, held.map(|h| &h.ranges[..]), Vec::new);
    let mut written = apply(data, name, &[], &write, |index: u32, _| index.in_slot(slot))?;
    let pairs = (pairs, map_names::RULE_PAIRS, 0);
    written +=
        write_hash::<RulePairKey, RulePair>(pairs, slot, &new.pairs, held.map(|h| &h.pairs[..]))?;
    Ok(written)
}

/// Entries one batch call carries: few calls, and key and value buffers of a few
/// hundred KiB however large the policy.
const BATCH: usize = 16 * 1024;

/// Removes `remove` from the map `data` (called `name`), then writes `write`, by
/// batches of [`BATCH`] entries, or one call per entry where the kernel refuses
/// batches; `key` gives the map's key of (key data in slot 0, prefix length).
fn apply<K: Copy, M: Pod, V: Pod>(
    data: &MapData,
    name: &'static str,
    remove: &[(K, u32)],
    write: &[Entry<K, V>],
    key: impl Fn(K, u32) -> M,
) -> Result<Written, DataplaneError> {
    let mut keys: Vec<M> = Vec::with_capacity(BATCH.min(remove.len().max(write.len())));
    let mut values: Vec<V> = Vec::with_capacity(BATCH.min(write.len()));
    let refused = |path, what, at: usize| {
        if let Path::PerEntry { from } = path {
            debug!(
                "map {name}: the kernel refused a batch; entries from {} on {what} one call each",
                at + from
            );
        }
    };
    for (i, chunk) in remove.chunks(BATCH).enumerate() {
        keys.clear();
        keys.extend(chunk.iter().map(|&(k, len)| key(k, len)));
        let path = batch::delete(data, &keys).map_err(batch_err(name))?;
        refused(path, "removed", i * BATCH);
    }
    for (i, chunk) in write.chunks(BATCH).enumerate() {
        keys.clear();
        values.clear();
        for &(k, len, value) in chunk {
            keys.push(key(k, len));
            values.push(value);
        }
        let path = batch::update(data, &keys, &values).map_err(batch_err(name))?;
        refused(path, "written", i * BATCH);
    }
    Ok(Written {
        removed: remove.len(),
        written: write.len(),
    })
}

fn batch_err(name: &'static str) -> impl Fn(BatchError) -> DataplaneError {
    move |source| DataplaneError::Batch { name, source }
}
