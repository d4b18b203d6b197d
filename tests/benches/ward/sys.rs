//! What the benchmark reads from the system: namespaces entered by one thread, CPU
//! pinning and CPU time, interface and IP counters, process memory, map memory.
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use ward_tests::{util::run, Netns};

/// The calling thread inside a network namespace until dropped (then back where it was).
pub struct InNs {
    home: File,
}

impl InNs {
    /// Moves the calling thread (only it) into `ns`.
    pub fn enter(ns: &Netns) -> Result<InNs> {
        let home = File::open("/proc/thread-self/ns/net").context("opening own netns")?;
        let target = File::open(ns.path()).with_context(|| format!("opening {}", ns.name()))?;
        setns(&target).with_context(|| format!("entering {}", ns.name()))?;
        Ok(InNs { home })
    }
}

impl Drop for InNs {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.home) {
            // Staying in a namespace that is about to disappear would break what follows.
            panic!("cannot return to the original network namespace: {e}");
        }
    }
}

fn setns(f: &File) -> Result<()> {
    // SAFETY: setns(2) on a namespace fd affects only the calling thread's netns.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread pinned to one CPU until dropped (then its old mask again).
pub struct Pinned {
    old: libc::cpu_set_t,
}

impl Pinned {
    /// Pins the calling thread to `cpu`.
    pub fn to(cpu: usize) -> Result<Pinned> {
        // SAFETY: plain libc calls on a zeroed cpu_set_t owned here.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old) != 0 {
                bail!("sched_getaffinity: {}", std::io::Error::last_os_error());
            }
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                bail!(
                    "sched_setaffinity({cpu}): {}",
                    std::io::Error::last_os_error()
                );
            }
            Ok(Pinned { old })
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: restores the mask read in `to`.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.old) };
    }
}

/// CPU time of the calling thread. Without IRQ time accounting (this kernel), softirq
/// work done on the thread's way out of a syscall (the receiving veth's NAPI poll) is
/// included.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time of `ksoftirqd/<cpu>` (softirq work deferred off the generator's thread).
pub fn ksoftirqd_cpu(cpu: usize) -> Duration {
    let want = format!("ksoftirqd/{cpu}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    for e in dir.flatten() {
        let p = e.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if comm.trim() == want {
            let s = std::fs::read_to_string(p.join("schedstat")).unwrap_or_default();
            let ns = s.split_whitespace().next().and_then(|v| v.parse().ok());
            return Duration::from_nanos(ns.unwrap_or(0));
        }
    }
    Duration::ZERO
}

/// `rx_packets`, `rx_dropped` of an interface in a namespace (`ip -s -j link`).
pub fn rx_stats(ns: &Netns, ifname: &str) -> Result<(u64, u64)> {
    let out = ns.ip(&["-s", "-j", "link", "show", "dev", ifname])?;
    let v: serde_json::Value = serde_json::from_str(&out).context("ip -j output")?;
    let rx = &v[0]["stats64"]["rx"];
    let n = |k: &str| {
        rx[k]
            .as_u64()
            .with_context(|| format!("no rx {k} for {ifname}"))
    };
    Ok((n("packets")?, n("dropped")?))
}

/// `Ip: InDelivers` of a namespace: packets the IP layer handed to a protocol.
pub fn ip_in_delivers(ns: &Netns) -> Result<u64> {
    let snmp = ns.run(&["cat", "/proc/net/snmp"])?;
    let mut lines = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (lines.next(), lines.next());
    let (Some(names), Some(values)) = (names, values) else {
        bail!("no Ip: lines in /proc/net/snmp");
    };
    let i = names
        .split_whitespace()
        .position(|w| w == "InDelivers")
        .context("no InDelivers")?;
    values
        .split_whitespace()
        .nth(i)
        .and_then(|v| v.parse().ok())
        .context("bad InDelivers")
}

/// `VmRSS` and `VmHWM` of a process, in bytes.
pub fn vm_rss(pid: u32) -> Result<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = s
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("bad {line}"))?;
        Ok(kib * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The BPF maps a process holds open: map name → (memlock bytes, max entries), from
/// `/proc/PID/fdinfo` (deduplicated by map id; names from the kernel's map info).
pub fn map_memlock(pid: u32) -> Result<BTreeMap<String, (u64, u64)>> {
    let mut by_id: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let dir = format!("/proc/{pid}/fdinfo");
    for e in std::fs::read_dir(&dir)
        .with_context(|| dir.clone())?
        .flatten()
    {
        let Ok(info) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        let get = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let (Some(id), Some(memlock)) = (get("map_id:"), get("memlock:")) {
            by_id.insert(id as u32, (memlock, get("max_entries:").unwrap_or(0)));
        }
    }
    let mut out = BTreeMap::new();
    for (id, v) in by_id {
        let name = aya::maps::MapInfo::from_id(id)
            .ok()
            .and_then(|i| i.name_as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("map#{id}"));
        out.insert(name, v);
    }
    Ok(out)
}

/// A line about the machine: CPUs, CPU model, kernel.
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let kernel = run(std::process::Command::new("uname").arg("-r"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| {
            v.split_whitespace()
                .next()
                .and_then(|k| k.parse::<u64>().ok())
        })
        .unwrap_or(0);
    serde_json::json!({
        "cpus": cpus,
        "cpu_model": model,
        "kernel": kernel,
        "memory_gib": (mem_kib as f64 / 1048576.0 * 10.0).round() / 10.0,
        "loadavg_at_start": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    })
}

/// Two namespaces `{prefix}{tag}-c` and `{prefix}{tag}-s` joined by a veth pair: the
/// client's `c0` holds `client`/24, the server's `s0` holds `server`/24.
pub fn client_server(tag: &str, client: &str, server: &str) -> Result<(Netns, Netns)> {
    let p = ward_tests::netns::prefix();
    let c = Netns::create(&format!("{p}{tag}-c"))?;
    let s = Netns::create(&format!("{p}{tag}-s"))?;
    ward_tests::netns::veth(&c, "c0", &s, "s0")?;
    c.configure_if("c0", &[format!("{client}/24")])?;
    s.configure_if("s0", &[format!("{server}/24")])?;
    Ok((c, s))
}

/// Median of `v` (sorted in place); 0 for an empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
