//! The two connection tables (IPv4, IPv6) as one, for tests that read or age entries.
use aya::maps::HashMap;
use ward_common::{family, map_names, CtKey, CtKey4, CtValue};

use super::TestDataplane;

/// Every tracked connection, under its family-neutral key.
pub fn entries(t: &mut TestDataplane) -> Vec<(CtKey, CtValue)> {
    let v4: HashMap<_, CtKey4, CtValue> =
        HashMap::try_from(t.dp.ebpf().map(map_names::CONNTRACK_V4).unwrap()).unwrap();
    let mut all: Vec<(CtKey, CtValue)> = v4
        .iter()
        .filter_map(Result::ok)
        .map(|(k, v)| (k.key(), v))
        .collect();
    let v6: HashMap<_, CtKey, CtValue> =
        HashMap::try_from(t.dp.ebpf().map(map_names::CONNTRACK_V6).unwrap()).unwrap();
    all.extend(v6.iter().filter_map(Result::ok));
    all
}

/// Writes `value` as the entry of `key`, in its family's table.
pub fn write(t: &mut TestDataplane, key: &CtKey, value: CtValue) {
    if key.family == family::V4 {
        let mut v4: HashMap<_, CtKey4, CtValue> =
            HashMap::try_from(t.dp.ebpf().map_mut(map_names::CONNTRACK_V4).unwrap()).unwrap();
        v4.insert(CtKey4::of(key), value, 0).unwrap();
    } else {
        let mut v6: HashMap<_, CtKey, CtValue> =
            HashMap::try_from(t.dp.ebpf().map_mut(map_names::CONNTRACK_V6).unwrap()).unwrap();
        v6.insert(key, value, 0).unwrap();
    }
}

/// Empties both tables.
pub fn clear(t: &mut TestDataplane) {
    let mut v4: HashMap<_, CtKey4, CtValue> =
        HashMap::try_from(t.dp.ebpf().map_mut(map_names::CONNTRACK_V4).unwrap()).unwrap();
    let keys: Vec<CtKey4> = v4.keys().filter_map(Result::ok).collect();
    for k in keys {
        let _ = v4.remove(&k);
    }
    let mut v6: HashMap<_, CtKey, CtValue> =
        HashMap::try_from(t.dp.ebpf().map_mut(map_names::CONNTRACK_V6).unwrap()).unwrap();
    let keys: Vec<CtKey> = v6.keys().filter_map(Result::ok).collect();
    for k in keys {
        let _ = v6.remove(&k);
    }
}
