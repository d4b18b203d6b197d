//! Raw packets for the adversarial tests: IPv4/IPv6 packets with TCP, UDP, ICMP or
//! ICMPv6 built byte by byte (any source address, any flags), injected as Ethernet
//! frames through an AF_PACKET socket on an interface of a namespace ([`Injector`]),
//! and sniffed with AF_PACKET in the destination namespace ([`Sniffer`]), where only
//! incoming frames carrying a [`marker`] of this process count, so background
//! traffic (probes, neighbour discovery) never does.
//!
//! The sniffer sits on the destination host's interface: on a host running Ward
//! (XDP) it sees only what XDP passed; behind a gateway it sees what the gateway
//! forwarded. That is the oracle: what arrives.
//!
//! - [`packet`]: [`Packet`] (IPv4/IPv6, TCP/UDP/ICMP, any flags and addresses) and
//!   IPv6 extension headers.
//! - [`inject`]: [`Injector`], frames out of an interface of a namespace.
//! - [`sniff`]: [`Sniffer`], the marked frames that arrive at an interface.
//! - here: markers, [`verdicts`] (allowed packets arrive, denied ones do not), and a
//!   TCP connection opened inside a namespace ([`connect_in`]).
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::netns::Netns;

pub mod inject;
pub mod packet;
pub mod sniff;

pub use inject::{mac, Injector};
pub use packet::{describe, v6_extension, Packet, ATOMIC_FRAGMENT, L4, PADN_OPTIONS};
pub use sniff::Sniffer;

/// TCP flag bits.
pub mod tcp {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// Bytes every marker of this process starts with: `WARDADV<pid>:`.
pub fn marker_prefix() -> Vec<u8> {
    format!("WARDADV{}:", std::process::id()).into_bytes()
}

static MARKERS: AtomicU32 = AtomicU32::new(0);

/// A marker unique to this process and call, naming `tag` (put it in a payload and
/// count it with [`Sniffer::count`]).
pub fn marker(tag: &str) -> Vec<u8> {
    let n = MARKERS.fetch_add(1, Ordering::SeqCst);
    let mut m = marker_prefix();
    m.extend_from_slice(format!("{n}:{tag};").as_bytes());
    m
}

/// Whether `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A TCP connection opened from inside `ns` (an ordinary kernel socket of that
/// namespace), with an echo exchanged on it.
pub fn connect_in(ns: &Netns, to: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    let mut s = ns
        .enter(move || TcpStream::connect_timeout(&to, timeout))?
        .with_context(|| format!("connecting to {to} from {}", ns.name()))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    echo(&mut s).with_context(|| format!("first exchange with {to} from {}", ns.name()))?;
    Ok(s)
}

/// One line written and read back on `s` (the clinic's servers echo).
pub fn echo(s: &mut TcpStream) -> Result<()> {
    let line = format!("ward-adversary {}\n", std::process::id());
    s.write_all(line.as_bytes())?;
    let mut back = vec![0u8; line.len()];
    s.read_exact(&mut back)?;
    if back != line.as_bytes() {
        bail!("echo differs");
    }
    Ok(())
}

/// Closes `s` with a RST (SO_LINGER 0) rather than a FIN.
pub fn reset(s: TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt with a linger struct on a valid socket.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

/// How long an allowed packet may take to arrive (it is waited for only until it does).
pub const ARRIVAL: Duration = Duration::from_secs(10);

/// How long after the allowed packets arrived a denied one is still waited for:
/// `$WARD_ADVERSARY_GRACE_MS`, else 1 s.
pub fn grace() -> Duration {
    let ms = std::env::var("WARD_ADVERSARY_GRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    Duration::from_millis(ms)
}

/// A packet sent with a marker of its own, to be looked for at the destination.
#[derive(Clone, Debug)]
pub struct Sent {
    /// What it is, for messages.
    pub what: String,
    /// The marker appended to its payload.
    pub marker: Vec<u8>,
}

/// Checks what arrived: every `allowed` packet must reach its sniffer (each waited
/// for up to [`ARRIVAL`]); then, [`grace`] later, no `denied` packet may have reached
/// its sniffer. Returns one line per mismatch (empty: all as expected).
pub fn verdicts(allowed: &[(&Sniffer, &Sent)], denied: &[(&Sniffer, &Sent)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (sn, s) in allowed {
        if sn.wait_for(&s.marker, 1, ARRIVAL) == 0 {
            bad.push(format!(
                "allowed packet did not arrive within {ARRIVAL:?}: {} (sniffing {})",
                s.what,
                sn.what()
            ));
        }
    }
    std::thread::sleep(grace());
    for (sn, s) in denied {
        if sn.count(&s.marker) > 0 {
            bad.push(format!(
                "denied packet ARRIVED: {} {}",
                s.what,
                sn.report(&s.marker)
            ));
        }
    }
    bad
}

/// [`verdicts`], panicking with every mismatch under the heading `when`.
pub fn assert_verdicts(when: &str, allowed: &[(&Sniffer, &Sent)], denied: &[(&Sniffer, &Sent)]) {
    let bad = verdicts(allowed, denied);
    assert!(bad.is_empty(), "{when}:\n{}", bad.join("\n"));
}

/// `ip:port`.
pub fn sa(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

/// The bytes of an address.
pub fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The link-local IPv6 address of `ifname` in `ns`.
pub fn link_local(ns: &Netns, ifname: &str) -> Result<IpAddr> {
    let out = ns.ip(&["-6", "-o", "addr", "show", "dev", ifname, "scope", "link"])?;
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("no link-local address on {ifname} in {}: {out}", ns.name()))
}
