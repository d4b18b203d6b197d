//! Reachability probes run inside a namespace: `ward-probe connect` for TCP/UDP
//! (an echo must come back, so replies are checked too), `ping -c 1 -W 1` for ICMP
//! echo, and the long-lived `ward-probe hold` connection.
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::netns::Netns;
use crate::util::{cmdline, locate_bin, output_within, wait_within};

/// Per-probe timeout: a denied flow is dropped silently, so this is what a denial costs.
pub const PROBE_TIMEOUT_MS: u64 = 1000;

static PROBE_BIN: OnceLock<PathBuf> = OnceLock::new();

/// Uses this `ward-probe` binary from now on (before the first probe).
pub fn use_probe_bin(path: PathBuf) {
    let _ = PROBE_BIN.set(path);
}

/// The `ward-probe` binary: set by [`use_probe_bin`], else `$WARD_PROBE_BIN`, else
/// next to the current executable. Panics with a clear message if not found.
pub fn probe_bin() -> PathBuf {
    PROBE_BIN
        .get_or_init(|| {
            locate_bin(
                "WARD_PROBE_BIN",
                "ward-probe",
                "run `cargo build -p ward-tests --bins`",
            )
        })
        .clone()
}

/// Protocol of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP: connect, send a line, get it echoed back.
    Tcp,
    /// UDP: send a datagram, get it echoed back.
    Udp,
    /// ICMP echo (ICMPv6 echo for IPv6).
    Icmp,
}

impl Proto {
    /// `tcp`, `udp` or `icmp`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }
}

/// A service: protocol and port (0 for ICMP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Service {
    /// Protocol.
    pub proto: Proto,
    /// Destination port; 0 for ICMP.
    pub port: u16,
}

impl Service {
    /// TCP port.
    pub const fn tcp(port: u16) -> Service {
        Service {
            proto: Proto::Tcp,
            port,
        }
    }
    /// UDP port.
    pub const fn udp(port: u16) -> Service {
        Service {
            proto: Proto::Udp,
            port,
        }
    }
    /// ICMP echo.
    pub const ICMP: Service = Service {
        proto: Proto::Icmp,
        port: 0,
    };
}

/// `tcp/443`, `udp/514`, `icmp`: the form `ward explain` takes.
impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.proto {
            Proto::Icmp => f.write_str("icmp"),
            p => write!(f, "{}/{}", p.name(), self.port),
        }
    }
}

/// TCP ports every clinic host serves.
pub const TCP_PORTS: [u16; 5] = [22, 104, 443, 8443, 11112];
/// UDP ports every clinic host serves.
pub const UDP_PORTS: [u16; 1] = [514];

/// Every service the clinic hosts offer, ICMP echo included.
pub fn services() -> Vec<Service> {
    let mut v: Vec<Service> = TCP_PORTS.iter().map(|&p| Service::tcp(p)).collect();
    v.extend(UDP_PORTS.iter().map(|&p| Service::udp(p)));
    v.push(Service::ICMP);
    v
}

/// Result of one probe.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The flow worked both ways.
    pub reached: bool,
    /// What the probe printed (why it failed, or how long it took).
    pub detail: String,
}

/// Probes `proto` to `addr:port` from namespace `from`. An error means the probe
/// itself could not run (missing binary, hang), never that the flow was refused.
pub fn try_reach(from: &Netns, proto: Proto, addr: IpAddr, port: u16) -> Result<Probe> {
    let mut cmd = match proto {
        Proto::Icmp => {
            let mut c = from.nsenter("ping");
            if addr.is_ipv6() {
                c.arg("-6");
            }
            c.args([
                "-n",
                "-c",
                "1",
                "-W",
                &(PROBE_TIMEOUT_MS / 1000).max(1).to_string(),
            ]);
            c.arg(addr.to_string());
            c
        }
        Proto::Tcp | Proto::Udp => {
            let mut c = from.nsenter(probe_bin());
            c.args([
                "connect",
                proto.name(),
                &addr.to_string(),
                &port.to_string(),
            ]);
            c.args(["--timeout-ms", &PROBE_TIMEOUT_MS.to_string()]);
            c
        }
    };
    let line = cmdline(&cmd);
    // Only a hang catcher: the verdict comes from the probe's own timeout. The slack
    // covers starting `nsenter` and the probe in a loaded QEMU/TCG guest, where that
    // alone has taken more than 5 s.
    let out = output_within(&mut cmd, Duration::from_millis(PROBE_TIMEOUT_MS + 30_000))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let detail = text
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    match (proto, out.status.code()) {
        (_, Some(0)) => Ok(Probe {
            reached: true,
            detail,
        }),
        (Proto::Icmp, Some(1)) => Ok(Probe {
            reached: false,
            detail: "no echo reply".into(),
        }),
        // ping exits 2 on send errors (a TC egress drop can surface as one).
        (Proto::Icmp, Some(2)) => Ok(Probe {
            reached: false,
            detail,
        }),
        (_, Some(1)) => Ok(Probe {
            reached: false,
            detail,
        }),
        _ => bail!(
            "probe `{line}` failed to run ({}): {}",
            out.status,
            text.trim()
        ),
    }
}

/// Sends `count` UDP datagrams from `from` to `addr:port` (`ward-probe flood`), for at
/// most `max_ms`; what the probe printed, as the error too when it failed.
pub fn flood(from: &Netns, addr: IpAddr, port: u16, count: u64, max_ms: u64) -> Result<String> {
    let out = from
        .nsenter(probe_bin())
        .args(["flood", &addr.to_string(), &port.to_string()])
        .args([
            "--count",
            &count.to_string(),
            "--max-ms",
            &max_ms.to_string(),
        ])
        .output()
        .context("cannot run ward-probe flood")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.success() {
        true => Ok(text),
        false => bail!("ward-probe flood failed ({}): {text}", out.status),
    }
}

/// Whether `proto` to `addr:port` works from `from` (replies included). Panics if
/// the probe itself cannot run.
pub fn reach(from: &Netns, proto: Proto, addr: IpAddr, port: u16) -> bool {
    match try_reach(from, proto, addr, port) {
        Ok(p) => p.reached,
        Err(e) => panic!("{e:#}"),
    }
}

/// `ward-probe serve` in a namespace, killed on drop.
pub struct Server {
    child: Child,
}

impl Server {
    /// Starts echo servers on `tcp` and `udp` ports (all addresses, v4 and v6) in `ns`
    /// and waits until they are bound.
    pub fn start(ns: &Netns, tcp: &[u16], udp: &[u16]) -> Result<Server> {
        let join = |p: &[u16]| {
            p.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut cmd = ns.nsenter(probe_bin());
        cmd.arg("serve");
        if !tcp.is_empty() {
            cmd.args(["--tcp", &join(tcp)]);
        }
        if !udp.is_empty() {
            cmd.args(["--udp", &join(udp)]);
        }
        let line = cmdline(&cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run `{line}`"))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut first = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut first);
            let _ = tx.send(first);
        });
        let mut server = Server { child };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if l.trim() == "ready" => Ok(server),
            Ok(l) => {
                let st = wait_within(&mut server.child, Duration::from_millis(500))
                    .ok()
                    .flatten();
                bail!("`{line}` did not start (exit {st:?}), said: {l:?}")
            }
            Err(_) => bail!("`{line}` not ready after 10 s"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A long-lived TCP connection (`ward-probe hold`) exchanging a line every interval;
/// it succeeds only if every exchange did. Killed on drop.
pub struct Hold {
    child: Child,
    line: String,
}

impl Hold {
    /// Opens the connection from `from` to `addr:port` and keeps it for `for_ms`.
    pub fn start(
        from: &Netns,
        addr: IpAddr,
        port: u16,
        every_ms: u64,
        for_ms: u64,
    ) -> Result<Hold> {
        let mut cmd = from.nsenter(probe_bin());
        cmd.args(["hold", "tcp", &addr.to_string(), &port.to_string()]);
        cmd.args([
            "--every-ms",
            &every_ms.to_string(),
            "--for-ms",
            &for_ms.to_string(),
        ]);
        cmd.args(["--timeout-ms", &PROBE_TIMEOUT_MS.to_string()]);
        let line = cmdline(&cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run `{line}`"))?;
        Ok(Hold { child, line })
    }

    /// Whether the connection is still being held (the process has not exited).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `limit` for the end; `Ok(output)` if every exchange succeeded,
    /// else an error with what `ward-probe hold` printed.
    pub fn finish(mut self, limit: Duration) -> Result<String> {
        let status = wait_within(&mut self.child, limit)?;
        let mut text = String::new();
        use std::io::Read;
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut text);
        }
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut text);
        }
        match status {
            Some(st) if st.success() => Ok(text.trim().to_string()),
            Some(st) => bail!("`{}` failed ({st}): {}", self.line, text.trim()),
            None => bail!(
                "`{}` still running after {limit:?}; killed: {}",
                self.line,
                text.trim()
            ),
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
