//! Zone-pair counters in the kernel, through `BPF_PROG_TEST_RUN` (needs root): each
//! CPU counts a pair in its cache entry (one add) or, when another pair holds that
//! entry, in the hash map; the agent's totals are exact either way, and survive the
//! harvest that empties a slot before it is rewritten.
mod support;

use std::fmt::Write as _;

use support::{
    frames::{FrameSpec, L4},
    TestDataplane, DROP, PASS,
};
use ward::{dataplane::Counters, state::PolicyNames};
use ward_common::{pair_cache_index, Verdict, ZonePairKey, PAIR_CACHE_PER_SLOT};

/// Zones: more pairs than a slot's cache entries, so that pairs must share them.
const ZONES: usize = 50;

fn policy() -> String {
    let mut text = String::new();
    for z in 0..ZONES {
        writeln!(text, "[zones.z{z}]\ncidrs = [\"198.18.{z}.0/24\"]").unwrap();
    }
    text.push_str("[[allow]]\nfrom = \"z0\"\nto = \"z1\"\nudp = [2000]\n");
    text
}

/// One UDP datagram from each zone to each zone (all denied but z0 → z1).
fn send_all(t: &TestDataplane) {
    for a in 0..ZONES {
        for b in 0..ZONES {
            let f = FrameSpec::new(
                &format!("198.18.{a}.10"),
                &format!("198.18.{b}.20"),
                L4::Udp(1000 + b as u16, 2000),
            );
            let want = if (a, b) == (0, 1) { PASS } else { DROP };
            assert_eq!(t.xdp(&f.build()), want, "z{a} -> z{b}");
        }
    }
}

#[test]
fn every_pair_is_counted_exactly_whichever_table_holds_it() {
    let mut t = TestDataplane::new("pair-counters");
    let loaded = t.apply_str(&policy());
    let slot = (t.dp.config().unwrap().generation & 1) as u8;
    // The pigeonhole, checked with the kernel's own index function.
    let mut indices: Vec<u32> = (0..ZONES)
        .flat_map(|a| (0..ZONES).map(move |b| (a, b)))
        .map(|(a, b)| {
            let id = |z: usize| loaded.policy.zone_id(&format!("z{z}")).unwrap();
            pair_cache_index(&ZonePairKey {
                src_zone: id(a),
                dst_zone: id(b),
                verdict: Verdict::Deny as u32,
                slot: u32::from(slot),
            })
        })
        .collect();
    indices.sort_unstable();
    indices.dedup();
    assert!(
        indices.len() < ZONES * ZONES && indices.len() <= PAIR_CACHE_PER_SLOT as usize,
        "pairs share cache entries"
    );

    let mut names: [Option<PolicyNames>; 2] = [None, None];
    names[usize::from(slot)] = Some(PolicyNames::new(1, &loaded.compiled));
    let expect = |counters: &Counters, n: u64, when: &str| {
        let snap = counters.snapshot(&names).unwrap();
        for a in 0..ZONES {
            for b in 0..ZONES {
                let verdict = if (a, b) == (0, 1) {
                    Verdict::Allow
                } else {
                    Verdict::Deny
                };
                let got = snap
                    .zone_pairs
                    .get(&(format!("z{a}"), format!("z{b}"), verdict))
                    .map_or(0, |c| c.packets);
                assert_eq!(got, n, "{when}: z{a} -> z{b}");
            }
        }
    };
    send_all(&t);
    let mut counters = Counters::open(t.dir()).unwrap();
    expect(&counters, 1, "one round");
    // The daemon harvests a slot before rewriting it: the totals stay, and the
    // emptied cache entries count afresh.
    counters
        .harvest(slot, names[usize::from(slot)].as_ref())
        .unwrap();
    expect(&counters, 1, "harvested");
    send_all(&t);
    expect(&counters, 2, "a second round after the harvest");
}
