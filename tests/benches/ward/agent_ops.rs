//! The agent at a large policy: `ward run` in a namespace (host role) enforcing a
//! generated policy; start-up, resident memory, map memory, and reload latency from a
//! policy change to enforcement (a one-rule change by file and by SIGHUP, and a full
//! replace), observed with UDP datagrams through a veth pair.
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use ward_tests::{Role, WardAgent};

use crate::generated;
use crate::sys::{self, median, InNs};
use crate::Opts;

const CLIENT: &str = "198.19.254.1";
const SERVER: &str = "198.19.254.2";
/// Version `k` of the policy allows UDP `BASE_PORT + k` from the client to the server.
const BASE_PORT: u16 = 7000;

/// A zone whose name sorts before every other: with it, every zone id is one higher, so
/// every zone and rule entry of the policy changes (a full replace).
const SHIFT_ZONE: &str = "[zones.aaa-shift]\ncidrs = [\"198.19.253.1/32\"]\n";

fn policy_text(base: &str, version: u16) -> String {
    format!(
        "{base}[zones.bench-client]\ncidrs = [\"{CLIENT}/32\"]\n[zones.bench-server]\ncidrs = [\"{SERVER}/32\"]\n\
         [[allow]]\nfrom = \"bench-client\"\nto = \"bench-server\"\nudp = [{}]\n",
        BASE_PORT + version
    )
}

/// Writes the file the agent watches in one step (a rename), so it never reads half of it.
fn write_policy(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Sends a datagram every millisecond until the server receives one; the time from
/// `since` to that datagram's arrival.
fn until_delivered(
    tx: &UdpSocket,
    rx: &UdpSocket,
    to: SocketAddr,
    since: Instant,
    limit: Duration,
) -> Result<Duration> {
    rx.set_read_timeout(Some(Duration::from_millis(1)))?;
    let mut buf = [0u8; 16];
    while since.elapsed() < limit {
        tx.send_to(b"ward-bench", to)?;
        if rx.recv(&mut buf).is_ok() {
            return Ok(since.elapsed());
        }
    }
    bail!("no datagram reached {to} within {limit:?}")
}

/// Waits until `pattern` occurs `n` times in the agent's log.
fn wait_count(agent: &WardAgent, pattern: &str, n: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while agent.log().matches(pattern).count() < n {
        if Instant::now() > deadline {
            bail!(
                "the agent did not log {pattern:?} {n} times; its log:\n{}",
                agent.log()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Start-up, memory and reload latency of `ward run` with the (`cidrs`, `rules`) policy.
pub fn run(ward_bin: &Path, cidrs: usize, rules: usize, o: &Opts) -> Result<Value> {
    let base = generated::zone_policy(cidrs, rules).text;
    let (client, server) = sys::client_server("ag", CLIENT, SERVER)?;
    let dir = std::env::temp_dir().join(format!("ward-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let policy = dir.join("policy.toml");
    write_policy(&policy, &policy_text(&base, 0))?;
    // No events (the kernel's event path is not what is measured), no quarantine.
    let settings = "log_level = \"off\"\n[response]\nauto_quarantine = false\n";
    let result = (|| -> Result<Value> {
        let t0 = Instant::now();
        let mut agent = WardAgent::start_configured(
            ward_bin,
            &server,
            Role::Host,
            &["s0".into()],
            &policy,
            settings,
        )?;
        agent.wait_for("enforcing generation=1 ", Duration::from_secs(120))?;
        let start_s = t0.elapsed().as_secs_f64();
        agent.wait_for(
            "idle slot brought to generation=1 (",
            Duration::from_secs(120),
        )?;
        let pid = agent.pid();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "ward" {
            bail!("pid {pid} is {comm:?}, not ward");
        }
        let (rss, hwm_start) = sys::vm_rss(pid)?;
        let maps = sys::map_memlock(pid)?;
        let map_bytes: u64 = maps.values().map(|v| v.0).sum();
        // Sockets: the sender in the client namespace, one receiver per policy version.
        let tx = {
            let _in = InNs::enter(&client)?;
            UdpSocket::bind((CLIENT, 0))?
        };
        let rxs: Vec<UdpSocket> = {
            let _in = InNs::enter(&server)?;
            (0..=3 * o.reload_reps as u16)
                .map(|k| UdpSocket::bind((SERVER, BASE_PORT + k)))
                .collect::<std::io::Result<_>>()?
        };
        let to = |k: u16| -> SocketAddr { format!("{SERVER}:{}", BASE_PORT + k).parse().unwrap() };
        // Version 0 is enforced: its port works (this also resolves ARP).
        until_delivered(&tx, &rxs[0], to(0), Instant::now(), Duration::from_secs(5))
            .context("the allowed probe does not pass under the first policy")?;
        let (mut by_file, mut by_hup, mut full) = (Vec::new(), Vec::new(), Vec::new());
        let (mut version, mut unchanged) = (0u16, 0usize);
        // A one-rule change by file, one by SIGHUP, then a full replace by file (the
        // shift zone comes or goes: every entry changes).
        let mut shifted = false;
        for _ in 0..o.reload_reps {
            for (via_signal, replace) in [(false, false), (true, false), (false, true)] {
                version += 1;
                let gen_no = version as u64 + 1;
                shifted ^= replace;
                let base = if shifted {
                    format!("{SHIFT_ZONE}{base}")
                } else {
                    base.clone()
                };
                write_policy(&policy, &policy_text(&base, version))?;
                let t = Instant::now();
                if via_signal {
                    agent.sighup()?;
                }
                let d = until_delivered(
                    &tx,
                    &rxs[version as usize],
                    to(version),
                    t,
                    Duration::from_secs(60),
                )?;
                agent.wait_for(
                    &format!("enforcing generation={gen_no} "),
                    Duration::from_secs(60),
                )?;
                // The agent then brings its idle slot to this policy (off the measured
                // path): the next change is written as its difference from this one.
                agent.wait_for(
                    &format!("idle slot brought to generation={gen_no} ("),
                    Duration::from_secs(60),
                )?;
                if via_signal {
                    // The file watch then notices the change too and reloads an unchanged
                    // policy: let it finish before the next measurement.
                    unchanged += 1;
                    wait_count(&agent, "policy unchanged on ", unchanged)?;
                }
                match (via_signal, replace) {
                    (true, _) => &mut by_hup,
                    (false, true) => &mut full,
                    (false, false) => &mut by_file,
                }
                .push(d.as_secs_f64());
            }
        }
        let (rss_after, hwm) = sys::vm_rss(pid)?;
        agent.stop()?;
        eprintln!(
            "bench: agent at {cidrs} CIDRs/{rules} rules: enforcing after {start_s:.2} s, RSS {} MiB, maps {} MiB",
            rss >> 20,
            map_bytes >> 20
        );
        Ok(json!({
            "cidrs": cidrs, "rules": rules, "start_s": start_s,
            "rss_bytes": rss, "rss_after_reloads_bytes": rss_after,
            "hwm_at_start_bytes": hwm_start, "hwm_bytes": hwm,
            "map_memlock_bytes": map_bytes,
            "maps": maps.iter().map(|(k, v)| (k.clone(), json!({"memlock_bytes": v.0, "max_entries": v.1}))).collect::<serde_json::Map<_, _>>(),
            "reload_file_s": median(&mut by_file.clone()), "reload_file_all_s": by_file,
            "reload_sighup_s": median(&mut by_hup.clone()), "reload_sighup_all_s": by_hup,
            "full_replace_s": median(&mut full.clone()), "full_replace_all_s": full,
        }))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    drop((client, server));
    result
}
