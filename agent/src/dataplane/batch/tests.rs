//! Batches against the kernel (as root: they fail without it, never skip): a batch leaves a hash or
//! a trie exactly as one call per entry does, a map that refuses batches gets its
//! entries one call each, and a batch that stops at an entry says where.
use aya::maps::{lpm_trie::Key, xdp::DevMap, HashMap, LpmTrie, Map, MapData};
use aya_obj::generated::bpf_map_type::{
    self, BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LPM_TRIE,
};
use ward_common::HostKeyV4;

use super::{delete, update, BatchError, Path};

/// `BPF_F_NO_PREALLOC`, which LPM tries require (and the zone hashes have).
const NO_PREALLOC: u32 = 1;

/// A fresh map of `map_type` with `K` keys and `V` values; fails without root.
fn map<K, V>(map_type: bpf_map_type, flags: u32) -> MapData {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests create BPF maps: run them as root (cargo xtask test does)"
    );
    let size = |n: usize| u32::try_from(n).unwrap();
    let obj = aya_obj::Map::new_from_params(
        map_type as u32,
        size(size_of::<K>()),
        size(size_of::<V>()),
        4096,
        flags,
    );
    MapData::create(obj, "ward_batch_test", None).expect("creating a test map")
}

/// Hosts of both slots, every third with another value.
fn hosts(n: u32) -> (Vec<HostKeyV4>, Vec<u32>) {
    (0..n)
        .map(|i| (HostKeyV4::new((i % 2) as u8, 0x0a00_0000 + i), 1 + i % 3))
        .unzip()
}

/// A hash map's entries, sorted.
fn hash_contents(map: Map) -> Vec<(HostKeyV4, u32)> {
    let hash: HashMap<MapData, HostKeyV4, u32> = HashMap::try_from(map).unwrap();
    let mut all: Vec<_> = hash.iter().map(Result::unwrap).collect();
    all.sort_unstable();
    all
}

#[test]
fn a_batch_leaves_a_hash_as_one_call_per_entry_does() {
    let (batched, each) = (
        map::<HostKeyV4, u32>(BPF_MAP_TYPE_HASH, 0),
        map::<HostKeyV4, u32>(BPF_MAP_TYPE_HASH, 0),
    );
    let (keys, values) = hosts(3000);
    assert_eq!(update(&batched, &keys, &values).unwrap(), Path::Batch);
    // Values changed on a third, then half of the keys removed.
    let changed: Vec<u32> = values.iter().map(|v| v * 7).collect();
    let path = update(&batched, &keys[..1000], &changed[..1000]);
    assert_eq!(path.unwrap(), Path::Batch);
    assert_eq!(delete(&batched, &keys[1500..]).unwrap(), Path::Batch);
    let mut each = Map::HashMap(each);
    {
        let mut hash: HashMap<&mut MapData, HostKeyV4, u32> = HashMap::try_from(&mut each).unwrap();
        for (k, v) in keys.iter().zip(&values) {
            hash.insert(k, v, 0).unwrap();
        }
        for (k, v) in keys[..1000].iter().zip(&changed) {
            hash.insert(k, v, 0).unwrap();
        }
        for k in &keys[1500..] {
            hash.remove(k).unwrap();
        }
    }
    let expected = hash_contents(each);
    assert_eq!(expected.len(), 1500);
    assert_eq!(hash_contents(Map::HashMap(batched)), expected);
}

#[test]
fn a_map_that_refuses_batches_gets_one_call_per_entry() {
    // A device map has no batch operations on any kernel; its values are interfaces
    // (and a program, -1 for none).
    let devices = map::<u32, [u32; 2]>(BPF_MAP_TYPE_DEVMAP, 0);
    let loopback = nix::net::if_::if_nametoindex("lo").expect("lo exists");
    let (keys, values) = ([0u32, 1, 2, 3], [[loopback, u32::MAX]; 4]);
    let path = update(&devices, &keys, &values);
    assert_eq!(path.unwrap(), Path::PerEntry { from: 0 });
    assert_eq!(
        delete(&devices, &keys[2..]).unwrap(),
        Path::PerEntry { from: 0 }
    );
    // An entry refused on its own is an error naming it (no such interface).
    match update(&devices, &keys[3..], &[[i32::MAX as u32, u32::MAX]]) {
        Err(BatchError::Entry {
            op: "update",
            index: 0,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let devices: DevMap<MapData> = DevMap::try_from(Map::DevMap(devices)).unwrap();
    for key in 0..4 {
        let value = devices.get(key, 0).ok().map(|v| v.if_index);
        let expected = (key < 2).then_some(loopback);
        assert_eq!(value, expected, "entry {key}");
    }
}

#[test]
fn a_trie_written_by_batch_holds_what_one_call_per_entry_writes() {
    type K = Key<[u8; 5]>;
    let (batched, each) = (
        map::<K, u32>(BPF_MAP_TYPE_LPM_TRIE, NO_PREALLOC),
        map::<K, u32>(BPF_MAP_TYPE_LPM_TRIE, NO_PREALLOC),
    );
    // Prefixes of both slots (the slot is the first byte): /32s, and /24s.
    let data = |i: u32| {
        let [a, b, c, _] = (0x0a00_0000 + (i << 8)).to_be_bytes();
        [(i % 2) as u8, a, b, c, 0]
    };
    let keys: Vec<K> = (0..600)
        .map(|i| Key::new(if i % 50 == 0 { 8 + 24 } else { 8 + 32 }, data(i)))
        .collect();
    let values: Vec<u32> = (0..600).collect();
    update(&batched, &keys, &values).unwrap();
    delete(&batched, &keys[400..]).unwrap();
    let mut each = Map::LpmTrie(each);
    {
        let mut trie: LpmTrie<&mut MapData, [u8; 5], u32> = LpmTrie::try_from(&mut each).unwrap();
        for (k, v) in keys.iter().zip(&values) {
            trie.insert(k, v, 0).unwrap();
        }
        for k in &keys[400..] {
            trie.remove(k).unwrap();
        }
    }
    let contents = |map: Map| {
        let trie: LpmTrie<MapData, [u8; 5], u32> = LpmTrie::try_from(map).unwrap();
        let mut all: Vec<_> = (trie.iter().map(Result::unwrap))
            .map(|(k, v)| (k.prefix_len(), k.data(), v))
            .collect();
        all.sort_unstable();
        all
    };
    let expected = contents(each);
    assert_eq!(expected.len(), 400);
    assert_eq!(contents(Map::LpmTrie(batched)), expected);
}

#[test]
fn a_batch_that_stops_at_an_entry_says_where() {
    let hash = map::<HostKeyV4, u32>(BPF_MAP_TYPE_HASH, 0);
    let (keys, values) = hosts(10);
    update(&hash, &keys[..6], &values[..6]).unwrap();
    // The 7th key is not there: the first six are removed, then the batch stops.
    match delete(&hash, &keys) {
        Err(BatchError::Batch {
            op: "delete",
            done: 6,
            count: 10,
            source,
        }) => assert_eq!(source.raw_os_error(), Some(nix::libc::ENOENT)),
        other => panic!("{other:?}"),
    }
    // Entries of another size than the map's are refused before any call.
    assert!(matches!(
        update(&hash, &[0u32], &[0u32]),
        Err(BatchError::Size { key: 4, .. })
    ));
}
