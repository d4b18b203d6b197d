//! The targets of the benchmark issue, read against the numbers (never asserted).
use serde_json::Value;

use crate::report::{f, mib, pp, thousands, tp};

/// Evaluates the targets of the benchmark issue; `None` where this run lacks the data.
pub fn targets(v: &Value) -> Vec<(String, Option<(String, bool)>)> {
    let mut t = Vec::new();
    let fams = ["IPv4", "IPv6"];
    let rows = v["per_packet"].as_array().cloned().unwrap_or_default();
    // The largest Ward − floor of a per-packet column over every policy and family.
    let worst_of = |column: &str| {
        rows.iter()
            .map(|r| f(&r[column]["delta_ns"]))
            .fold(f64::NAN, f64::max)
    };
    let est = worst_of("established");
    t.push((
        "established flow: Ward − floor ≤ 40 ns (worst policy and family)".into(),
        (!est.is_nan()).then(|| (format!("{est:.0} ns"), est <= 40.0)),
    ));
    let big = |flow: &str| -> Option<f64> {
        let x: Option<Vec<f64>> = fams
            .iter()
            .map(|fam| pp(v, 100_000, 10_000, fam).map(|r| f(&r[flow]["delta_ns"])))
            .collect();
        x.map(|x| x.into_iter().fold(f64::NAN, f64::max))
    };
    t.push((
        "denied flow at 100,000 CIDRs and 10,000 rules: Ward − floor ≤ 80 ns".into(),
        big("denied").map(|d| (format!("{d:.0} ns"), d <= 80.0)),
    ));
    t.push((
        "new allowed flow (first packet, conntrack insert) at 100,000 CIDRs and 10,000 rules: Ward − floor ≤ 250 ns".into(),
        big("new").map(|n| (format!("{n:.0} ns"), n <= 250.0)),
    ));
    let malformed = worst_of("malformed");
    t.push((
        "malformed frame: Ward − floor ≤ 15 ns (worst policy and family)".into(),
        (!malformed.is_nan()).then(|| (format!("{malformed:.0} ns"), malformed <= 15.0)),
    ));
    let mut worst: Option<(f64, String)> = None;
    for fam in fams {
        for flow in ["new", "denied"] {
            if let (Some(a), Some(b)) = (pp(v, 10, 10, fam), pp(v, 100_000, 10_000, fam)) {
                let (a, b) = (f(&a[flow]["delta_ns"]), f(&b[flow]["delta_ns"]));
                let ch = (b - a) / a * 100.0;
                if worst.as_ref().is_none_or(|(w, _)| ch.abs() > w.abs()) {
                    worst = Some((ch, format!("{fam} {flow}: {a:.0} → {b:.0} ns ({ch:+.0}%)")));
                }
            }
        }
    }
    t.push((
        "10 → 100,000 CIDRs and 10 → 10,000 rules change Ward − floor by < 15% (worst of new/denied)".into(),
        worst.map(|(ch, s)| (s, ch.abs() < 15.0)),
    ));
    let sizes: Vec<u64> = v["throughput"]
        .as_array()
        .map(|a| {
            let mut s: Vec<u64> = a.iter().filter_map(|r| r["entries"].as_u64()).collect();
            s.dedup();
            s
        })
        .unwrap_or_default();
    // Throughput targets on packets per CPU-second (1 / CPU per packet): on a shared
    // machine the wall-clock rate depends on how much of its CPU the generator got.
    let ratio = |n: u64, other: &str, traffic: &str| -> Option<f64> {
        Some(
            f(&tp(v, other, n)?[traffic]["cpu_ns_per_packet"])
                / f(&tp(v, "Ward", n)?[traffic]["cpu_ns_per_packet"]),
        )
    };
    for (filter, what) in [
        ("nft sets+vmap", "nftables with sets"),
        ("nft stateful sets+vmap", "stateful nftables with sets"),
    ] {
        let mut vs_nft = Vec::new();
        for &n in &sizes {
            for traffic in ["allowed", "denied"] {
                if let Some(r) = ratio(n, filter, traffic) {
                    vs_nft.push((r, format!("{} entries, {traffic}: {r:.2}×", thousands(n))));
                }
            }
        }
        t.push((
            format!("throughput: Ward ≥ {what} at every size (packets per CPU-second, Ward ÷ nft; worst)"),
            vs_nft.iter().min_by(|a, b| a.0.total_cmp(&b.0)).map(|(r, s)| (format!("{s} (worst of {})", vs_nft.len()), *r >= 1.0)),
        ));
    }
    // The fast-path issue's bar: 1.5× stateful nftables on allowed, 2× on denied traffic.
    let mut stateful: Vec<(f64, f64, String)> = Vec::new();
    for &n in &sizes {
        for (traffic, bar) in [("allowed", 1.5), ("denied", 2.0)] {
            if let Some(r) = ratio(n, "nft stateful sets+vmap", traffic) {
                stateful.push((
                    r / bar,
                    r,
                    format!("{} entries, {traffic}: {r:.2}×", thousands(n)),
                ));
            }
        }
    }
    t.push((
        "throughput: Ward ÷ stateful nftables with sets ≥ 1.5 allowed / ≥ 2 denied at every size (packets per CPU-second)".into(),
        stateful
            .iter()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(q, _, s)| (format!("{s} (worst against its bar, of {})", stateful.len()), *q >= 1.0)),
    ));
    let ipt: Vec<(f64, String)> = ["iptables rule per entry", "iptables-legacy rule per entry"]
        .iter()
        .flat_map(|fl| {
            ["allowed", "denied"].map(|tr| {
                ratio(10_000, fl, tr).map(|r| {
                    (
                        r,
                        format!("{} {tr} {r:.0}×", fl.split(' ').next().unwrap_or("")),
                    )
                })
            })
        })
        .flatten()
        .collect();
    t.push((
        "throughput at 10,000 rules: Ward ≥ 10× iptables (packets per CPU-second)".into(),
        (!ipt.is_empty()).then(|| {
            let min = ipt.iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
            (
                ipt.iter()
                    .map(|x| x.1.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
                min >= 10.0,
            )
        }),
    ));
    let apply = v["policy_ops"].as_array().and_then(|a| {
        a.iter()
            .find(|r| r["cidrs"] == 100_000 && r["rules"] == 10_000)
    });
    t.push((
        "compile + apply the 100,000-CIDR / 10,000-rule policy < 2 s".into(),
        apply.map(|r| {
            (
                format!(
                    "{:.2} s (compile {:.2} + apply {:.2})",
                    f(&r["total_s"]),
                    f(&r["compile_s"]),
                    f(&r["apply_s"])
                ),
                f(&r["total_s"]) < 2.0,
            )
        }),
    ));
    let full_agent = v["agent"]["cidrs"] == 100_000 && v["agent"]["rules"] == 10_000;
    let a = &v["agent"];
    t.push((
        "one-rule change (policy file write → enforced) < 100 ms at 100,000 CIDRs".into(),
        full_agent.then(|| {
            (
                format!(
                    "{:.0} ms median (SIGHUP: {:.0} ms)",
                    f(&a["reload_file_s"]) * 1000.0,
                    f(&a["reload_sighup_s"]) * 1000.0
                ),
                f(&a["reload_file_s"]) < 0.1,
            )
        }),
    ));
    let full = f(&a["full_replace_s"]);
    t.push((
        "full policy replace (file write → enforced) < 1 s at 100,000 CIDRs".into(),
        (full_agent && !full.is_nan()).then(|| (format!("{full:.2} s median"), full < 1.0)),
    ));
    t.push((
        "`ward run` start → enforcing < 1 s at 100,000 CIDRs".into(),
        full_agent.then(|| (format!("{:.2} s", f(&a["start_s"])), f(&a["start_s"]) < 1.0)),
    ));
    t.push((
        "daemon RSS steady < 64 MiB and peak < 128 MiB at 100,000 CIDRs".into(),
        full_agent.then(|| {
            // Steady: after the reloads (the larger of that and at start).
            let steady = f(&a["rss_after_reloads_bytes"]).max(f(&a["rss_bytes"]));
            (
                format!(
                    "{} steady, {} peak (VmHWM)",
                    mib(&a["rss_after_reloads_bytes"]),
                    mib(&a["hwm_bytes"])
                ),
                steady < 64.0 * 1048576.0 && f(&a["hwm_bytes"]) < 128.0 * 1048576.0,
            )
        }),
    ));
    let q = f(&v["response"]["probe_to_quarantine_s"]);
    t.push((
        "first denied probe → quarantine enforced < 1 s (default thresholds)".into(),
        (!q.is_nan()).then(|| (format!("{:.0} ms", q * 1000.0), q < 1.0)),
    ));
    t
}
