//! Writing a compiled policy into one slot of the zone and rule maps: only the
//! difference from what the slot holds when the dataplane remembers it, else every
//! entry (after a restart, or a write that failed half-way).
//!
//! The tries are LPM tries, which the kernel cannot update in batches
//! (`BPF_MAP_UPDATE_BATCH` is refused for them): one `bpf()` call per entry written or
//! removed, hence the difference. The zone hashes are written the same way.
use std::borrow::Cow;

use aya::{
    maps::{lpm_trie::Key, HashMap, LpmTrie, MapData},
    Ebpf, Pod,
};
use ward_common::{map_names, HostKeyV4, HostKeyV6, NetKeyV6, NET_V6_PREFIX};

use super::{
    map_err,
    slot_entries::{delta, Entry, SlotEntries},
    DataplaneError,
};

/// The maps a policy is written into (both slots in each).
pub const POLICY_MAPS: [&str; 6] = [
    map_names::ZONES_V4,
    map_names::ZONES_V6,
    map_names::HOSTS_V4,
    map_names::HOSTS_V6,
    map_names::NETS_V6,
    map_names::RULES,
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
pub fn write_slot(
    ebpf: &mut Ebpf,
    slot: u8,
    new: &SlotEntries,
    held: Option<&SlotEntries>,
) -> Result<Written, DataplaneError> {
    let mut written = Written::default();
    let hosts_v4 = (map_names::HOSTS_V4, 32);
    written += write_hash(
        ebpf,
        hosts_v4,
        slot,
        &new.hosts_v4,
        held.map(|h| &h.hosts_v4[..]),
    )?;
    let hosts_v6 = (map_names::HOSTS_V6, 128);
    written += write_hash(
        ebpf,
        hosts_v6,
        slot,
        &new.hosts_v6,
        held.map(|h| &h.hosts_v6[..]),
    )?;
    let nets_v6 = (map_names::NETS_V6, u32::from(NET_V6_PREFIX));
    written += write_hash(
        ebpf,
        nets_v6,
        slot,
        &new.nets_v6,
        held.map(|h| &h.nets_v6[..]),
    )?;
    written += write_trie(
        ebpf,
        map_names::ZONES_V4,
        slot,
        &new.v4,
        held.map(|h| &h.v4[..]),
    )?;
    written += write_trie(
        ebpf,
        map_names::ZONES_V6,
        slot,
        &new.v6,
        held.map(|h| &h.v6[..]),
    )?;
    written += write_trie(
        ebpf,
        map_names::RULES,
        slot,
        &new.rules,
        held.map(|h| &h.rules[..]),
    )?;
    Ok(written)
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
slotted_field!(HostKeyV4, HostKeyV6, NetKeyV6);

/// Keys to remove (key in slot 0, prefix length) and entries to write.
type Plan<'a, K> = (Vec<(K, u32)>, Cow<'a, [Entry<K>]>);

/// What to remove from and write to `slot` of a map: the difference from `held`, or
/// without it, the keys of the slot (`pinned`, read only then, slot 0) that `new`
/// lacks and every entry of `new`.
fn plan<'a, K: Slotted + Copy>(
    new: &'a [Entry<K>],
    held: Option<&[Entry<K>]>,
    pinned: impl FnOnce() -> Vec<(K, u32)>,
) -> Plan<'a, K> {
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

fn write_trie<K: Slotted + Copy>(
    ebpf: &mut Ebpf,
    name: &'static str,
    slot: u8,
    new: &[Entry<K>],
    held: Option<&[Entry<K>]>,
) -> Result<Written, DataplaneError> {
    let map = ebpf.map_mut(name).ok_or(DataplaneError::Missing(name))?;
    let mut trie: LpmTrie<&mut MapData, K, u32> = LpmTrie::try_from(map).map_err(map_err(name))?;
    let (remove, write) = plan(new, held, || {
        trie.keys()
            .filter_map(Result::ok)
            .filter(|k| k.data().slot() == slot)
            .map(|k| (k.data().in_slot(0), k.prefix_len()))
            .collect()
    });
    for &(data, len) in &remove {
        trie.remove(&Key::new(len, data.in_slot(slot)))
            .map_err(map_err(name))?;
    }
    for &(data, len, value) in write.iter() {
        trie.insert(&Key::new(len, data.in_slot(slot)), value, 0)
            .map_err(map_err(name))?;
    }
    Ok(Written {
        removed: remove.len(),
        written: write.len(),
    })
}

/// [`write_trie`] for a zone hash: `map` is its name and the prefix length its
/// entries have (the map implies it).
fn write_hash<K: Slotted + Copy>(
    ebpf: &mut Ebpf,
    (name, len): (&'static str, u32),
    slot: u8,
    new: &[Entry<K>],
    held: Option<&[Entry<K>]>,
) -> Result<Written, DataplaneError> {
    let map = ebpf.map_mut(name).ok_or(DataplaneError::Missing(name))?;
    let mut hash: HashMap<&mut MapData, K, u32> = HashMap::try_from(map).map_err(map_err(name))?;
    let (remove, write) = plan(new, held, || {
        hash.keys()
            .filter_map(Result::ok)
            .filter(|k| k.slot() == slot)
            .map(|k| (k.in_slot(0), len))
            .collect()
    });
    for &(key, _) in &remove {
        hash.remove(&key.in_slot(slot)).map_err(map_err(name))?;
    }
    for &(key, _, value) in write.iter() {
        hash.insert(key.in_slot(slot), value, 0)
            .map_err(map_err(name))?;
    }
    Ok(Written {
        removed: remove.len(),
        written: write.len(),
    })
}
