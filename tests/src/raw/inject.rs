//! Frames sent out of an interface of a namespace through AF_PACKET.
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::{marker, Packet, Sent};
use crate::clinic::{Clinic, Host};
use crate::netns::Netns;

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

pub(super) const ETH_P_ALL: u16 = 0x0003;

/// An AF_PACKET socket created in `ns` and bound to `ifname` there (`proto` 0: it
/// receives nothing, for sending).
pub(super) fn packet_socket(ns: &Netns, ifname: &str, proto: u16) -> Result<OwnedFd> {
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
