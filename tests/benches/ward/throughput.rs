//! Throughput through a veth pair between two namespaces (see `veth.rs` for the load):
//! the receiving veth's XDP hook (Ward, or the `XDP_PASS` floor in front of nftables and
//! iptables) and the stack judge every frame; the same allow-list in every filter, the
//! same frames from the same generator for all of them.
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use aya::programs::xdp::XdpLinkId;
use serde_json::{json, Value};
use ward::dataplane::Dataplane;
use ward_common::program_names::{BENCH_FLOOR, BENCH_TX, XDP_INGRESS};

use crate::generated::{self, Entry, STRANGER};
use crate::sys::{self, median};
use crate::veth::{
    attach, generate, live_frames_allowed, topology, udp_frame, xdp, Generator, Topo,
};
use crate::Opts;

/// The filters compared, in table order.
pub const FILTERS: [&str; 7] = [
    "no filter",
    "Ward",
    "nft sets+vmap",
    "nft stateful sets+vmap",
    "nft rule per entry",
    "iptables rule per entry",
    "iptables-legacy rule per entry",
];

/// Installs `filter` on the receiver; returns the seconds it took.
fn install(dp: &mut Dataplane, topo: &Topo, filter: &str, list: &[Entry]) -> Result<f64> {
    let t0 = Instant::now();
    let file = std::env::temp_dir().join(format!("ward-bench-{}.rules", std::process::id()));
    let load = |text: String, cmd: &[&str]| -> Result<()> {
        std::fs::write(&file, text)?;
        let mut args = cmd.to_vec();
        let f = file.display().to_string();
        args.push(&f);
        let r = topo.rx.run(&args);
        let _ = std::fs::remove_file(&file);
        r.map(|_| ())
    };
    match filter {
        "no filter" => {}
        "Ward" => {
            let loaded =
                ward::policy::load_str("allow-list.toml", &generated::ward_allow_list(list))
                    .map_err(|d| anyhow::anyhow!("allow-list policy refused: {:?}", d.first()))?;
            dp.apply(&loaded.compiled)?;
        }
        "nft sets+vmap" => load(generated::nft_sets(list, "rx0"), &["nft", "-f"])?,
        "nft stateful sets+vmap" => load(generated::nft_stateful(list), &["nft", "-f"])?,
        "nft rule per entry" => load(generated::nft_rules(list, "rx0"), &["nft", "-f"])?,
        "iptables rule per entry" => load(generated::iptables(list), &["iptables-restore"])?,
        "iptables-legacy rule per entry" => {
            load(generated::iptables(list), &["iptables-legacy-restore"])?
        }
        other => bail!("unknown filter {other}"),
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// One burst's numbers.
#[derive(Default)]
struct Sample {
    pps: Vec<f64>,
    cpu_ns: Vec<f64>,
    delivered: Vec<f64>,
    sent: u64,
    received: u64,
    drops: u64,
}

/// One burst of `frame` through `topo`, added to `s`.
fn burst(
    dp: &mut Dataplane,
    topo: &Topo,
    frame: &[u8],
    o: &Opts,
    gen: Generator,
    s: &mut Sample,
) -> Result<()> {
    let (r0, dr0) = sys::rx_stats(&topo.rx, "rx0")?;
    let d0 = sys::ip_in_delivers(&topo.rx)?;
    let (sent, wall, cpu) = generate(dp, topo, frame, o.tp_secs, o.cpu, gen)?;
    std::thread::sleep(Duration::from_millis(20)); // let the receiver drain its ring
    let (r1, dr1) = sys::rx_stats(&topo.rx, "rx0")?;
    let d1 = sys::ip_in_delivers(&topo.rx)?;
    let rx = r1 - r0;
    if rx == 0 {
        bail!("the receiver got none of {sent} frames");
    }
    s.pps.push(rx as f64 / wall.as_secs_f64());
    s.cpu_ns.push(cpu.as_nanos() as f64 / rx as f64);
    s.delivered.push((d1 - d0) as f64 / rx as f64);
    (s.sent, s.received, s.drops) = (s.sent + sent, s.received + rx, s.drops + (dr1 - dr0));
    Ok(())
}

fn summary(s: &Sample) -> Value {
    let (mut pps, mut cpu, mut del) = (s.pps.clone(), s.cpu_ns.clone(), s.delivered.clone());
    json!({
        "pps": median(&mut pps), "cpu_ns_per_packet": median(&mut cpu),
        "delivered_ratio": median(&mut del), "pps_all": s.pps, "cpu_ns_all": s.cpu_ns,
        "frames_sent": s.sent, "frames_received": s.received, "receiver_drops": s.drops,
    })
}

/// A filter installed on its own veth pair, and the XDP links to detach.
struct Setup {
    filter: &'static str,
    topo: Topo,
    links: Vec<(&'static str, XdpLinkId)>,
    install_s: f64,
}

fn set_up(
    dp: &mut Dataplane,
    i: usize,
    filter: &'static str,
    list: &[Entry],
    gen: Generator,
) -> Result<Setup> {
    let topo = topology(i)?;
    let install_s = install(dp, &topo, filter, list)
        .with_context(|| format!("installing {filter} ({} entries)", list.len()))?;
    let hook = if filter == "Ward" {
        XDP_INGRESS
    } else {
        BENCH_FLOOR
    };
    let mut s = Setup {
        filter,
        topo,
        links: Vec::new(),
        install_s,
    };
    // The receiver's XDP hook (native on veth) judges every frame; with live frames,
    // the sender's registers the receive queue the frames claim to arrive on.
    s.links.push(attach(dp, &s.topo.rx, "rx0", hook)?);
    if gen == Generator::LiveFrames {
        s.links.push(attach(dp, &s.topo.tx, "tx0", BENCH_FLOOR)?);
    }
    Ok(s)
}

fn tear_down(dp: &mut Dataplane, setups: Vec<Setup>) {
    for s in setups {
        for (name, id) in s.links {
            let _ = xdp(dp, name).map(|p| p.detach(id));
        }
    }
}

/// Every filter at one allow-list size: all set up side by side, then measured in
/// rounds (each round one burst per filter and traffic), so that the load other
/// processes put on the machine spreads over all of them.
fn one_size(
    dp: &mut Dataplane,
    n: usize,
    o: &Opts,
    gen: Generator,
    setups: &mut Vec<Setup>,
) -> Result<Vec<Value>> {
    let list = generated::allow_list(n);
    let last = list[n - 1];
    let frames = [udp_frame(last.src, last.lo), udp_frame(STRANGER, last.lo)];
    for (i, filter) in FILTERS.into_iter().enumerate() {
        setups.push(set_up(dp, i, filter, &list, gen)?);
    }
    let mut samples: Vec<[Sample; 2]> = FILTERS.iter().map(|_| Default::default()).collect();
    for round in 0..=o.tp_reps {
        for (s, sample) in setups.iter().zip(samples.iter_mut()) {
            for (frame, acc) in frames.iter().zip(sample.iter_mut()) {
                if round == 0 {
                    // Warm-up: caches, the allowed flow's conntrack entry.
                    generate(dp, &s.topo, frame, 0.1, o.cpu, gen)?;
                } else {
                    burst(dp, &s.topo, frame, o, gen, acc)
                        .with_context(|| format!("{} ({n} entries)", s.filter))?;
                }
            }
        }
    }
    let mut rows = Vec::new();
    for (s, [a, d]) in setups.iter().zip(&samples) {
        let (a, d) = (summary(a), summary(d));
        // Every filter must deliver the allowed frames to the stack and none of the
        // denied ones (without a filter, both are delivered).
        let (ar, dr) = (
            a["delivered_ratio"].as_f64().unwrap_or(0.0),
            d["delivered_ratio"].as_f64().unwrap_or(1.0),
        );
        let denied_ok = if s.filter == "no filter" {
            dr >= 0.9
        } else {
            dr <= 0.01
        };
        if ar < 0.9 || !denied_ok {
            bail!("{} with {n} entries: {:.0}% of allowed and {:.0}% of denied frames reached the stack", s.filter, ar * 100.0, dr * 100.0);
        }
        eprintln!(
            "bench: throughput {:<31} {n:>6} entries: allowed {:>9.0} pps {:>7.0} ns/pkt, denied {:>9.0} pps {:>7.0} ns/pkt",
            s.filter, f(&a["pps"]), f(&a["cpu_ns_per_packet"]), f(&d["pps"]), f(&d["cpu_ns_per_packet"])
        );
        rows.push(json!({
            "filter": s.filter, "entries": n, "install_s": s.install_s, "generator": gen.name(),
            "allowed": a, "denied": d,
        }));
    }
    Ok(rows)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The generator to use: `wanted`, unless it is live frames and this kernel refuses
/// them (then the TX ring, said on stderr).
fn resolve(dp: &mut Dataplane, wanted: Generator) -> Result<Generator> {
    if wanted == Generator::TxRing {
        return Ok(wanted);
    }
    let probe = set_up(dp, 0, "no filter", &[], wanted)?;
    let allowed = live_frames_allowed(dp, &probe.topo, &udp_frame(STRANGER, 9));
    tear_down(dp, vec![probe]);
    if !allowed {
        eprintln!("bench: this kernel refuses live-frames test runs; the load comes from the AF_PACKET TX ring");
        return Ok(Generator::TxRing);
    }
    Ok(wanted)
}

/// Every filter at every size of `o.tp_sizes`, allowed and denied traffic.
pub fn run_all(dp: &mut Dataplane, o: &Opts) -> Result<Vec<Value>> {
    for name in [BENCH_TX, BENCH_FLOOR] {
        let p = xdp(dp, name)?;
        if p.fd().is_err() {
            p.load().with_context(|| format!("loading {name}"))?;
        }
    }
    let gen = resolve(dp, o.generator)?;
    let mut rows = Vec::new();
    for &n in &o.tp_sizes {
        let mut setups = Vec::new();
        let r = one_size(dp, n, o, gen, &mut setups);
        tear_down(dp, setups);
        rows.extend(r?);
    }
    Ok(rows)
}
