//! Reading the kernel's counters from the pinned maps, by zone name.
use std::{collections::BTreeMap, path::Path};

use aya::maps::{HashMap, Map, MapData, PerCpuArray, PerCpuHashMap, PerCpuValues};
use ward_common::{
    map_names, reason_counter_index, Counter, CtKey, CtKey4, CtValue, EventCounter, PairSlot,
    Reason, Verdict, ZonePairKey, PAIR_CACHE_PER_SLOT,
};

use super::{map_err, DataplaneError};
use crate::state::PolicyNames;

/// The kernel counters, shared between the metrics endpoint, the control socket and
/// the daemon (which harvests a slot before rewriting it).
pub type SharedCounters = std::sync::Arc<std::sync::Mutex<Counters>>;

/// Packets and bytes by (source zone name, destination zone name, verdict).
pub type ZonePairTotals = BTreeMap<(String, String, Verdict), Counter>;

/// Counters read at one moment.
#[derive(Clone, Debug, Default)]
pub struct CounterSnapshot {
    /// By zone pair and verdict, summed over CPUs and over counts harvested from
    /// earlier generations.
    pub zone_pairs: ZonePairTotals,
    /// By reason and the verdict applied (audit for denials that audit mode passed),
    /// summed over CPUs.
    pub reasons: Vec<(Reason, Verdict, Counter)>,
    /// Events written to the ring buffer.
    pub events_emitted: u64,
    /// Events not written because their source exceeded its budget.
    pub events_suppressed: u64,
    /// Events not written because the ring buffer was full.
    pub events_lost: u64,
    /// Tracked connections, both families.
    pub conntrack_entries: u64,
    /// Capacity of the connection tables together.
    pub conntrack_capacity: u64,
    /// Each connection table: IPv4, then IPv6.
    pub conntrack_tables: [TableFill; 2],
}

/// How full one connection table is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableFill {
    /// Entries (idle ones included until the table evicts them).
    pub entries: u64,
    /// Capacity.
    pub capacity: u64,
}

/// Handles on the counter maps, opened from their pins (independent of the loader).
pub struct Counters {
    zone_pairs: PerCpuHashMap<MapData, ZonePairKey, Counter>,
    pair_cache: PerCpuArray<MapData, PairSlot>,
    reasons: PerCpuArray<MapData, Counter>,
    events: PerCpuArray<MapData, u64>,
    conntrack_v4: HashMap<MapData, CtKey4, CtValue>,
    conntrack_v6: HashMap<MapData, CtKey, CtValue>,
    conntrack_capacity: [u32; 2],
    /// Counts of slots rewritten since, by names, so totals never go backwards.
    harvested: ZonePairTotals,
}

impl Counters {
    /// Opens the pinned counter maps in `pin_dir`.
    pub fn open(pin_dir: &Path) -> Result<Self, DataplaneError> {
        let open = |name: &'static str| -> Result<MapData, DataplaneError> {
            MapData::from_pin(pin_dir.join(name)).map_err(map_err(name))
        };
        let conntrack_v4 = open(map_names::CONNTRACK_V4)?;
        let conntrack_v6 = open(map_names::CONNTRACK_V6)?;
        let capacity = |m: &MapData, name: &'static str| {
            m.info().map(|i| i.max_entries()).map_err(map_err(name))
        };
        let conntrack_capacity = [
            capacity(&conntrack_v4, map_names::CONNTRACK_V4)?,
            capacity(&conntrack_v6, map_names::CONNTRACK_V6)?,
        ];
        Ok(Counters {
            zone_pairs: PerCpuHashMap::try_from(Map::PerCpuHashMap(open(
                map_names::ZONE_PAIR_COUNTERS,
            )?))
            .map_err(map_err(map_names::ZONE_PAIR_COUNTERS))?,
            pair_cache: PerCpuArray::try_from(Map::PerCpuArray(open(map_names::PAIR_CACHE)?))
                .map_err(map_err(map_names::PAIR_CACHE))?,
            reasons: PerCpuArray::try_from(Map::PerCpuArray(open(map_names::REASON_COUNTERS)?))
                .map_err(map_err(map_names::REASON_COUNTERS))?,
            events: PerCpuArray::try_from(Map::PerCpuArray(open(map_names::EVENT_COUNTERS)?))
                .map_err(map_err(map_names::EVENT_COUNTERS))?,
            conntrack_v4: HashMap::try_from(Map::LruHashMap(conntrack_v4))
                .map_err(map_err(map_names::CONNTRACK_V4))?,
            conntrack_v6: HashMap::try_from(Map::LruHashMap(conntrack_v6))
                .map_err(map_err(map_names::CONNTRACK_V6))?,
            conntrack_capacity,
            harvested: ZonePairTotals::new(),
        })
    }

    /// Moves the counts of `slot` into the by-name totals (when `names` says whose ids
    /// they are; counts left by an earlier agent process are unnamed and dropped) and
    /// deletes them from the map; the daemon calls it before it rewrites `slot`.
    pub fn harvest(&mut self, slot: u8, names: Option<&PolicyNames>) -> Result<(), DataplaneError> {
        let keys: Vec<ZonePairKey> = self
            .zone_pairs
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.slot == u32::from(slot))
            .collect();
        for key in keys {
            if let (Some(names), Ok(values)) = (names, self.zone_pairs.get(&key, 0)) {
                if let Some(name) = by_name(&key, names) {
                    add(&mut self.harvested, name, sum(values.iter()));
                }
            }
            let _ = self.zone_pairs.remove(&key);
        }
        let first = u32::from(slot & 1) * PAIR_CACHE_PER_SLOT;
        for index in first..first + PAIR_CACHE_PER_SLOT {
            let Ok(values) = self.pair_cache.get(&index, 0) else {
                continue;
            };
            if values.iter().all(|e| e.counter.packets == 0) {
                continue;
            }
            for e in values.iter().filter(|e| e.counter.packets != 0) {
                if let Some(name) = names.and_then(|n| by_name(&e.key, n)) {
                    add(&mut self.harvested, name, e.counter);
                }
            }
            let empty = vec![PairSlot::default(); values.iter().count()];
            if let Ok(empty) = PerCpuValues::try_from(empty) {
                let _ = self.pair_cache.set(index, empty, 0);
            }
        }
        Ok(())
    }

    /// One event counter, summed over the CPUs.
    pub fn events(&self, c: EventCounter) -> Result<u64, DataplaneError> {
        let values = self
            .events
            .get(&(c as u32), 0)
            .map_err(map_err(map_names::EVENT_COUNTERS))?;
        Ok(values.iter().sum())
    }

    /// Reads every counter now. `slots` names the ids of each slot's policy.
    pub fn snapshot(
        &self,
        slots: &[Option<PolicyNames>; 2],
    ) -> Result<CounterSnapshot, DataplaneError> {
        let mut zone_pairs = self.harvested.clone();
        for entry in self.zone_pairs.iter() {
            let (key, values) = entry.map_err(map_err(map_names::ZONE_PAIR_COUNTERS))?;
            let Some(names) = slots.get(key.slot as usize).and_then(Option::as_ref) else {
                continue;
            };
            if let Some(name) = by_name(&key, names) {
                add(&mut zone_pairs, name, sum(values.iter()));
            }
        }
        for index in 0..2 * PAIR_CACHE_PER_SLOT {
            let values = self
                .pair_cache
                .get(&index, 0)
                .map_err(map_err(map_names::PAIR_CACHE))?;
            for e in values.iter().filter(|e| e.counter.packets != 0) {
                let Some(names) = slots.get(e.key.slot as usize).and_then(Option::as_ref) else {
                    continue;
                };
                if let Some(name) = by_name(&e.key, names) {
                    add(&mut zone_pairs, name, e.counter);
                }
            }
        }
        let mut reasons = Vec::new();
        for reason in Reason::ALL {
            for verdict in Verdict::ALL {
                let index = reason_counter_index(reason, verdict);
                let values = self
                    .reasons
                    .get(&index, 0)
                    .map_err(map_err(map_names::REASON_COUNTERS))?;
                reasons.push((reason, verdict, sum(values.iter())));
            }
        }
        let tables = [
            TableFill {
                entries: self.conntrack_v4.keys().filter(Result::is_ok).count() as u64,
                capacity: u64::from(self.conntrack_capacity[0]),
            },
            TableFill {
                entries: self.conntrack_v6.keys().filter(Result::is_ok).count() as u64,
                capacity: u64::from(self.conntrack_capacity[1]),
            },
        ];
        Ok(CounterSnapshot {
            zone_pairs,
            reasons,
            events_emitted: self.events(EventCounter::Emitted)?,
            events_suppressed: self.events(EventCounter::Suppressed)?,
            events_lost: self.events(EventCounter::Lost)?,
            conntrack_entries: tables.iter().map(|t| t.entries).sum(),
            conntrack_capacity: tables.iter().map(|t| t.capacity).sum(),
            conntrack_tables: tables,
        })
    }
}

/// The names of a counter key; `None` for a verdict code this build does not know.
fn by_name(key: &ZonePairKey, names: &PolicyNames) -> Option<(String, String, Verdict)> {
    let verdict = Verdict::from_code(key.verdict)?;
    Some((names.zone(key.src_zone), names.zone(key.dst_zone), verdict))
}

fn sum<'a>(values: impl Iterator<Item = &'a Counter>) -> Counter {
    values.fold(Counter::default(), |a, c| Counter {
        packets: a.packets + c.packets,
        bytes: a.bytes + c.bytes,
    })
}

fn add(totals: &mut ZonePairTotals, key: (String, String, Verdict), c: Counter) {
    let t = totals.entry(key).or_default();
    t.packets += c.packets;
    t.bytes += c.bytes;
}
