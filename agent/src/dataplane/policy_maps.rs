//! Writing a compiled policy into one slot of the zone and rule tries: only the
//! difference from what the slot holds when the dataplane remembers it, else every
//! entry (after a restart, or a write that failed half-way).
//!
//! The tries are LPM tries, which the kernel cannot update in batches
//! (`BPF_MAP_UPDATE_BATCH` is refused for them): one `bpf()` call per entry written or
//! removed, hence the difference.
use std::borrow::Cow;

use aya::{
    maps::{lpm_trie::Key, LpmTrie, MapData},
    Ebpf, Pod,
};
use ward_common::map_names;

use super::{
    map_err,
    slot_entries::{delta, Entry, SlotEntries},
    DataplaneError,
};

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
/// slot `new` lacks, then writes all of `new`. Removing first, the table never holds
/// more than the policy in force plus the new one, each at most half of it
/// (`policy::capacity`), so a reload cannot fail half-way for room.
pub fn write_slot(
    ebpf: &mut Ebpf,
    slot: u8,
    new: &SlotEntries,
    held: Option<&SlotEntries>,
) -> Result<Written, DataplaneError> {
    let mut written = write_trie(
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

/// Key data whose first byte is the slot.
trait Slotted: Pod + Ord {
    fn slot(&self) -> u8;
    /// The same key data in `slot`.
    fn in_slot(self, slot: u8) -> Self;
}

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

fn write_trie<K: Slotted>(
    ebpf: &mut Ebpf,
    name: &'static str,
    slot: u8,
    new: &[Entry<K>],
    held: Option<&[Entry<K>]>,
) -> Result<Written, DataplaneError> {
    let map = ebpf.map_mut(name).ok_or(DataplaneError::Missing(name))?;
    let mut trie: LpmTrie<&mut MapData, K, u32> = LpmTrie::try_from(map).map_err(map_err(name))?;
    let (remove, write) = match held {
        Some(held) => {
            let d = delta(held, new);
            (d.remove, Cow::Owned(d.write))
        }
        None => {
            let stale = trie
                .keys()
                .filter_map(Result::ok)
                .filter(|k| k.data().slot() == slot)
                .map(|k| (k.data().in_slot(0), k.prefix_len()))
                .filter(|(data, len)| {
                    new.binary_search_by(|(d, l, _)| (d, l).cmp(&(data, len)))
                        .is_err()
                })
                .collect();
            (stale, Cow::Borrowed(new))
        }
    };
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
