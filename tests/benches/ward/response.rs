//! Time from a scanner's first denied probe to its quarantine being enforced in the
//! kernel: `ward run` (host role, default detection window, threshold 10) watches a
//! client that sends an allowed datagram and a probe to a new denied port every
//! millisecond; the quarantine is in force from the first allowed datagram that no
//! longer arrives.
use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use ward_tests::{Role, WardAgent};

use crate::sys::{self, median, InNs};

const CLIENT: &str = "198.19.253.1";
const SERVER: &str = "198.19.253.2";
const ALLOWED: u16 = 7000;
/// The agent's default threshold: distinct denied ports within the default 5 s window.
const THRESHOLD: u16 = 10;

/// Measures `reps` detections; the quarantine is released between them.
pub fn run(ward_bin: &Path, reps: usize) -> Result<Value> {
    let (client, server) = sys::client_server("rs", CLIENT, SERVER)?;
    let dir = std::env::temp_dir().join(format!("ward-bench-response-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[zones.scanner]\ncidrs = [\"{CLIENT}/32\"]\n[zones.server]\ncidrs = [\"{SERVER}/32\"]\n\
             [[allow]]\nfrom = \"scanner\"\nto = \"server\"\nudp = [{ALLOWED}]\n"
        ),
    )?;
    let result = (|| -> Result<Value> {
        let settings = format!("log_level = \"denied\"\n[response]\nthreshold = {THRESHOLD}\n");
        let mut agent = WardAgent::start_configured(
            ward_bin,
            &server,
            Role::Host,
            &["s0".into()],
            &policy,
            &settings,
        )?;
        agent.wait_for("enforcing generation=1 ", Duration::from_secs(60))?;
        let tx = {
            let _in = InNs::enter(&client)?;
            UdpSocket::bind((CLIENT, 0))?
        };
        let rx = {
            let _in = InNs::enter(&server)?;
            UdpSocket::bind((SERVER, ALLOWED))?
        };
        rx.set_read_timeout(Some(Duration::from_micros(200)))?;
        let mut times = Vec::new();
        for rep in 0..reps {
            times.push(detect(&tx, &rx).with_context(|| format!("detection {rep}"))?);
            let out = Command::new(ward_bin)
                .args(["release", CLIENT, "--socket"])
                .arg(agent.control_socket())
                .output()?;
            if !out.status.success() {
                bail!("ward release: {}", String::from_utf8_lossy(&out.stderr));
            }
            if rep + 1 < reps {
                // A fresh detection window for the next repetition.
                std::thread::sleep(Duration::from_secs(6));
            }
        }
        agent.stop()?;
        eprintln!("bench: first denied probe → quarantine enforced: {times:?} s");
        Ok(
            json!({ "threshold": THRESHOLD, "probe_to_quarantine_s": median(&mut times.clone()), "all_s": times }),
        )
    })();
    let _ = std::fs::remove_dir_all(&dir);
    drop((client, server));
    result
}

/// One detection: seconds from the first denied probe to the first allowed datagram
/// that was dropped, with none arriving after it.
fn detect(tx: &UdpSocket, rx: &UdpSocket) -> Result<f64> {
    let to = |port: u16| -> SocketAddr { format!("{SERVER}:{port}").parse().expect("address") };
    let mut buf = [0u8; 16];
    // The allowed path works (and ARP is resolved) before the scan.
    let ready = Instant::now();
    loop {
        tx.send_to(&u64::MAX.to_be_bytes(), to(ALLOWED))?;
        if rx.recv(&mut buf).is_ok() {
            break;
        }
        if ready.elapsed() > Duration::from_secs(5) {
            bail!("the allowed datagrams do not arrive before the scan");
        }
    }
    while rx.recv(&mut buf).is_ok() {}
    let start = Instant::now();
    let mut sent: Vec<Duration> = Vec::new();
    let mut received = HashSet::new();
    let mut last_received = start;
    let mut seq: u64 = 0;
    while last_received.elapsed() < Duration::from_millis(300) {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("no quarantine within 10 s");
        }
        let port = 8000 + (seq % 200) as u16;
        tx.send_to(b"probe", to(port))?;
        tx.send_to(&seq.to_be_bytes(), to(ALLOWED))?;
        sent.push(start.elapsed());
        seq += 1;
        while let Ok(n) = rx.recv(&mut buf) {
            if n == 8 {
                received.insert(u64::from_be_bytes(buf[..8].try_into().expect("8 bytes")));
                last_received = Instant::now();
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let after_last = received
        .iter()
        .copied()
        .filter(|s| *s != u64::MAX)
        .max()
        .map_or(0, |s| s + 1);
    let first_dropped = sent
        .get(after_last as usize)
        .context("every allowed datagram arrived")?;
    Ok(first_dropped.as_secs_f64())
}
