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
use std::ffi::CString;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::clinic::{Clinic, Host};
use crate::netns::Netns;

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

/// The upper-layer header of a [`Packet`].
#[derive(Clone, Debug)]
pub enum L4 {
    /// TCP: ports, flags ([`tcp`]), sequence and acknowledgement numbers.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Flag bits.
        flags: u8,
        /// Sequence number.
        seq: u32,
        /// Acknowledgement number.
        ack: u32,
    },
    /// UDP.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// ICMP (IPv4) or ICMPv6: type, code and the four bytes after the checksum
    /// (identifier/sequence, unused, MTU or the redirect's reserved word).
    Icmp {
        /// Type.
        kind: u8,
        /// Code.
        code: u8,
        /// Bytes 4..8 of the header.
        rest: [u8; 4],
    },
}

/// One IP packet; both addresses of one family.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Source address (forge at will).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Upper-layer header.
    pub l4: L4,
    /// Bytes after it (a marker; for an ICMP error, the quoted packet).
    pub payload: Vec<u8>,
}

impl Packet {
    /// A TCP segment with `flags` (seq 1000; ack 1 when ACK is set).
    pub fn tcp(src: SocketAddr, dst: SocketAddr, flags: u8) -> Packet {
        let ack = if flags & tcp::ACK != 0 { 1 } else { 0 };
        Packet::new(
            src.ip(),
            dst.ip(),
            L4::Tcp {
                sport: src.port(),
                dport: dst.port(),
                flags,
                seq: 1000,
                ack,
            },
        )
    }

    /// A UDP datagram.
    pub fn udp(src: SocketAddr, dst: SocketAddr) -> Packet {
        Packet::new(
            src.ip(),
            dst.ip(),
            L4::Udp {
                sport: src.port(),
                dport: dst.port(),
            },
        )
    }

    /// An ICMP or ICMPv6 message (the family of the addresses).
    pub fn icmp(src: IpAddr, dst: IpAddr, kind: u8, code: u8, rest: [u8; 4]) -> Packet {
        Packet::new(src, dst, L4::Icmp { kind, code, rest })
    }

    fn new(src: IpAddr, dst: IpAddr, l4: L4) -> Packet {
        assert_eq!(
            src.is_ipv6(),
            dst.is_ipv6(),
            "{src} and {dst} are of different families"
        );
        Packet {
            src,
            dst,
            ttl: 64,
            l4,
            payload: Vec::new(),
        }
    }

    /// The same packet with `payload` after the L4 header.
    pub fn with_payload(mut self, payload: impl Into<Vec<u8>>) -> Packet {
        self.payload = payload.into();
        self
    }

    /// The same packet with this TTL / hop limit.
    pub fn with_ttl(mut self, ttl: u8) -> Packet {
        self.ttl = ttl;
        self
    }

    /// The same TCP segment with these sequence and acknowledgement numbers.
    pub fn with_seq(mut self, seq_no: u32, ack_no: u32) -> Packet {
        if let L4::Tcp { seq, ack, .. } = &mut self.l4 {
            *seq = seq_no;
            *ack = ack_no;
        }
        self
    }

    /// IPv6?
    pub fn is_v6(&self) -> bool {
        self.src.is_ipv6()
    }

    fn proto(&self) -> u8 {
        match (&self.l4, self.is_v6()) {
            (L4::Tcp { .. }, _) => 6,
            (L4::Udp { .. }, _) => 17,
            (L4::Icmp { .. }, false) => 1,
            (L4::Icmp { .. }, true) => 58,
        }
    }

    /// The IP packet: header, L4 header and payload, checksums filled in.
    pub fn ip(&self) -> Vec<u8> {
        let mut l4 = match self.l4 {
            L4::Tcp {
                sport,
                dport,
                flags,
                seq,
                ack,
            } => {
                let mut h = vec![0u8; 20];
                h[0..2].copy_from_slice(&sport.to_be_bytes());
                h[2..4].copy_from_slice(&dport.to_be_bytes());
                h[4..8].copy_from_slice(&seq.to_be_bytes());
                h[8..12].copy_from_slice(&ack.to_be_bytes());
                h[12] = 5 << 4;
                h[13] = flags;
                h[14..16].copy_from_slice(&64240u16.to_be_bytes());
                h
            }
            L4::Udp { sport, dport } => {
                let mut h = vec![0u8; 8];
                h[0..2].copy_from_slice(&sport.to_be_bytes());
                h[2..4].copy_from_slice(&dport.to_be_bytes());
                h[4..6].copy_from_slice(&((8 + self.payload.len()) as u16).to_be_bytes());
                h
            }
            L4::Icmp { kind, code, rest } => {
                let mut h = vec![0u8; 8];
                h[0] = kind;
                h[1] = code;
                h[4..8].copy_from_slice(&rest);
                h
            }
        };
        l4.extend_from_slice(&self.payload);
        let proto = self.proto();
        // Checksum offset in the L4 header, and whether a pseudo-header is summed.
        let (at, pseudo) = match self.l4 {
            L4::Tcp { .. } => (16, true),
            L4::Udp { .. } => (6, true),
            L4::Icmp { .. } => (2, self.is_v6()),
        };
        let mut sum = 0u32;
        if pseudo {
            sum = add(sum, &addr_bytes(self.src));
            sum = add(sum, &addr_bytes(self.dst));
            if self.is_v6() {
                sum = add(sum, &(l4.len() as u32).to_be_bytes());
                sum = add(sum, &[0, 0, 0, proto]);
            } else {
                sum = add(sum, &[0, proto]);
                sum = add(sum, &(l4.len() as u16).to_be_bytes());
            }
        }
        let mut c = fold(add(sum, &l4));
        if c == 0 && matches!(self.l4, L4::Udp { .. }) {
            c = 0xffff;
        }
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());

        let mut p = match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut h = vec![0u8; 20];
                h[0] = 0x45;
                h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
                h[4..6].copy_from_slice(&(MARKERS.load(Ordering::Relaxed) as u16).to_be_bytes());
                h[8] = self.ttl;
                h[9] = proto;
                h[12..16].copy_from_slice(&s.octets());
                h[16..20].copy_from_slice(&d.octets());
                let c = fold(add(0, &h));
                h[10..12].copy_from_slice(&c.to_be_bytes());
                h
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut h = vec![0u8; 40];
                h[0] = 0x60;
                h[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
                h[6] = proto;
                h[7] = self.ttl;
                h[8..24].copy_from_slice(&s.octets());
                h[24..40].copy_from_slice(&d.octets());
                h
            }
            _ => unreachable!("families checked in Packet::new"),
        };
        p.extend_from_slice(&l4);
        p
    }

    /// The Ethernet frame carrying [`Packet::ip`].
    pub fn frame(&self, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Vec<u8> {
        let mut f = Vec::with_capacity(14 + 60 + self.payload.len());
        f.extend_from_slice(&dst_mac);
        f.extend_from_slice(&src_mac);
        f.extend_from_slice(if self.is_v6() {
            &[0x86, 0xdd]
        } else {
            &[0x08, 0x00]
        });
        f.extend_from_slice(&self.ip());
        f
    }
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn add(mut sum: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One line about an Ethernet frame, for messages: `IPv4 a > b TCP 1>2 [S] len 60`.
pub fn describe(frame: &[u8]) -> String {
    if frame.len() < 14 {
        return format!("runt frame of {} bytes", frame.len());
    }
    let ip = &frame[14..];
    let (v, src, dst, proto, l4): (&str, IpAddr, IpAddr, u8, &[u8]) =
        match u16::from_be_bytes([frame[12], frame[13]]) {
            0x0800 if ip.len() >= 20 => {
                let ihl = ((ip[0] & 0xf) as usize * 4).min(ip.len());
                let s: [u8; 4] = ip[12..16].try_into().unwrap();
                let d: [u8; 4] = ip[16..20].try_into().unwrap();
                ("IPv4", s.into(), d.into(), ip[9], &ip[ihl..])
            }
            0x86dd if ip.len() >= 40 => {
                let s: [u8; 16] = ip[8..24].try_into().unwrap();
                let d: [u8; 16] = ip[24..40].try_into().unwrap();
                ("IPv6", s.into(), d.into(), ip[6], &ip[40..])
            }
            t => return format!("ethertype {t:#06x}, {} bytes", frame.len()),
        };
    let what = match proto {
        6 if l4.len() >= 14 => {
            let f = l4[13];
            let flags: String = [
                (tcp::SYN, 'S'),
                (tcp::ACK, '.'),
                (tcp::FIN, 'F'),
                (tcp::RST, 'R'),
                (tcp::PSH, 'P'),
            ]
            .iter()
            .filter(|(b, _)| f & b != 0)
            .map(|(_, c)| *c)
            .collect();
            format!(
                "TCP {}>{} [{flags}]",
                u16::from_be_bytes([l4[0], l4[1]]),
                u16::from_be_bytes([l4[2], l4[3]])
            )
        }
        17 if l4.len() >= 4 => format!(
            "UDP {}>{}",
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]])
        ),
        1 | 58 if l4.len() >= 2 => format!("ICMP type {} code {}", l4[0], l4[1]),
        p => format!("protocol {p}"),
    };
    format!("{v} {src} > {dst} {what}, {} bytes", frame.len())
}

/// The MAC address of `ifname` in `ns` (from `ip -o link show`).
pub fn mac(ns: &Netns, ifname: &str) -> Result<[u8; 6]> {
    let out = ns.ip(&["-o", "link", "show", "dev", ifname])?;
    let text = out
        .split("link/ether ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .with_context(|| format!("no MAC address for {ifname} in {}: {out}", ns.name()))?;
    let mut m = [0u8; 6];
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        bail!("bad MAC address {text} of {ifname}");
    }
    for (b, p) in m.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).with_context(|| format!("bad MAC address {text}"))?;
    }
    Ok(m)
}

const ETH_P_ALL: u16 = 0x0003;

/// An AF_PACKET socket created in `ns` and bound to `ifname` there (`proto` 0: it
/// receives nothing, for sending).
fn packet_socket(ns: &Netns, ifname: &str, proto: u16) -> Result<OwnedFd> {
    let name = CString::new(ifname).context("interface name")?;
    let what = format!("AF_PACKET socket on {ifname} in {}", ns.name());
    ns.enter(move || -> Result<OwnedFd> {
        // SAFETY: plain system calls on a NUL-terminated name and on a zeroed
        // sockaddr_ll of the right size; the fd is owned at once.
        unsafe {
            let index = libc::if_nametoindex(name.as_ptr());
            if index == 0 {
                bail!("no interface: {}", std::io::Error::last_os_error());
            }
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                proto.to_be() as libc::c_int,
            );
            if fd < 0 {
                bail!("socket: {}", std::io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto.to_be();
            sll.sll_ifindex = index as libc::c_int;
            if libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            ) != 0
            {
                bail!("bind: {}", std::io::Error::last_os_error());
            }
            Ok(fd)
        }
    })?
    .with_context(|| what)
}

/// Sends hand-built frames out of one interface of a namespace.
pub struct Injector {
    fd: OwnedFd,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    what: String,
}

impl Injector {
    /// Frames leave `ifname` in `ns` from its MAC address towards `dst_mac`.
    pub fn new(ns: &Netns, ifname: &str, dst_mac: [u8; 6]) -> Result<Injector> {
        let fd = packet_socket(ns, ifname, 0)?;
        Ok(Injector {
            fd,
            src_mac: mac(ns, ifname)?,
            dst_mac,
            what: format!("{ifname} in {}", ns.name()),
        })
    }

    /// `host` as an attacker with raw sockets: frames leave its interface towards the
    /// gateway (its next hop), whatever their addresses.
    pub fn from_host(clinic: &Clinic, host: &Host) -> Result<Injector> {
        Injector::new(&host.ns, host.host_if, mac(&clinic.gw, &host.gw_if)?)
    }

    /// A neighbour on `host`'s link (the gateway's side of it): frames arrive on the
    /// host's interface directly, not routed.
    pub fn on_link_to(clinic: &Clinic, host: &Host) -> Result<Injector> {
        Injector::new(&clinic.gw, &host.gw_if, mac(&host.ns, host.host_if)?)
    }

    /// Sends one packet.
    pub fn send(&self, p: &Packet) -> Result<()> {
        self.send_frame(&p.frame(self.src_mac, self.dst_mac))
    }

    /// Sends one frame as it is, retrying briefly on a full queue.
    pub fn send_frame(&self, f: &[u8]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            // SAFETY: f is a valid buffer of f.len() bytes.
            let n = unsafe { libc::send(self.fd.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
            if n >= 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            let retry = matches!(e.raw_os_error(), Some(libc::ENOBUFS) | Some(libc::EAGAIN));
            if !retry || Instant::now() > deadline {
                bail!("sending {} bytes on {}: {e}", f.len(), self.what);
            }
            std::thread::yield_now();
        }
    }

    /// Sends the packets `make(0)`, `make(1)`, … until `count` are sent or `max` has
    /// passed; returns how many were sent.
    pub fn burst(&self, count: u64, max: Duration, make: impl FnMut(u64) -> Packet) -> Result<u64> {
        self.paced(count, max, 0, make)
    }

    /// [`Injector::burst`] at no more than `per_second` packets a second (0: as fast
    /// as it can), so a flood leaves the machine's CPUs to the agent under test.
    pub fn paced(
        &self,
        count: u64,
        max: Duration,
        per_second: u64,
        mut make: impl FnMut(u64) -> Packet,
    ) -> Result<u64> {
        let start = Instant::now();
        let deadline = start + max;
        let mut sent = 0;
        while sent < count && Instant::now() < deadline {
            self.send(&make(sent))?;
            sent += 1;
            if per_second > 0 && sent % 64 == 0 {
                let due = Duration::from_secs_f64(sent as f64 / per_second as f64);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(
                        wait.min(deadline.saturating_duration_since(Instant::now())),
                    );
                }
            }
        }
        Ok(sent)
    }
}

/// Frames kept at most by a sniffer (a flood test counts more than it keeps).
const KEEP_AT_MOST: usize = 20_000;

/// Incoming frames of one interface that carry this process's marker prefix,
/// collected by a thread until dropped.
pub struct Sniffer {
    stop: Arc<AtomicBool>,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<JoinHandle<()>>,
    what: String,
}

impl Sniffer {
    /// Starts sniffing `ifname` in `ns` (packets it sends itself are ignored).
    pub fn start(ns: &Netns, ifname: &str) -> Result<Sniffer> {
        let fd = packet_socket(ns, ifname, ETH_P_ALL)?;
        let big: libc::c_int = 16 << 20;
        // SAFETY: setsockopt with a c_int option value. Failure leaves the default.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&big as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(Mutex::new(Vec::new()));
        let (s, f) = (Arc::clone(&stop), Arc::clone(&frames));
        let prefix = marker_prefix();
        let thread = std::thread::spawn(move || sniff(fd, &prefix, &s, &f));
        Ok(Sniffer {
            stop,
            frames,
            thread: Some(thread),
            what: format!("{ifname} in {}", ns.name()),
        })
    }

    /// Sniffs `host`'s own interface.
    pub fn on(host: &Host) -> Result<Sniffer> {
        Sniffer::start(&host.ns, host.host_if)
    }

    /// Frames seen so far carrying `marker`.
    pub fn count(&self, marker: &[u8]) -> usize {
        self.lock().iter().filter(|f| contains(f, marker)).count()
    }

    /// Waits until `n` frames carrying `marker` were seen or `limit` passed; returns
    /// how many were.
    pub fn wait_for(&self, marker: &[u8], n: usize, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let c = self.count(marker);
            if c >= n || Instant::now() >= deadline {
                return c;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The frames seen carrying `marker`, described one a line.
    pub fn report(&self, marker: &[u8]) -> String {
        let g = self.lock();
        let mut lines: Vec<String> = g
            .iter()
            .filter(|f| contains(f, marker))
            .take(20)
            .map(|f| format!("  {}", describe(f)))
            .collect();
        if lines.is_empty() {
            lines.push("  (none)".into());
        }
        format!("on {}:\n{}", self.what, lines.join("\n"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.frames.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sniff(fd: OwnedFd, prefix: &[u8], stop: &AtomicBool, frames: &Mutex<Vec<Vec<u8>>>) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
            continue;
        }
        loop {
            // SAFETY: buf and sll are valid for the sizes given.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            let n = unsafe {
                libc::recvfrom(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n <= 0 {
                break;
            }
            if sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let f = &buf[..n as usize];
            if contains(f, prefix) {
                let mut g = frames.lock().unwrap_or_else(|p| p.into_inner());
                if g.len() < KEEP_AT_MOST {
                    g.push(f.to_vec());
                }
            }
        }
    }
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

impl Injector {
    /// Sends `p` with a fresh marker appended to its payload; `what` names it.
    pub fn mark(&self, what: &str, mut p: Packet) -> Result<Sent> {
        let m = marker(&what.replace(' ', "_"));
        p.payload.extend_from_slice(&m);
        self.send(&p).with_context(|| what.to_string())?;
        Ok(Sent {
            what: format!("{what} ({} > {})", p.src, p.dst),
            marker: m,
        })
    }
}

impl Injector {
    /// [`Injector::mark`], with the IP packet passed through `edit` before it is sent
    /// (e.g. [`v6_extension`]).
    pub fn mark_edited(
        &self,
        what: &str,
        mut p: Packet,
        edit: impl FnOnce(Vec<u8>) -> Vec<u8>,
    ) -> Result<Sent> {
        let m = marker(&what.replace(' ', "_"));
        p.payload.extend_from_slice(&m);
        let ether: &[u8] = if p.is_v6() {
            &[0x86, 0xdd]
        } else {
            &[0x08, 0x00]
        };
        let mut f = Vec::new();
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        f.extend_from_slice(ether);
        f.extend_from_slice(&edit(p.ip()));
        self.send_frame(&f).with_context(|| what.to_string())?;
        Ok(Sent {
            what: format!("{what} ({} > {})", p.src, p.dst),
            marker: m,
        })
    }
}

/// An IPv6 packet with an extension header inserted after the fixed header: `code`
/// (0 hop-by-hop, 60 destination options, 44 fragment) and its bytes after the
/// next-header byte (a multiple of 8 bytes in all). The upper-layer checksum stays valid.
pub fn v6_extension(mut ip: Vec<u8>, code: u8, rest: &[u8]) -> Vec<u8> {
    assert!(ip.len() >= 40 && ip[0] >> 4 == 6, "not an IPv6 packet");
    assert_eq!(
        (rest.len() + 1) % 8,
        0,
        "extension headers are multiples of 8 bytes"
    );
    let mut ext = vec![ip[6]];
    ext.extend_from_slice(rest);
    ip[6] = code;
    let len = u16::from_be_bytes([ip[4], ip[5]]) + ext.len() as u16;
    ip[4..6].copy_from_slice(&len.to_be_bytes());
    ip.splice(40..40, ext);
    ip
}

/// Destination options (or hop-by-hop) header bytes after the next-header byte: length
/// 0 and one PadN option filling 6 bytes.
pub const PADN_OPTIONS: [u8; 7] = [0, 1, 4, 0, 0, 0, 0];

/// Fragment header bytes after the next-header byte for an atomic fragment (offset 0,
/// no more fragments).
pub const ATOMIC_FRAGMENT: [u8; 7] = [0, 0, 0, 0, 0, 0x2a, 0x2a];

/// Checks what arrived: every `allowed` packet must reach its sniffer (each waited
/// for up to [`ARRIVAL`]); then, [`grace`] later, no `denied` packet may have reached
/// its sniffer. Returns one line per mismatch (empty: all as expected).
pub fn verdicts(allowed: &[(&Sniffer, &Sent)], denied: &[(&Sniffer, &Sent)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (sn, s) in allowed {
        if sn.wait_for(&s.marker, 1, ARRIVAL) == 0 {
            bad.push(format!(
                "allowed packet did not arrive within {ARRIVAL:?}: {} (sniffing {})",
                s.what, sn.what
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
