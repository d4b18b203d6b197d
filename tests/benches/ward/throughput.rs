//! Throughput through a veth pair between two namespaces. The load: `ward_bench_tx`
//! (`XDP_TX`) run with `BPF_F_TEST_XDP_LIVE_FRAMES` on the sending veth, so every
//! frame is transmitted to the receiving veth, whose XDP hook (Ward, or the `XDP_PASS`
//! floor in front of nftables/iptables) and the stack judge it.
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use aya::programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp, XdpMode};
use serde_json::{json, Value};
use ward::dataplane::Dataplane;
use ward_common::program_names::{BENCH_FLOOR, BENCH_TX, XDP_INGRESS};
use ward_tests::netns::{prefix, veth};
use ward_tests::Netns;

use crate::gen::{self, Entry, RX_ADDR, STRANGER, TX_ADDR};
use crate::support::frames::{FrameSpec, L4};
use crate::sys::{self, median, InNs, Pinned};
use crate::Opts;

/// The filters compared, in table order.
pub const FILTERS: [&str; 6] = [
    "no filter",
    "Ward",
    "nft sets+vmap",
    "nft rule per entry",
    "iptables rule per entry",
    "iptables-legacy rule per entry",
];

/// Frames handed to the kernel per batch by the live-frames test run.
const BATCH: u32 = 64;

/// The sending and receiving namespaces, `tx0` ↔ `rx0`.
struct Topo {
    tx: Netns,
    rx: Netns,
    tx_ifindex: u32,
}

fn topology() -> Result<Topo> {
    let p = prefix();
    let tx = Netns::create(&format!("{p}tp-tx"))?;
    let rx = Netns::create(&format!("{p}tp-rx"))?;
    veth(&tx, "tx0", &rx, "rx0")?;
    // The MACs the frame builder writes, so that the receiver takes the frames as its own.
    tx.ip(&["link", "set", "tx0", "address", "02:00:00:00:00:01"])?;
    rx.ip(&["link", "set", "rx0", "address", "02:00:00:00:00:02"])?;
    rx.sysctls(&[
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.default.rp_filter", "0"),
    ])?;
    tx.configure_if("tx0", &[format!("{TX_ADDR}/24")])?;
    rx.configure_if("rx0", &[format!("{RX_ADDR}/24")])?;
    let tx_ifindex = {
        let _in = InNs::enter(&tx)?;
        // SAFETY: if_nametoindex reads a NUL-terminated name.
        unsafe { libc::if_nametoindex(c"tx0".as_ptr()) }
    };
    if tx_ifindex == 0 {
        bail!("tx0 has no ifindex");
    }
    Ok(Topo { tx, rx, tx_ifindex })
}

fn xdp<'a>(dp: &'a mut Dataplane, name: &str) -> Result<&'a mut Xdp> {
    Ok(dp.ebpf().program_mut(name).with_context(|| format!("no program {name}"))?.try_into()?)
}

/// Attaches `program` to `ifname` inside `ns`; returns what detaching needs.
fn attach(dp: &mut Dataplane, ns: &Netns, ifname: &str, program: &'static str) -> Result<(&'static str, aya::programs::xdp::XdpLinkId)> {
    let _in = InNs::enter(ns)?;
    let id = xdp(dp, program)?
        .attach(ifname, XdpMode::Default)
        .with_context(|| format!("attaching {program} to {ifname} in {}", ns.name()))?;
    Ok((program, id))
}

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
            let loaded = ward::policy::load_str("allow-list.toml", &gen::ward_allow_list(list))
                .map_err(|d| anyhow::anyhow!("allow-list policy refused: {:?}", d.first()))?;
            dp.apply(&loaded.compiled)?;
        }
        "nft sets+vmap" => load(gen::nft_sets(list, "rx0"), &["nft", "-f"])?,
        "nft rule per entry" => load(gen::nft_rules(list, "rx0"), &["nft", "-f"])?,
        "iptables rule per entry" => load(gen::iptables(list), &["iptables-restore"])?,
        "iptables-legacy rule per entry" => load(gen::iptables(list), &["iptables-legacy-restore"])?,
        other => bail!("unknown filter {other}"),
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// One load burst of `secs`: frames sent, wall time, CPU time (generator thread plus
/// `ksoftirqd` of its CPU).
fn generate(dp: &mut Dataplane, topo: &Topo, frame: &[u8], secs: f64, cpu: usize) -> Result<(u64, Duration, Duration)> {
    let mut ctx = [0u8; 24]; // struct xdp_md
    ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes()); // data_end
    ctx[12..16].copy_from_slice(&topo.tx_ifindex.to_ne_bytes()); // ingress_ifindex
    let p: &Xdp = dp.ebpf().program(BENCH_TX).context("no generator program")?.try_into()?;
    let _in = InNs::enter(&topo.tx)?;
    let _pin = Pinned::to(cpu)?;
    let (c0, k0, t0) = (sys::thread_cpu(), sys::ksoftirqd_cpu(cpu), Instant::now());
    let deadline = t0 + Duration::from_secs_f64(secs);
    let (mut sent, mut chunk) = (0u64, 1_000u32);
    loop {
        let t = Instant::now();
        p.test_run(TestRunOptions {
            data_in: Some(frame),
            ctx_in: Some(&ctx),
            repeat: chunk,
            attrs: TestRunAttrs::new().xdp_live_frames(BATCH),
            ..TestRunOptions::new()
        })
        .context("live-frames test run of the generator")?;
        sent += u64::from(chunk);
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // About 50 ms per call, never past the deadline by much.
        let rate = f64::from(chunk) / (now - t).as_secs_f64().max(1e-6);
        let left = (deadline - now).as_secs_f64().min(0.05);
        chunk = (rate * left).clamp(64.0, 5_000_000.0) as u32;
    }
    let wall = t0.elapsed();
    let cpu_time = (sys::thread_cpu() - c0) + (sys::ksoftirqd_cpu(cpu).saturating_sub(k0));
    Ok((sent, wall, cpu_time))
}

/// Medians over `o.tp_reps` bursts of one traffic type through one filter.
fn measure(dp: &mut Dataplane, topo: &Topo, frame: &[u8], o: &Opts) -> Result<Value> {
    generate(dp, topo, frame, 0.1, o.cpu)?; // warm-up: caches, conntrack entry, ARP-free path
    let (mut pps, mut cpu_ns, mut deliv, mut sent_all, mut rx_all, mut drops) = (vec![], vec![], vec![], 0, 0, 0);
    for _ in 0..o.tp_reps {
        let (r0, dr0) = sys::rx_stats(&topo.rx, "rx0")?;
        let d0 = sys::ip_in_delivers(&topo.rx)?;
        let (sent, wall, cpu) = generate(dp, topo, frame, o.tp_secs, o.cpu)?;
        std::thread::sleep(Duration::from_millis(20)); // let the receiver drain its ring
        let (r1, dr1) = sys::rx_stats(&topo.rx, "rx0")?;
        let d1 = sys::ip_in_delivers(&topo.rx)?;
        let rx = r1 - r0;
        if rx == 0 {
            bail!("the receiver got none of {sent} frames");
        }
        pps.push(rx as f64 / wall.as_secs_f64());
        cpu_ns.push(cpu.as_nanos() as f64 / rx as f64);
        deliv.push((d1 - d0) as f64 / rx as f64);
        (sent_all, rx_all, drops) = (sent_all + sent, rx_all + rx, drops + (dr1 - dr0));
    }
    Ok(json!({
        "pps": median(&mut pps), "cpu_ns_per_packet": median(&mut cpu_ns),
        "delivered_ratio": median(&mut deliv), "frames_sent": sent_all,
        "frames_received": rx_all, "receiver_drops": drops,
    }))
}

/// Every filter at every size of `o.tp_sizes`, allowed and denied traffic.
pub fn run_all(dp: &mut Dataplane, o: &Opts) -> Result<Vec<Value>> {
    for name in [BENCH_TX, BENCH_FLOOR] {
        let p = xdp(dp, name)?;
        if p.fd().is_err() {
            p.load().with_context(|| format!("loading {name}"))?;
        }
    }
    let mut rows = Vec::new();
    for &n in &o.tp_sizes {
        let list = gen::allow_list(n);
        let last = list[n - 1];
        let allowed = FrameSpec::new(&last.src.to_string(), &RX_ADDR.to_string(), L4::Udp(40_000, last.lo)).build();
        let denied = FrameSpec::new(&STRANGER.to_string(), &RX_ADDR.to_string(), L4::Udp(40_000, last.lo)).build();
        for filter in FILTERS {
            let topo = topology()?;
            let install_s = install(dp, &topo, filter, &list).with_context(|| format!("installing {filter} ({n} entries)"))?;
            let hook = if filter == "Ward" { XDP_INGRESS } else { BENCH_FLOOR };
            let links = [attach(dp, &topo.rx, "rx0", hook)?, attach(dp, &topo.tx, "tx0", BENCH_FLOOR)?];
            let result = (|| -> Result<Value> {
                let a = measure(dp, &topo, &allowed, o)?;
                let d = measure(dp, &topo, &denied, o)?;
                if filter != "no filter" {
                    let (ar, dr) = (a["delivered_ratio"].as_f64().unwrap_or(0.0), d["delivered_ratio"].as_f64().unwrap_or(1.0));
                    if ar < 0.9 || dr > 0.01 {
                        bail!("{filter} with {n} entries does not enforce the allow-list: {:.0}% of allowed and {:.0}% of denied frames delivered", ar * 100.0, dr * 100.0);
                    }
                }
                Ok(json!({ "filter": filter, "entries": n, "install_s": install_s, "allowed": a, "denied": d }))
            })();
            for (name, id) in links {
                let _ = xdp(dp, name).map(|p| p.detach(id));
            }
            drop(topo);
            let row = result?;
            eprintln!(
                "bench: throughput {filter:<31} {n:>6} entries: allowed {:>10.0} pps, denied {:>10.0} pps",
                row["allowed"]["pps"].as_f64().unwrap_or(0.0),
                row["denied"]["pps"].as_f64().unwrap_or(0.0)
            );
            rows.push(row);
        }
    }
    Ok(rows)
}
