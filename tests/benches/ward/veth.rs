//! The veth pair of the throughput measurement and its load generators: by default an
//! `AF_PACKET` TX ring on the sending veth (`txring.rs`); optionally `ward_bench_tx`
//! (`XDP_TX`) run with `BPF_F_TEST_XDP_LIVE_FRAMES`, with `ingress_ifindex` of the
//! sending veth in its context, so that every frame it returns `XDP_TX` for is
//! transmitted to the receiving veth. Kernels that refuse live frames (EPERM) get the
//! TX ring instead, never a failure.
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use aya::programs::{xdp::XdpLinkId, TestRun, TestRunAttrs, TestRunOptions, Xdp, XdpMode};
use ward::dataplane::Dataplane;
use ward_common::program_names::BENCH_TX;
use ward_tests::netns::{prefix, veth};
use ward_tests::Netns;

use crate::generated::{RX_ADDR, TX_ADDR};
use crate::support::frames::{FrameSpec, L4};
use crate::sys::{self, InNs, Pinned};
use crate::txring::TxRing;

/// How the throughput load is made; one generator for every filter of a run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Generator {
    /// An `AF_PACKET` TX ring with `PACKET_QDISC_BYPASS` (the default).
    TxRing,
    /// `ward_bench_tx` in live-frames test runs, where the kernel allows them.
    LiveFrames,
}

impl Generator {
    /// The name used in `--generator` and in the results.
    pub fn name(self) -> &'static str {
        match self {
            Generator::TxRing => "af-packet",
            Generator::LiveFrames => "live-frames",
        }
    }

    /// Parses a `--generator` value.
    pub fn parse(s: &str) -> Result<Generator> {
        match s {
            "af-packet" => Ok(Generator::TxRing),
            "live-frames" => Ok(Generator::LiveFrames),
            other => bail!("unknown generator {other:?} (af-packet or live-frames)"),
        }
    }
}

/// Frames handed to the kernel per batch by the live-frames test run.
const BATCH: u32 = 64;

/// The sending and receiving namespaces, `tx0` ↔ `rx0`.
pub struct Topo {
    pub tx: Netns,
    pub rx: Netns,
    tx_ifindex: u32,
}

/// Creates the pair `i` (namespaces `wd<pid>-tp<i>-tx` and `-rx`).
pub fn topology(i: usize) -> Result<Topo> {
    let p = prefix();
    let tx = Netns::create(&format!("{p}tp{i}-tx"))?;
    let rx = Netns::create(&format!("{p}tp{i}-rx"))?;
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

/// One of the object's XDP programs.
pub fn xdp<'a>(dp: &'a mut Dataplane, name: &str) -> Result<&'a mut Xdp> {
    Ok(dp
        .ebpf()
        .program_mut(name)
        .with_context(|| format!("no program {name}"))?
        .try_into()?)
}

/// Attaches `program` to `ifname` inside `ns`; returns what detaching needs.
pub fn attach(
    dp: &mut Dataplane,
    ns: &Netns,
    ifname: &str,
    program: &'static str,
) -> Result<(&'static str, XdpLinkId)> {
    let _in = InNs::enter(ns)?;
    let id = xdp(dp, program)?
        .attach(ifname, XdpMode::Default)
        .with_context(|| format!("attaching {program} to {ifname} in {}", ns.name()))?;
    Ok((program, id))
}

/// One load burst of `secs` made by `generator`: frames sent, wall time, CPU time
/// (generator thread plus `ksoftirqd` of its CPU).
pub fn generate(
    dp: &mut Dataplane,
    topo: &Topo,
    frame: &[u8],
    secs: f64,
    cpu: usize,
    generator: Generator,
) -> Result<(u64, Duration, Duration)> {
    match generator {
        Generator::TxRing => ring_burst(topo, frame, secs, cpu),
        Generator::LiveFrames => live_burst(dp, topo, frame, secs, cpu),
    }
}

/// Whether this kernel runs `ward_bench_tx` with live frames on `topo`'s sender.
pub fn live_frames_allowed(dp: &mut Dataplane, topo: &Topo, frame: &[u8]) -> bool {
    live_burst(dp, topo, frame, 0.0, 0).is_ok()
}

/// [`generate`] with the TX ring.
fn ring_burst(
    topo: &Topo,
    frame: &[u8],
    secs: f64,
    cpu: usize,
) -> Result<(u64, Duration, Duration)> {
    let _in = InNs::enter(&topo.tx)?;
    let mut ring = TxRing::open(topo.tx_ifindex, frame).context("the AF_PACKET TX ring")?;
    let _pin = Pinned::to(cpu)?;
    let (c0, k0, t0) = (sys::thread_cpu(), sys::ksoftirqd_cpu(cpu), Instant::now());
    let deadline = t0 + Duration::from_secs_f64(secs);
    let mut sent = 0u64;
    while Instant::now() < deadline {
        sent += ring.burst()?;
    }
    let wall = t0.elapsed();
    let cpu_time = (sys::thread_cpu() - c0) + (sys::ksoftirqd_cpu(cpu).saturating_sub(k0));
    Ok((sent, wall, cpu_time))
}

/// [`generate`] with live frames.
fn live_burst(
    dp: &mut Dataplane,
    topo: &Topo,
    frame: &[u8],
    secs: f64,
    cpu: usize,
) -> Result<(u64, Duration, Duration)> {
    let mut ctx = [0u8; 24]; // struct xdp_md
    ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes()); // data_end
    ctx[12..16].copy_from_slice(&topo.tx_ifindex.to_ne_bytes()); // ingress_ifindex
    let p: &Xdp = dp
        .ebpf()
        .program(BENCH_TX)
        .context("no generator program")?
        .try_into()?;
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

/// A UDP frame to the receiver with a valid IPv4 header checksum (the stack checks it;
/// the UDP checksum 0 means "none").
pub fn udp_frame(src: std::net::Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut f = FrameSpec::new(
        &src.to_string(),
        &RX_ADDR.to_string(),
        L4::Udp(40_000, dport),
    )
    .build();
    let sum: u32 = f[14..34]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    let csum = !(((folded & 0xffff) + (folded >> 16)) as u16);
    f[24..26].copy_from_slice(&csum.to_be_bytes());
    f
}
