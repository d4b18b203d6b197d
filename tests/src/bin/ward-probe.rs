//! `ward-probe`: echo servers and reachability probes for Ward's namespace tests.
//!
//! - `ward-probe serve --tcp 22,104 --udp 514`: echo servers on all addresses (IPv4
//!   and IPv6), one thread per listener and per connection; prints `ready` once all
//!   are bound, then runs until killed.
//! - `ward-probe connect tcp|udp ADDR PORT --timeout-ms 1000`: exit 0 when a short
//!   payload comes back (TCP: over an established connection; UDP: as a datagram),
//!   exit 1 on refusal or timeout, printing why.
//! - `ward-probe hold tcp ADDR PORT --every-ms 100 --for-ms N`: one connection, a
//!   line echoed every interval for N ms; exit 0 only if every exchange succeeded.
//! - `ward-probe flood ADDR PORT --count N --max-ms T`: sends N small UDP datagrams
//!   as fast as it can, stopping at N or after T ms; prints how many were sent.
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "ward-probe",
    about = "Echo servers and reachability probes for Ward's tests"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Proto {
    Tcp,
    Udp,
}

#[derive(Subcommand)]
enum Cmd {
    /// Echo servers on all addresses until killed.
    Serve {
        /// TCP ports, comma-separated.
        #[arg(long, value_delimiter = ',')]
        tcp: Vec<u16>,
        /// UDP ports, comma-separated.
        #[arg(long, value_delimiter = ',')]
        udp: Vec<u16>,
    },
    /// One exchange; exit 0 if the payload came back, 1 if not.
    Connect {
        proto: Proto,
        addr: IpAddr,
        port: u16,
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
    },
    /// Keep one TCP connection and exchange a line every interval.
    Hold {
        proto: Proto,
        addr: IpAddr,
        port: u16,
        #[arg(long, default_value_t = 100)]
        every_ms: u64,
        #[arg(long)]
        for_ms: u64,
        /// Connect timeout and per-exchange timeout.
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
    },
    /// Send a bounded burst of UDP datagrams (a flood for the event budget tests).
    Flood {
        addr: IpAddr,
        port: u16,
        /// Datagrams to send at most.
        #[arg(long)]
        count: u64,
        /// Time limit.
        #[arg(long, default_value_t = 5000)]
        max_ms: u64,
    },
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Flood {
            addr,
            port,
            count,
            max_ms,
        } => match flood(SocketAddr::new(addr, port), count, max_ms) {
            Ok(sent) => {
                println!("sent {sent}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("flood failed: {e}");
                ExitCode::from(1)
            }
        },
        Cmd::Serve { tcp, udp } => serve(&tcp, &udp),
        Cmd::Connect {
            proto,
            addr,
            port,
            timeout_ms,
        } => {
            let sa = SocketAddr::new(addr, port);
            let timeout = Duration::from_millis(timeout_ms.max(1));
            let start = Instant::now();
            let r = match proto {
                Proto::Tcp => connect_tcp(sa, timeout),
                Proto::Udp => connect_udp(sa, timeout),
            };
            let name = match proto {
                Proto::Tcp => "tcp",
                Proto::Udp => "udp",
            };
            match r {
                Ok(()) => {
                    println!("ok {name} {sa} in {} ms", start.elapsed().as_millis());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!(
                        "unreachable {name} {sa} after {} ms: {e}",
                        start.elapsed().as_millis()
                    );
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Hold {
            proto: Proto::Udp, ..
        } => {
            eprintln!("hold supports tcp only");
            ExitCode::from(2)
        }
        Cmd::Hold {
            proto: Proto::Tcp,
            addr,
            port,
            every_ms,
            for_ms,
            timeout_ms,
        } => {
            match hold(
                SocketAddr::new(addr, port),
                every_ms,
                for_ms,
                Duration::from_millis(timeout_ms.max(1)),
            ) {
                Ok(n) => {
                    println!("held tcp {addr} {port}: {n} exchanges over {for_ms} ms, all echoed");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("hold tcp {addr} {port} failed: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn payload() -> Vec<u8> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("ward-probe {} {nanos}\n", std::process::id()).into_bytes()
}

fn connect_tcp(sa: SocketAddr, timeout: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&sa, timeout)?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(50));
    s.set_read_timeout(Some(left))?;
    s.set_write_timeout(Some(left))?;
    exchange(&mut s, &payload())
}

fn exchange(s: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    s.write_all(data)?;
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back)?;
    if back != data {
        return Err(std::io::Error::other("echo differs from what was sent"));
    }
    Ok(())
}

fn connect_udp(sa: SocketAddr, timeout: Duration) -> std::io::Result<()> {
    let local: SocketAddr = match sa {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(local)?;
    s.connect(sa)?;
    let data = payload();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    // Resend every 200 ms within the timeout: a datagram lost while neighbours
    // are resolved must not read as a denial.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no echo datagram",
            ));
        }
        s.send(&data)?;
        s.set_read_timeout(Some(left.min(Duration::from_millis(200))))?;
        match s.recv(&mut buf) {
            Ok(n) if buf[..n] == data[..] => return Ok(()),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        }
    }
}

fn hold(sa: SocketAddr, every_ms: u64, for_ms: u64, timeout: Duration) -> Result<u64, String> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&sa, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut n = 0u64;
    loop {
        let line = format!("hold {n} {}\n", std::process::id());
        exchange(&mut s, line.as_bytes())
            .map_err(|e| format!("exchange {n} at {} ms: {e}", start.elapsed().as_millis()))?;
        n += 1;
        if start.elapsed() >= Duration::from_millis(for_ms) {
            return Ok(n);
        }
        std::thread::sleep(Duration::from_millis(every_ms));
    }
}

/// Binds `[::]:port` (dual-stack) and, when the system keeps IPv6 sockets IPv6-only,
/// `0.0.0.0:port` too.
fn bind_all<T>(
    port: u16,
    bind: impl Fn(SocketAddr) -> std::io::Result<T>,
) -> std::io::Result<Vec<T>> {
    let mut v = vec![bind((Ipv6Addr::UNSPECIFIED, port).into())?];
    match bind((Ipv4Addr::UNSPECIFIED, port).into()) {
        Ok(s) => v.push(s),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
        Err(e) => return Err(e),
    }
    Ok(v)
}

fn serve(tcp: &[u16], udp: &[u16]) -> ExitCode {
    for &port in tcp {
        let listeners = match bind_all(port, TcpListener::bind) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bind tcp {port}: {e}");
                return ExitCode::from(1);
            }
        };
        for l in listeners {
            std::thread::spawn(move || {
                for conn in l.incoming().flatten() {
                    std::thread::spawn(move || echo_tcp(conn));
                }
            });
        }
    }
    for &port in udp {
        let sockets = match bind_all(port, UdpSocket::bind) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("bind udp {port}: {e}");
                return ExitCode::from(1);
            }
        };
        for s in sockets {
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                loop {
                    if let Ok((n, from)) = s.recv_from(&mut buf) {
                        let _ = s.send_to(&buf[..n], from);
                    }
                }
            });
        }
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}

fn echo_tcp(mut conn: TcpStream) {
    // An idle client is dropped after a minute so no thread lingers forever.
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 || conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// Sends up to `count` datagrams to `to` within `max_ms`; returns how many were sent.
fn flood(to: SocketAddr, count: u64, max_ms: u64) -> std::io::Result<u64> {
    let local: SocketAddr = match to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)?;
    let deadline = Instant::now() + Duration::from_millis(max_ms);
    let mut sent = 0;
    while sent < count && Instant::now() < deadline {
        match socket.send_to(b"flood", to) {
            Ok(_) => sent += 1,
            // A full socket buffer: let the queue drain.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}
