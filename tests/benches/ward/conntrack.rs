//! The connection table: filled to 1,000,000 entries (fill time, memory, per-packet
//! cost), and at capacity, where every new flow evicts the least recently used one.
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use aya::maps::HashMap;
use serde_json::{json, Value};
use ward::dataplane::{Dataplane, LoadOptions};
use ward_common::{
    map_names::CONNTRACK_V4,
    program_names::{BENCH_FLOOR, XDP_INGRESS},
    CtKey4, CtValue, CT_INITIATOR_A,
};

use crate::generated::{self, ALLOWED_PORT};
use crate::per_packet::{self, cell, new_flows, next_sport, pair, run};
use crate::support::frames::{FrameSpec, L4};
use crate::support::{TestDataplane, PASS};
use crate::sys::median;
use crate::Opts;

/// Inserts `n` distinct IPv4 TCP connections (none of them a bench frame's) from user
/// space, as the programs would have tracked them under policy `generation`.
fn fill(dp: &mut Dataplane, n: u32, generation: u64) -> Result<()> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: fills the timespec; CLOCK_MONOTONIC is bpf_ktime_get_ns's clock.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let now = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    let map = dp
        .ebpf()
        .map_mut(CONNTRACK_V4)
        .context("no conntrack map")?;
    let mut ct: HashMap<_, CtKey4, CtValue> = HashMap::try_from(map)?;
    for i in 0..n {
        let key = CtKey4 {
            addr_a: u32::from_be_bytes([198, 18, (i >> 8) as u8, i as u8]),
            addr_b: u32::from_be_bytes([198, 19, 0, (i >> 16) as u8]),
            port_a: 1024,
            port_b: 443,
            proto: ward_common::proto::TCP,
            _pad: 0,
            _pad2: 0,
        };
        let value = CtValue {
            last_seen_ns: now,
            generation,
            rule_id: 0,
            src_zone: 1,
            dst_zone: 2,
            flags: CT_INITIATOR_A,
            tcp_state: ward_common::tcp_state::ESTABLISHED,
            ..CtValue::default()
        };
        ct.insert(key, value, 0).context("conntrack insert")?;
    }
    Ok(())
}

/// Entries in the IPv4 connection table now.
fn entries(dp: &mut Dataplane) -> Result<usize> {
    let map = dp.ebpf().map(CONNTRACK_V4).context("no conntrack map")?;
    let ct: HashMap<_, CtKey4, CtValue> = HashMap::try_from(map)?;
    Ok(ct.keys().filter(Result::is_ok).count())
}

/// The conntrack table at 1,000,000 entries: fill time, memory, entries present, and the
/// cost of an established and a new flow with that many entries.
pub fn fill_1m(dp: &mut Dataplane, o: &Opts) -> Result<Value> {
    const N: u32 = 1_000_000;
    let generation = dp.config()?.generation;
    let memlock_before = crate::sys::map_memlock(std::process::id())?
        .get(CONNTRACK_V4)
        .map_or(0, |v| v.0);
    {
        // Start from an empty table (the earlier measurements left flows in it).
        let map = dp
            .ebpf()
            .map_mut(CONNTRACK_V4)
            .context("no conntrack map")?;
        let mut ct: HashMap<_, CtKey4, CtValue> = HashMap::try_from(map)?;
        let old: Vec<CtKey4> = ct.keys().filter_map(Result::ok).collect();
        for k in &old {
            let _ = ct.remove(k);
        }
    }
    let t0 = Instant::now();
    fill(dp, N, generation)?;
    let fill_s = t0.elapsed().as_secs_f64();
    let present = entries(dp)?;
    let (memlock, max_entries) = crate::sys::map_memlock(std::process::id())?
        .get(CONNTRACK_V4)
        .copied()
        .unwrap_or((0, 0));
    let p = generated::zone_policy(10, 10);
    let loaded =
        ward::policy::load_str("bench.toml", &p.text).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    dp.apply(&loaded.compiled)?;
    let est = per_packet::established(dp, &p.src[0], &p.dst[0], next_sport()?)?;
    let (ef, ew) = pair(dp, &est, PASS, o)?;
    let (nf, nw, ew1) = new_flows(dp, (&p.src[0], &p.dst[0]), &est, o.new_flows)?;
    eprintln!("bench: conntrack: {N} entries inserted in {fill_s:.2} s, {present} present; memlock {memlock} B");
    Ok(json!({
        "inserted": N, "entries_present": present, "capacity": max_entries,
        "fill_s": fill_s, "memlock_bytes": memlock, "memlock_bytes_empty": memlock_before,
        "established": cell(ef, ew), "new": cell(nf, nw), "established_repeat1": cell(nf, ew1),
    }))
}

/// Two tables of `o.ct_capacity` entries side by side, one empty and one filled past
/// its capacity: each new flow's first packet runs through both (inserts into the full
/// one evict), alternating which goes first; then one established flow through each.
/// Entries are counted before and after, to show the eviction.
pub fn at_capacity(o: &Opts) -> Result<Value> {
    let options = LoadOptions {
        conntrack_entries: Some(o.ct_capacity),
        ..Default::default()
    };
    let mut room = TestDataplane::with_options("bench-ct-room", &options);
    let mut full = TestDataplane::with_options("bench-ct-full", &options);
    per_packet::load_floor(&mut room.dp)?;
    let p = generated::zone_policy(10, 10);
    let loaded =
        ward::policy::load_str("bench.toml", &p.text).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let tables = [&mut room.dp, &mut full.dp];
    for dp in tables {
        dp.apply(&loaded.compiled)?;
    }
    let generation = full.dp.config()?.generation;
    fill(&mut full.dp, o.ct_capacity + o.ct_capacity / 8, generation)?;
    let before = [entries(&mut room.dp)?, entries(&mut full.dp)?];
    let (src, dst) = (&p.src[0], &p.dst[0]);
    let sport = next_sport()?;
    let est = per_packet::established(&mut room.dp, src, dst, sport)?;
    per_packet::established(&mut full.dp, src, dst, sport)?;
    let mut floor1 = Vec::new();
    let (mut new, mut est1) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for i in 0..o.new_flows {
        let sport = next_sport()?;
        let f = FrameSpec::new(src, dst, L4::Tcp(sport, ALLOWED_PORT)).build();
        floor1.push(run(&mut room.dp, BENCH_FLOOR, &f, 1)?.1);
        for k in [i % 2, 1 - i % 2] {
            let dp = if k == 0 { &mut room.dp } else { &mut full.dp };
            est1[k].push(run(dp, XDP_INGRESS, &est, 1)?.1);
            let (action, ns) = run(dp, XDP_INGRESS, &f, 1)?;
            if action != PASS {
                bail!("new allowed flow :{sport} was not passed ({action}) by the table {k}");
            }
            new[k].push(ns);
        }
    }
    let (mut floor, mut established) = (Vec::new(), [Vec::new(), Vec::new()]);
    for _ in 0..o.reps {
        floor.push(run(&mut room.dp, BENCH_FLOOR, &est, o.repeat)?.1);
        for (k, dp) in [&mut room.dp, &mut full.dp].into_iter().enumerate() {
            established[k].push(run(dp, XDP_INGRESS, &est, o.repeat)?.1);
        }
    }
    let after = [entries(&mut room.dp)?, entries(&mut full.dp)?];
    let (f1, fr) = (median(&mut floor1), median(&mut floor));
    let mut table = |k: usize| {
        json!({
            "entries_before": before[k], "entries_after": after[k],
            // The kernel evicts in batches: the mean carries their cost, the median not.
            "new_mean_ns": new[k].iter().sum::<f64>() / new[k].len().max(1) as f64,
            "new": cell(f1, median(&mut new[k])),
            "established": cell(fr, median(&mut established[k])),
            "established_repeat1": cell(f1, median(&mut est1[k])),
        })
    };
    eprintln!(
        "bench: conntrack at capacity {}: entries {before:?} -> {after:?} (empty, full)",
        o.ct_capacity
    );
    Ok(json!({ "capacity": o.ct_capacity, "empty": table(0), "full": table(1) }))
}
