//! Bounds-checked header parsing, as `docs/dataplane.md` specifies.
use ward_common::{family, proto, Addr, CtKey};

/// Offsets past this are refused, so the verifier can bound every packet offset.
pub const MAX_L4_OFFSET: usize = 1024;

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;
const MAX_IPV6_EXT_HEADERS: usize = 6;

/// The packet bytes: `data..data_end` is readable, `len` is the whole frame's length.
#[derive(Clone, Copy)]
pub struct Frame {
    /// First byte.
    pub data: usize,
    /// One past the last readable byte.
    pub data_end: usize,
    /// Length of the frame (greater than `data_end - data` for a non-linear skb).
    pub len: usize,
}

impl Frame {
    /// A pointer to a `T` at `off`, if it lies within the readable bytes.
    #[inline(always)]
    fn ptr_at<T>(&self, off: usize) -> Option<*const T> {
        if off > MAX_L4_OFFSET + 64 {
            return None;
        }
        let start = self.data + off;
        if start + core::mem::size_of::<T>() > self.data_end {
            return None;
        }
        Some(start as *const T)
    }

    /// The byte at `off`. The bounds check covers two bytes: LLVM turns a one-byte
    /// check into `ptr >= data_end`, from which the verifier learns no range. Every
    /// byte read here is followed by more bytes that the header must have anyway.
    #[inline(always)]
    fn u8_at(&self, off: usize) -> Option<u8> {
        self.ptr_at::<[u8; 2]>(off).map(|p| unsafe { (*p)[0] })
    }

    #[inline(always)]
    fn be16_at(&self, off: usize) -> Option<u16> {
        self.ptr_at::<[u8; 2]>(off)
            .map(|p| u16::from_be_bytes(unsafe { *p }))
    }

    #[inline(always)]
    fn be32_at(&self, off: usize) -> Option<u32> {
        self.ptr_at::<[u8; 4]>(off)
            .map(|p| u32::from_be_bytes(unsafe { *p }))
    }

    // Word loads from the packet: the kernel allows unaligned packet access on the
    // architectures Ward supports, and word loads keep the verifier's work small.
    #[inline(always)]
    fn addr4_at(&self, off: usize) -> Option<Addr> {
        let w = unsafe { *self.ptr_at::<u32>(off)? };
        Some([w, 0, 0, 0])
    }

    #[inline(always)]
    fn addr6_at(&self, off: usize) -> Option<Addr> {
        self.ptr_at::<[u32; 4]>(off).map(|p| unsafe { *p })
    }
}

/// Fragment position of an IP packet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    None,
    /// Offset 0 with more fragments to come.
    First,
    /// Offset > 0.
    NonFirst,
}

/// An IP packet's network-layer facts.
pub struct Ip {
    /// `family::V4` or `family::V6`.
    pub family: u8,
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// IP protocol number of the payload.
    pub ip_proto: u8,
    /// Offset of the L4 header in the frame.
    pub l4: usize,
    /// Offset one past the IP packet's last byte.
    pub end: usize,
    /// Fragment position.
    pub fragment: Fragment,
    /// Identification of a fragmented packet.
    pub frag_id: u32,
    /// Protocol that identifies a fragmented packet: IPv4's protocol, or the next
    /// header named by IPv6's fragment header.
    pub frag_proto: u8,
}

/// Result of the network-layer parse.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Not IPv4 or IPv6: passes.
    NotIp,
    /// Truncated or malformed: dropped.
    Malformed,
    /// An IP packet, written to the `Ip` passed in.
    Ip,
}

/// Parses Ethernet (with up to two VLAN tags) and the IP header into `ip`.
/// Not inlined, so that its temporaries get a stack frame of their own.
#[inline(never)]
pub fn network(f: &Frame, ip: &mut Ip) -> Network {
    let Some(mut ether_type) = f.be16_at(12) else {
        return Network::Malformed;
    };
    let mut off = ETH_HLEN;
    if ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD {
        let Some(t) = f.be16_at(off + 2) else {
            return Network::Malformed;
        };
        ether_type = t;
        off += 4;
        if ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD {
            let Some(t) = f.be16_at(off + 2) else {
                return Network::Malformed;
            };
            ether_type = t;
            off += 4;
        }
    }
    match ether_type {
        ETH_P_IP => ipv4(f, off, ip),
        ETH_P_IPV6 => ipv6(f, off, ip),
        ETH_P_8021Q | ETH_P_8021AD => Network::Malformed,
        _ => Network::NotIp,
    }
}

#[inline(always)]
fn ipv4(f: &Frame, off: usize, out: &mut Ip) -> Network {
    let Some(b0) = f.u8_at(off) else {
        return Network::Malformed;
    };
    let Some(tot_len) = f.be16_at(off + 2) else {
        return Network::Malformed;
    };
    let Some(id) = f.be16_at(off + 4) else {
        return Network::Malformed;
    };
    let Some(frag) = f.be16_at(off + 6) else {
        return Network::Malformed;
    };
    let Some(ip_proto) = f.u8_at(off + 9) else {
        return Network::Malformed;
    };
    let Some(src) = f.addr4_at(off + 12) else {
        return Network::Malformed;
    };
    let Some(dst) = f.addr4_at(off + 16) else {
        return Network::Malformed;
    };
    let ihl = ((b0 & 0x0f) as usize) * 4;
    let tot_len = tot_len as usize;
    if b0 >> 4 != 4 || ihl < 20 || tot_len < ihl || off + tot_len > f.len {
        return Network::Malformed;
    }
    let fragment = if frag & 0x1fff != 0 {
        Fragment::NonFirst
    } else if frag & 0x2000 != 0 {
        Fragment::First
    } else {
        Fragment::None
    };
    *out = Ip {
        family: family::V4,
        src,
        dst,
        ip_proto,
        l4: off + ihl,
        end: off + tot_len,
        fragment,
        frag_id: id as u32,
        frag_proto: ip_proto,
    };
    Network::Ip
}

#[inline(always)]
fn ipv6(f: &Frame, off: usize, out: &mut Ip) -> Network {
    let Some(b0) = f.u8_at(off) else {
        return Network::Malformed;
    };
    let Some(payload) = f.be16_at(off + 4) else {
        return Network::Malformed;
    };
    let Some(mut nh) = f.u8_at(off + 6) else {
        return Network::Malformed;
    };
    let Some(src) = f.addr6_at(off + 8) else {
        return Network::Malformed;
    };
    let Some(dst) = f.addr6_at(off + 24) else {
        return Network::Malformed;
    };
    let end = off + 40 + payload as usize;
    if b0 >> 4 != 6 || end > f.len {
        return Network::Malformed;
    }
    let mut l4 = off + 40;
    let mut fragment = Fragment::None;
    let mut frag_id = 0u32;
    let mut frag_proto = 0u8;
    for i in 0..=MAX_IPV6_EXT_HEADERS {
        let len = match nh {
            0 | 43 | 60 | 51 => {
                let Some(hlen) = f.u8_at(l4 + 1) else {
                    return Network::Malformed;
                };
                if nh == 51 {
                    (hlen as usize + 2) * 4
                } else {
                    (hlen as usize + 1) * 8
                }
            }
            44 => 8,
            _ => break,
        };
        if i == MAX_IPV6_EXT_HEADERS || l4 + len > end {
            return Network::Malformed;
        }
        let Some(next) = f.u8_at(l4) else {
            return Network::Malformed;
        };
        if nh == 44 {
            let Some(offset) = f.be16_at(l4 + 2) else {
                return Network::Malformed;
            };
            let Some(id) = f.be32_at(l4 + 4) else {
                return Network::Malformed;
            };
            nh = next;
            l4 += len;
            if offset >> 3 != 0 {
                fragment = Fragment::NonFirst;
                frag_id = id;
                frag_proto = next;
                break;
            }
            if offset & 1 != 0 {
                fragment = Fragment::First;
                frag_id = id;
                frag_proto = next;
            }
        } else {
            nh = next;
            l4 += len;
        }
        if l4 > MAX_L4_OFFSET {
            return Network::Malformed;
        }
    }
    *out = Ip {
        family: family::V6,
        src,
        dst,
        ip_proto: nh,
        l4,
        end,
        fragment,
        frag_id,
        frag_proto,
    };
    Network::Ip
}

/// The flow a packet belongs to, as far as connection tracking is concerned.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Flow {
    /// `proto::*`.
    pub proto: u8,
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
    /// IPv6 neighbour discovery.
    NeighbourDiscovery,
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
            let Some(doff) = f.u8_at(l4 + 12) else {
                return Transport::Malformed;
            };
            if l4 + 20 > ip.end || doff >> 4 < 5 {
                return Transport::Malformed;
            }
            set_flow(out, proto::TCP, sport, dport);
            Transport::Opens
        }
        proto::UDP => {
            let Some(sport) = f.be16_at(l4) else {
                return Transport::Malformed;
            };
            let Some(dport) = f.be16_at(l4 + 2) else {
                return Transport::Malformed;
            };
            if l4 + 8 > ip.end || f.ptr_at::<[u8; 8]>(l4).is_none() {
                return Transport::Malformed;
            }
            set_flow(out, proto::UDP, sport, dport);
            Transport::Opens
        }
        p if p == icmp => icmp_message(f, ip, out),
        _ => Transport::Other,
    }
}

/// TCP source port, destination port and flags of a first or unfragmented TCP
/// segment, for the failsafe check; `None` for anything else or a short header.
#[inline(always)]
pub fn tcp_ports_and_flags(f: &Frame, ip: &Ip) -> Option<(u16, u16, u8)> {
    let l4 = ip.l4;
    if ip.ip_proto != proto::TCP || ip.fragment == Fragment::NonFirst || l4 > MAX_L4_OFFSET {
        return None;
    }
    if l4 + 20 > ip.end {
        return None;
    }
    let sport = f.be16_at(l4)?;
    let dport = f.be16_at(l4 + 2)?;
    let flags = f.u8_at(l4 + 13)?;
    Some((sport, dport, flags))
}

/// Writes a flow through a volatile store: LLVM otherwise merges the stores of the
/// different protocols' paths in a way the verifier rejects ("invalid size of register spill").
#[inline(always)]
fn set_flow(out: &mut Flow, proto: u8, sport: u16, dport: u16) {
    unsafe {
        core::ptr::write_volatile(
            out,
            Flow {
                proto,
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
    if l4 + 8 > ip.end || f.ptr_at::<[u8; 8]>(l4).is_none() {
        return Transport::Malformed;
    }
    set_flow(out, proto::ICMP, id, id);
    let v4 = ip.family == family::V4;
    match (v4, ty) {
        (true, 8) | (false, 128) => Transport::Opens,
        (true, 0) | (false, 129) => Transport::ReplyOnly,
        (true, 3 | 11 | 12) | (false, 1..=4) => Transport::Error,
        (false, 133..=137) => Transport::NeighbourDiscovery,
        _ => Transport::Other,
    }
}

/// Parses the packet quoted by an ICMP error into its connection key: `Error`, or
/// `Malformed`, or `Other` when the quoted protocol cannot be tracked.
/// Not inlined, so that its temporaries get a stack frame of their own.
#[inline(never)]
pub fn quoted(f: &Frame, ip: &Ip, key: &mut CtKey) -> Transport {
    // Each header is bounds-checked as a whole, then read at constant offsets from the
    // checked pointer: offsets computed field by field let LLVM fold them into a base
    // the verifier cannot prove non-negative.
    let off = ip.l4 + 8;
    let (hlen, ip_proto, src, dst, icmp) = if ip.family == family::V4 {
        let Some(h) = f.ptr_at::<[u32; 5]>(off) else {
            return Transport::Malformed;
        };
        let h = unsafe { *h };
        let [b0, _, _, _] = h[0].to_ne_bytes();
        let [_, p, _, _] = h[2].to_ne_bytes();
        let ihl = ((b0 & 0x0f) as usize) * 4;
        if b0 >> 4 != 4 || ihl < 20 {
            return Transport::Malformed;
        }
        (ihl, p, [h[3], 0, 0, 0], [h[4], 0, 0, 0], IPPROTO_ICMP)
    } else {
        let Some(h) = f.ptr_at::<[u32; 10]>(off) else {
            return Transport::Malformed;
        };
        let h = unsafe { *h };
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
    let Some(l4h) = f.ptr_at::<[u8; 8]>(l4) else {
        return Transport::Malformed;
    };
    let l4h = unsafe { *l4h };
    let a = u16::from_be_bytes([l4h[0], l4h[1]]);
    let b = u16::from_be_bytes([l4h[2], l4h[3]]);
    let id = u16::from_be_bytes([l4h[4], l4h[5]]);
    let flow = match ip_proto {
        proto::TCP | proto::UDP => Flow {
            proto: ip_proto,
            sport: a,
            dport: b,
        },
        p if p == icmp => Flow {
            proto: proto::ICMP,
            sport: id,
            dport: id,
        },
        _ => return Transport::Other,
    };
    *key = ct_key(ip.family, &src, &dst, &flow);
    Transport::Error
}

/// Direction-free connection key: the lower (address, port) endpoint first.
#[inline(always)]
pub fn ct_key(fam: u8, src: &Addr, dst: &Addr, flow: &Flow) -> CtKey {
    let mut key = CtKey {
        proto: flow.proto,
        family: fam,
        ..CtKey::default()
    };
    if less_or_equal(src, flow.sport, dst, flow.dport) {
        key.addr_a = *src;
        key.port_a = flow.sport;
        key.addr_b = *dst;
        key.port_b = flow.dport;
    } else {
        key.addr_a = *dst;
        key.port_a = flow.dport;
        key.addr_b = *src;
        key.port_b = flow.sport;
    }
    key
}

#[inline(always)]
fn less_or_equal(a: &Addr, pa: u16, b: &Addr, pb: u16) -> bool {
    for i in 0..4 {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    pa <= pb
}
