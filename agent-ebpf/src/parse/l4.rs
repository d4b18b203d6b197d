//! TCP, UDP and ICMP: the flow a packet belongs to, its connection key, and the
//! packet an ICMP error quotes.
use ward_common::{family, proto, Addr, CtKey};

use super::{
    l3::{Fragment, Ip},
    Frame, MAX_L4_OFFSET,
};

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;

/// The flow a packet belongs to, as far as connection tracking is concerned.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Flow {
    /// `proto::*`.
    pub proto: u8,
    /// TCP flags (`tcp_flags::*`); 0 for other protocols.
    pub tcp_flags: u8,
    /// Source port (ICMP echo: identifier).
    pub sport: u16,
    /// Destination port (ICMP echo: identifier).
    pub dport: u16,
}

/// Result of the transport-layer parse of a first or unfragmented packet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Truncated or malformed: dropped.
    Malformed,
    /// May open a connection (TCP, UDP, ICMP echo request); its key is written.
    Opens,
    /// Passes only as part of a tracked connection (ICMP echo reply); its key is written.
    ReplyOnly,
    /// ICMP error: [`quoted`] finds the connection it is about.
    Error,
    /// ICMP error that cannot be about a connection of its receiver: the quoted
    /// packet's source is not the error's destination, or the error is oversized.
    Unrelated,
    /// IPv6 neighbour discovery.
    NeighbourDiscovery,
    /// Multicast listener discovery (ICMPv6 130, 131, 132, 143).
    Mld,
    /// Anything else: no rule can allow it.
    Other,
}

/// Parses the L4 header of `ip`, writing the flow and its connection key.
/// Not inlined, so that its temporaries get a stack frame of their own.
#[inline(never)]
pub fn transport(f: &Frame, ip: &Ip, flow: &mut Flow, key: &mut CtKey) -> Transport {
    let t = classify(f, ip, flow);
    match t {
        Transport::Opens | Transport::ReplyOnly => {
            *key = ct_key(ip.family, &ip.src, &ip.dst, flow);
            t
        }
        _ => t,
    }
}

#[inline(always)]
fn classify(f: &Frame, ip: &Ip, out: &mut Flow) -> Transport {
    let l4 = ip.l4;
    if l4 > MAX_L4_OFFSET {
        return Transport::Malformed;
    }
    let icmp = if ip.family == family::V4 {
        IPPROTO_ICMP
    } else {
        IPPROTO_ICMPV6
    };
    match ip.ip_proto {
        proto::TCP => {
            let Some(sport) = f.be16_at(l4) else {
                return Transport::Malformed;
            };
            let Some(dport) = f.be16_at(l4 + 2) else {
                return Transport::Malformed;
            };
            let Some([doff, flags]) = f.load::<[u8; 2]>(l4 + 12) else {
                return Transport::Malformed;
            };
            if l4 + 20 > ip.end || doff >> 4 < 5 {
                return Transport::Malformed;
            }
            set_flow(out, proto::TCP, flags, sport, dport);
            Transport::Opens
        }
        proto::UDP => {
            let Some(sport) = f.be16_at(l4) else {
                return Transport::Malformed;
            };
            let Some(dport) = f.be16_at(l4 + 2) else {
                return Transport::Malformed;
            };
            if l4 + 8 > ip.end || !f.has8(l4) {
                return Transport::Malformed;
            }
            set_flow(out, proto::UDP, 0, sport, dport);
            Transport::Opens
        }
        p if p == icmp => icmp_message(f, ip, out),
        _ => Transport::Other,
    }
}

/// The flow of a first or unfragmented TCP segment, for the failsafe check ahead of the
/// full parse; `None` for anything else or a short header.
#[inline(always)]
pub fn tcp_flow(f: &Frame, ip: &Ip) -> Option<Flow> {
    let l4 = ip.l4;
    if ip.ip_proto != proto::TCP || ip.fragment == Fragment::NonFirst || l4 > MAX_L4_OFFSET {
        return None;
    }
    if l4 + 20 > ip.end {
        return None;
    }
    let sport = f.be16_at(l4)?;
    let dport = f.be16_at(l4 + 2)?;
    let tcp_flags = f.u8_at(l4 + 13)?;
    Some(Flow {
        proto: proto::TCP,
        tcp_flags,
        sport,
        dport,
    })
}

/// Writes a flow through a volatile store: LLVM otherwise merges the stores of the
/// different protocols' paths in a way the verifier rejects ("invalid size of register spill").
#[inline(always)]
fn set_flow(out: &mut Flow, proto: u8, tcp_flags: u8, sport: u16, dport: u16) {
    // SAFETY: `out` is a valid, aligned, exclusive reference to a `Flow`.
    unsafe {
        core::ptr::write_volatile(
            out,
            Flow {
                proto,
                tcp_flags,
                sport,
                dport,
            },
        )
    };
}

#[inline(always)]
fn icmp_message(f: &Frame, ip: &Ip, out: &mut Flow) -> Transport {
    let l4 = ip.l4;
    let Some(ty) = f.u8_at(l4) else {
        return Transport::Malformed;
    };
    let Some(id) = f.be16_at(l4 + 4) else {
        return Transport::Malformed;
    };
    if l4 + 8 > ip.end || !f.has8(l4) {
        return Transport::Malformed;
    }
    set_flow(out, proto::ICMP, 0, id, id);
    let v4 = ip.family == family::V4;
    match (v4, ty) {
        (true, 8) | (false, 128) => Transport::Opens,
        (true, 0) | (false, 129) => Transport::ReplyOnly,
        (true, 3 | 11 | 12) | (false, 1..=4) => Transport::Error,
        (false, 133..=137) => Transport::NeighbourDiscovery,
        (false, 130..=132 | 143) => Transport::Mld,
        _ => Transport::Other,
    }
}

/// Longest ICMP error, IP header included: RFC 1812 (IPv4), RFC 4443 (IPv6).
const MAX_ERROR_V4: usize = 576;
const MAX_ERROR_V6: usize = 1280;

/// Parses the packet quoted by an ICMP error into its connection key: `Error`, or
/// `Malformed`, or `Other` when the quoted protocol cannot be tracked, or `Unrelated`
/// when the error cannot be about a connection of its destination (oversized, or the
/// quoted packet was not sent by the error's destination).
/// Not inlined, so that its temporaries get a stack frame of their own.
#[inline(never)]
pub fn quoted(f: &Frame, ip: &Ip, key: &mut CtKey) -> Transport {
    // Each header is bounds-checked as a whole, then read at constant offsets from the
    // checked copy: offsets computed field by field let LLVM fold them into a base
    // the verifier cannot prove non-negative.
    let off = ip.l4 + 8;
    let (hlen, ip_proto, src, dst, icmp) = if ip.family == family::V4 {
        let Some(h) = f.load::<[u32; 5]>(off) else {
            return Transport::Malformed;
        };
        let [b0, _, _, _] = h[0].to_ne_bytes();
        let [_, p, _, _] = h[2].to_ne_bytes();
        let ihl = ((b0 & 0x0f) as usize) * 4;
        if b0 >> 4 != 4 || ihl < 20 {
            return Transport::Malformed;
        }
        (ihl, p, [h[3], 0, 0, 0], [h[4], 0, 0, 0], IPPROTO_ICMP)
    } else {
        let Some(h) = f.load::<[u32; 10]>(off) else {
            return Transport::Malformed;
        };
        let [b0, _, _, _] = h[0].to_ne_bytes();
        let [_, _, p, _] = h[1].to_ne_bytes();
        if b0 >> 4 != 6 {
            return Transport::Malformed;
        }
        (
            40,
            p,
            [h[2], h[3], h[4], h[5]],
            [h[6], h[7], h[8], h[9]],
            IPPROTO_ICMPV6,
        )
    };
    let l4 = off + hlen;
    if l4 + 8 > ip.end || l4 > MAX_L4_OFFSET {
        return Transport::Malformed;
    }
    let Some(l4h) = f.load::<[u8; 8]>(l4) else {
        return Transport::Malformed;
    };
    // Checked after the loads: between a bounds check and its load, these comparisons
    // make LLVM spill the offset, and 6.1's verifier loses its bounds.
    let max = if ip.family == family::V4 {
        MAX_ERROR_V4
    } else {
        MAX_ERROR_V6
    };
    if ip.end - ip.l3 > max || src != ip.dst {
        return Transport::Unrelated;
    }
    let a = u16::from_be_bytes([l4h[0], l4h[1]]);
    let b = u16::from_be_bytes([l4h[2], l4h[3]]);
    let id = u16::from_be_bytes([l4h[4], l4h[5]]);
    let flow = match ip_proto {
        proto::TCP | proto::UDP => Flow {
            proto: ip_proto,
            tcp_flags: 0,
            sport: a,
            dport: b,
        },
        p if p == icmp => Flow {
            proto: proto::ICMP,
            tcp_flags: 0,
            sport: id,
            dport: id,
        },
        _ => return Transport::Other,
    };
    *key = ct_key(ip.family, &src, &dst, &flow);
    Transport::Error
}

/// TCP header flags.
pub mod tcp_flags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers: opens a connection.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// The acknowledgement field is significant.
    pub const ACK: u8 = 0x10;
}

/// Whether a TCP segment may open a connection: SYN without ACK, RST or FIN.
#[inline(always)]
pub fn opens_tcp(flags: u8) -> bool {
    flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST | tcp_flags::FIN) == tcp_flags::SYN
}

/// Direction-free connection key: the lower (address, port) endpoint first.
#[inline(always)]
pub fn ct_key(fam: u8, src: &Addr, dst: &Addr, flow: &Flow) -> CtKey {
    // Every field written once, so that no zeroing (an out-of-line `memset`) precedes.
    if less_or_equal(src, flow.sport, dst, flow.dport) {
        CtKey {
            addr_a: *src,
            addr_b: *dst,
            port_a: flow.sport,
            port_b: flow.dport,
            proto: flow.proto,
            family: fam,
            _pad: [0; 2],
        }
    } else {
        CtKey {
            addr_a: *dst,
            addr_b: *src,
            port_a: flow.dport,
            port_b: flow.sport,
            proto: flow.proto,
            family: fam,
            _pad: [0; 2],
        }
    }
}

/// Whether endpoint (`a`, `pa`) orders before or equal to (`b`, `pb`): address words
/// first, then ports; `ct_key` puts the lower endpoint first.
#[inline(always)]
pub fn less_or_equal(a: &Addr, pa: u16, b: &Addr, pb: u16) -> bool {
    for i in 0..4 {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    pa <= pb
}
