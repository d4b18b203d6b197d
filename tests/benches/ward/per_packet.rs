//! Per-packet cost through `BPF_PROG_TEST_RUN`: Ward's XDP program against the
//! `XDP_PASS` floor, on the same frames, for several policy sizes.
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use serde_json::{json, Value};
use ward::dataplane::Dataplane;
use ward_common::program_names::{BENCH_FLOOR, XDP_INGRESS};

use crate::generated::{self, ALLOWED_PORT, DENIED_PORT};
use crate::support::frames::{FrameSpec, ACK, L4};
use crate::support::{DROP, PASS};
use crate::sys::median;
use crate::Opts;

/// Runs `program` `repeat` times on `frame`; its action and the kernel's mean ns per run.
pub fn run(dp: &mut Dataplane, program: &str, frame: &[u8], repeat: u32) -> Result<(u32, f64)> {
    let p: &Xdp = dp
        .ebpf()
        .program(program)
        .with_context(|| format!("no program {program}"))?
        .try_into()?;
    let r = p
        .test_run(TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..TestRunOptions::new()
        })
        .with_context(|| format!("BPF_PROG_TEST_RUN {program}"))?;
    Ok((r.return_value, r.duration.as_nanos() as f64))
}

/// Loads the floor program (`Dataplane::load` loads only Ward's own).
pub fn load_floor(dp: &mut Dataplane) -> Result<()> {
    let p: &mut Xdp = dp
        .ebpf()
        .program_mut(BENCH_FLOOR)
        .context("no floor program in the object")?
        .try_into()?;
    p.load().context("loading the floor program")
}

/// Opens a TCP connection `src`:`sport` → `dst`:`ALLOWED_PORT` through Ward's XDP
/// program (SYN, SYN-ACK, ACK) and returns its client's next data segment, the frame
/// an established connection carries.
pub fn established(dp: &mut Dataplane, src: &str, dst: &str, sport: u16) -> Result<Vec<u8>> {
    let syn = FrameSpec::new(src, dst, L4::Tcp(sport, ALLOWED_PORT));
    let data = syn.clone().flags(ACK);
    for f in [&syn, &syn.reply(), &data] {
        let action = run(dp, XDP_INGRESS, &f.build(), 1)?.0;
        if action != PASS {
            bail!("handshake {src}:{sport} -> {dst}:{ALLOWED_PORT}: {f:?} dropped ({action})");
        }
    }
    Ok(data.build())
}

/// Floor and Ward medians (ns per packet) for one frame, interleaving their repetitions.
pub fn pair(dp: &mut Dataplane, frame: &[u8], want: u32, o: &Opts) -> Result<(f64, f64)> {
    let (mut floor, mut ward) = (Vec::new(), Vec::new());
    for _ in 0..o.reps {
        floor.push(run(dp, BENCH_FLOOR, frame, o.repeat)?.1);
        let (action, ns) = run(dp, XDP_INGRESS, frame, o.repeat)?;
        if action != want {
            bail!("Ward returned XDP action {action}, expected {want}");
        }
        ward.push(ns);
    }
    Ok((median(&mut floor), median(&mut ward)))
}

/// Source ports of "new flow" frames: unique over the whole run, so each frame opens a flow.
static NEXT_SPORT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1024);

/// A source port no earlier "new flow" frame of this run used.
pub fn next_sport() -> Result<u16> {
    let sport = NEXT_SPORT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    u16::try_from(sport).context("out of distinct source ports for new flows")
}

/// New allowed flows: `repeat = 1` on `count` distinct frames (distinct source ports),
/// each the first packet of its flow; the floor runs the same way, and so does the
/// established frame `est` (what a single run costs without opening a flow).
/// Returns the floor, new-flow and established medians.
pub fn new_flows(
    dp: &mut Dataplane,
    (src, dst): (&str, &str),
    est: &[u8],
    count: usize,
) -> Result<(f64, f64, f64)> {
    let (mut floor, mut ward, mut established) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..count {
        established.push(run(dp, XDP_INGRESS, est, 1)?.1);
        let sport = next_sport()?;
        let f = FrameSpec::new(src, dst, L4::Tcp(sport, ALLOWED_PORT)).build();
        let (action, ns) = run(dp, XDP_INGRESS, &f, 1)?;
        if action != PASS {
            bail!(
                "new allowed flow {src}:{sport} -> {dst}:{ALLOWED_PORT} was not passed ({action})"
            );
        }
        ward.push(ns);
        floor.push(run(dp, BENCH_FLOOR, &f, 1)?.1);
    }
    Ok((
        median(&mut floor),
        median(&mut ward),
        median(&mut established),
    ))
}

/// A frame whose IP header does not fit (`deny, malformed`).
fn malformed(v6: bool) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    f.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    f.extend_from_slice(&[if v6 { 0x60 } else { 0x45 }, 0, 0, 40, 0, 0, 0, 0, 64, 6]);
    f
}

/// A per-packet cell: floor, Ward and their difference (ns).
pub fn cell(floor: f64, ward: f64) -> Value {
    json!({ "floor_ns": floor, "ward_ns": ward, "delta_ns": ward - floor })
}

/// The rows of `rounds` (each round's rows of the same cells, in the same order) as
/// one: each cell's floor and Ward figures are the medians of the rounds' (so that a
/// round the shared machine slowed down does not decide), and its `delta_ns_rounds`
/// keeps every round's difference.
pub fn combine(rounds: &[Vec<Value>]) -> Vec<Value> {
    const CELLS: [&str; 5] = [
        "established",
        "new",
        "established_repeat1",
        "denied",
        "malformed",
    ];
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    let mut out = first.clone();
    for (i, row) in out.iter_mut().enumerate() {
        for name in CELLS {
            let of = |field: &str| -> Vec<f64> {
                rounds
                    .iter()
                    .filter_map(|r| r.get(i)?[name][field].as_f64())
                    .collect()
            };
            let (mut floor, mut ward) = (of("floor_ns"), of("ward_ns"));
            let mut c = cell(median(&mut floor), median(&mut ward));
            c["delta_ns_rounds"] = json!(of("delta_ns"));
            row[name] = c;
        }
    }
    out
}

/// Compiles, applies and measures one policy; a JSON row per family and the operation times.
pub fn policy(
    dp: &mut Dataplane,
    cidrs: usize,
    rules: usize,
    o: &Opts,
) -> Result<(Vec<Value>, Value)> {
    let p = generated::zone_policy(cidrs, rules);
    let t0 = Instant::now();
    let loaded = ward::policy::load_str("bench.toml", &p.text)
        .map_err(|d| anyhow::anyhow!("generated policy refused: {:?}", d.first()))?;
    let compiled_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    dp.apply(&loaded.compiled).context("apply")?;
    let applied_s = t1.elapsed().as_secs_f64();
    let c = &loaded.compiled;
    let ops = json!({
        "cidrs": cidrs, "rules": rules, "zones": p.zones,
        "v4_prefixes": c.v4.len(), "v6_prefixes": c.v6.len(), "rule_entries": c.rules.len(),
        "compile_s": compiled_s, "apply_s": applied_s, "total_s": compiled_s + applied_s,
    });
    eprintln!(
        "bench: policy {cidrs} CIDRs/{rules} rules: compiled in {compiled_s:.3} s, applied in {applied_s:.3} s ({} zone prefixes and rule ranges)",
        c.v4.len() + c.v6.len() + c.rules.len()
    );
    let mut rows = Vec::new();
    for (fam, v6) in [("IPv4", false), ("IPv6", true)] {
        let (src, dst) = (&p.src[v6 as usize], &p.dst[v6 as usize]);
        let est = established(dp, src, dst, next_sport()?)
            .with_context(|| format!("{fam} allowed flow"))?;
        let (ef, ew) = pair(dp, &est, PASS, o)?;
        let per_round = o.new_flows / o.rounds.max(1);
        let (nf, nw, ew1) = new_flows(dp, (src, dst), &est, per_round)?;
        let denied = FrameSpec::new(src, dst, L4::Tcp(40_000, DENIED_PORT)).build();
        let (df, dw) = pair(dp, &denied, DROP, o)?;
        let (mf, mw) = pair(dp, &malformed(v6), DROP, o)?;
        rows.push(json!({
            "cidrs": cidrs, "rules": rules, "family": fam,
            "established": cell(ef, ew), "new": cell(nf, nw), "established_repeat1": cell(nf, ew1),
            "denied": cell(df, dw), "malformed": cell(mf, mw),
        }));
    }
    Ok((rows, ops))
}
