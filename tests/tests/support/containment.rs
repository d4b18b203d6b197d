//! Shared by the containment kernel tests: their policy, hosts and helpers.
use std::net::IpAddr;

use aya::maps::{Array, HashMap};
use ward::dataplane::Counters;
use ward_common::{addr_from_bytes, addr_to_bytes, family, map_names, AddrKey, Config, Reason};

use super::{frames::FrameSpec, TestDataplane};

pub const POLICY: &str = r#"
[zones.imaging]
cidrs = ["198.18.20.0/24", "2001:db8:20::/64"]
[zones.pacs]
cidrs = ["198.18.21.0/24", "2001:db8:21::/64"]
[zones.billing]
cidrs = ["198.18.23.0/24", "2001:db8:23::/64"]
[zones.everything]
cidrs = ["0.0.0.0/0", "::/0"]

[[allow]]
from = "imaging"
to = "pacs"
tcp = [104]
icmp = true

[[allow]]
from = "everything"
to = "pacs"
tcp = [80]

[[allow]]
from = "imaging"
to = "everything"
tcp = [8080]
"#;

pub const IMAGING4: &str = "198.18.20.10";
pub const IMAGING6: &str = "2001:db8:20::10";
pub const PACS4: &str = "198.18.21.10";
pub const PACS6: &str = "2001:db8:21::10";
pub const BILLING4: &str = "198.18.23.10";
pub const BILLING6: &str = "2001:db8:23::10";

/// `TC_ACT_OK` and `TC_ACT_SHOT`.
pub const TC_OK: u32 = 0;
pub const TC_SHOT: u32 = 2;

pub fn loaded(tag: &str) -> TestDataplane {
    let mut t = TestDataplane::new(tag);
    t.apply_str(POLICY);
    set_config(&mut t, |c| {
        c.flows_per_source = 0;
        c.events_per_cpu = 0;
    });
    t
}

pub fn set_config(t: &mut TestDataplane, f: impl FnOnce(&mut Config)) {
    let mut config = t.dp.config().unwrap();
    f(&mut config);
    let mut array: Array<_, Config> =
        Array::try_from(t.dp.ebpf().map_mut(map_names::CONFIG).unwrap()).unwrap();
    array.set(0, config, 0).unwrap();
}

pub fn addr_key(addr: &str) -> AddrKey {
    let ip: IpAddr = addr.parse().unwrap();
    let (bytes, fam) = match ip {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            (b, family::V4)
        }
        IpAddr::V6(v6) => (v6.octets(), family::V6),
    };
    AddrKey {
        addr: addr_from_bytes(bytes),
        family: fam,
        _pad: 0,
        _pad2: 0,
    }
}

/// Makes `addr` one of "this host's" addresses, as the agent writes them (the table
/// and the filter in front of it), besides those it holds already.
pub fn own(t: &mut TestDataplane, addr: &str) {
    let mut addrs = owned(t);
    addrs.push(addr.parse().unwrap());
    t.dp.set_host_addrs(&addrs).unwrap();
}

/// The addresses in the own-address table.
pub fn owned(t: &mut TestDataplane) -> Vec<IpAddr> {
    let map: HashMap<_, AddrKey, u32> =
        HashMap::try_from(t.dp.ebpf().map_mut(map_names::HOST_ADDRS).unwrap()).unwrap();
    map.keys()
        .map(|k| {
            let k = k.unwrap();
            let bytes = addr_to_bytes(k.addr);
            if k.family == family::V4 {
                IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
            } else {
                IpAddr::from(bytes)
            }
        })
        .collect()
}

/// Puts `addr` into the own-address table alone, the filter in front of it left as
/// it is (as no agent writes it).
pub fn plant_own(t: &mut TestDataplane, addr: &str) {
    let mut map: HashMap<_, AddrKey, u32> =
        HashMap::try_from(t.dp.ebpf().map_mut(map_names::HOST_ADDRS).unwrap()).unwrap();
    map.insert(addr_key(addr), 1, 0).unwrap();
}

/// Packets counted under `reason` (any verdict) so far.
pub fn count(t: &TestDataplane, reason: Reason) -> u64 {
    let snap = Counters::open(t.dir())
        .unwrap()
        .snapshot(&[None, None])
        .unwrap();
    snap.reasons
        .iter()
        .filter(|(r, _, _)| *r == reason)
        .map(|(_, _, c)| c.packets)
        .sum()
}

/// Asserts the frame's XDP verdict and that it was counted under `reason`.
pub fn expect(t: &TestDataplane, f: &FrameSpec, verdict: u32, reason: Reason, what: &str) {
    let before = count(t, reason);
    assert_eq!(t.xdp(&f.build()), verdict, "{what}");
    assert_eq!(
        count(t, reason),
        before + 1,
        "{what}: counted as {}",
        reason.name()
    );
}

pub fn quote(f: &FrameSpec) -> Vec<u8> {
    let p = f.ip_packet();
    let hlen = if f.src.is_ipv6() { 40 } else { 20 };
    p[..hlen + 8].to_vec()
}
