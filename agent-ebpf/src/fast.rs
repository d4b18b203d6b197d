//! The fast path (`docs/dataplane.md`, "Fast path"): a packet of an established TCP
//! connection or a tracked UDP flow passes by one connection lookup, when the same
//! endpoint's packets were judged in full at the same hook less than
//! [`FAST_RECHECK_JIFFIES`] ago, under the policy generation in force, with nobody
//! quarantined. Anything else (another frame shape, a TCP segment with SYN, FIN or
//! RST, a stale entry) goes through the full pipeline, which gives the same verdict and
//! renews the entry's permission; a TCP or UDP packet of no tracked connection goes
//! there with word that its lookup found nothing, so that it is not done twice.
//!
//! No per-packet state is zeroed, no clock other than `jiffies` (which the verifier
//! inlines as a load) is read, and the headers are read at constant offsets.
use aya_ebpf::helpers::bpf_jiffies64;
use ward_common::{
    family, fast_hook, is_breakglass, proto, slot_of, tcp_state, Addr, CtKey4, CtValue, Reason,
    Verdict, CT_AUDITED, FAILSAFE_RULE, FAST_RECHECK_JIFFIES,
};

use crate::{
    counters,
    maps::{CONFIG, CONNTRACK_V4, CONNTRACK_V6},
    parse::{
        l2::{ETH_HLEN, ETH_P_IP, ETH_P_IPV6},
        l4::{ct_key, tcp_flags, Flow},
        Frame,
    },
};

/// First transport byte of an IPv4 packet without options.
const L4_V4: usize = ETH_HLEN + 20;
/// First transport byte of an IPv6 packet without extension headers.
const L4_V6: usize = ETH_HLEN + 40;

/// What the fast path made of a frame.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    /// Passed and counted.
    Passed,
    /// For the full pipeline, which may skip its own connection lookup: the fast path
    /// looked the packet's connection up and found none (another CPU may track it
    /// meanwhile: then the packet is judged as a new flow would be, as it was a moment
    /// earlier).
    Untracked,
    /// For the full pipeline.
    Judge,
}

/// Passes and counts the frame if the fast path may judge it (untagged frames only:
/// VLAN tags take the full pipeline); otherwise says what the full pipeline may take
/// from it. Not inlined: its key and headers get a stack frame of their own, apart from
/// the full pipeline's call chain (which 6.1's 512-byte limit counts).
/// The frame and hook come as scalars, so that the caller's frame keeps nothing for
/// the call.
#[inline(never)]
pub fn judge(data: usize, data_end: usize, len: usize, ifindex: u32, direction: u8) -> Fast {
    let frame = Frame {
        data,
        data_end,
        len,
    };
    let f = &frame;
    let Some(p) = network(f) else {
        return Fast::Judge;
    };
    let Some(flow) = transport(f, &p) else {
        return Fast::Judge;
    };
    let Some((entry, from_a)) = lookup(&p, &flow) else {
        return Fast::Untracked;
    };
    let Some(c) = CONFIG.get_ptr(0) else {
        return Fast::Judge;
    };
    // SAFETY: `c` points to the map's one entry, valid for the program run and 8-byte
    // aligned; the agent publishes a policy with one aligned store of `generation`.
    let generation = unsafe { core::ptr::read_volatile(&(*c).generation) };
    // SAFETY: as above; a plain integer read once.
    if generation == 0 || unsafe { (*c).quarantined } != 0 {
        return Fast::Judge;
    }
    // SAFETY: the entry's memory stays valid for the program run (RCU); its plain
    // integer fields are read once each, and a concurrent update can at worst send
    // this packet through the full pipeline.
    let entry = unsafe { &*entry };
    let (hook_seen, judged_at) = if from_a {
        (entry.fast_hook[0], entry.fast_jiffies[0])
    } else {
        (entry.fast_hook[1], entry.fast_jiffies[1])
    };
    // SAFETY: a helper without arguments or preconditions.
    let now = unsafe { bpf_jiffies64() };
    let state_ok = flow.proto == proto::UDP
        || entry.tcp_state == tcp_state::ESTABLISHED
        || entry.tcp_state == tcp_state::NONE;
    let opens_or_closes = flow.tcp_flags & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST) != 0;
    if opens_or_closes
        || hook_seen != fast_hook(ifindex, direction)
        || now.wrapping_sub(judged_at) >= FAST_RECHECK_JIFFIES
        || entry.generation != generation
        || entry.flags & CT_AUDITED != 0
        || entry.rule_id == FAILSAFE_RULE
        || is_breakglass(entry.rule_id)
        || !state_ok
    {
        return Fast::Judge;
    }
    let bytes = f.len as u64;
    counters::count_reason(Reason::Established, Verdict::Allow, bytes);
    counters::count_pair(
        entry.src_zone,
        entry.dst_zone,
        Verdict::Allow,
        slot_of(generation),
        bytes,
    );
    Fast::Passed
}

/// The packet's connection entry and whether its sender is the key's endpoint `a`.
/// An IPv4 key is built directly, in the order `ct_key` gives (lower address, then
/// lower port, first).
#[inline(always)]
fn lookup(p: &Packet, flow: &Flow) -> Option<(*const CtValue, bool)> {
    if p.family == family::V4 {
        let (src, dst) = (p.src[0], p.dst[0]);
        let from_a = src < dst || (src == dst && flow.sport <= flow.dport);
        let key = if from_a {
            CtKey4 {
                addr_a: src,
                addr_b: dst,
                port_a: flow.sport,
                port_b: flow.dport,
                proto: flow.proto,
                _pad: 0,
                _pad2: 0,
            }
        } else {
            CtKey4 {
                addr_a: dst,
                addr_b: src,
                port_a: flow.dport,
                port_b: flow.sport,
                proto: flow.proto,
                _pad: 0,
                _pad2: 0,
            }
        };
        return CONNTRACK_V4.get_ptr(&key).map(|e| (e, from_a));
    }
    let key = ct_key(p.family, &p.src, &p.dst, flow);
    let from_a = key.addr_a == p.src && key.port_a == flow.sport;
    CONNTRACK_V6.get_ptr(&key).map(|e| (e, from_a))
}

/// What the fast path reads of the network layer.
struct Packet {
    family: u8,
    ip_proto: u8,
    src: Addr,
    dst: Addr,
    /// First transport byte.
    l4: usize,
    /// One past the IP packet's last byte.
    end: usize,
}

/// An untagged TCP or UDP packet, IPv4 without options or fragmentation or IPv6
/// without extension headers, that the full parser would accept as well.
#[inline(always)]
fn network(f: &Frame) -> Option<Packet> {
    let ether_type = f.be16_at(12)?;
    if ether_type == ETH_P_IP {
        let h = f.load::<[u32; 5]>(ETH_HLEN)?;
        let [b0, _, t0, t1] = h[0].to_ne_bytes();
        let [_, _, g0, g1] = h[1].to_ne_bytes();
        let [_, ip_proto, _, _] = h[2].to_ne_bytes();
        let tot_len = u16::from_be_bytes([t0, t1]) as usize;
        let fragment = u16::from_be_bytes([g0, g1]) & 0x3fff;
        let end = ETH_HLEN + tot_len;
        if b0 != 0x45 || tot_len < 20 || end > f.len || fragment != 0 || !is_tcp_udp(ip_proto) {
            return None;
        }
        return Some(Packet {
            family: family::V4,
            ip_proto,
            src: [h[3], 0, 0, 0],
            dst: [h[4], 0, 0, 0],
            l4: L4_V4,
            end,
        });
    }
    if ether_type != ETH_P_IPV6 {
        return None;
    }
    let h = f.load::<[u32; 10]>(ETH_HLEN)?;
    let [b0, _, _, _] = h[0].to_ne_bytes();
    let [p0, p1, next, _] = h[1].to_ne_bytes();
    let end = L4_V6 + u16::from_be_bytes([p0, p1]) as usize;
    if b0 >> 4 != 6 || end > f.len || !is_tcp_udp(next) {
        return None;
    }
    Some(Packet {
        family: family::V6,
        ip_proto: next,
        src: [h[2], h[3], h[4], h[5]],
        dst: [h[6], h[7], h[8], h[9]],
        l4: L4_V6,
        end,
    })
}

#[inline(always)]
fn is_tcp_udp(ip_proto: u8) -> bool {
    ip_proto == proto::TCP || ip_proto == proto::UDP
}

/// The ports (and TCP flags) of a well-formed TCP segment or UDP datagram.
#[inline(always)]
fn transport(f: &Frame, p: &Packet) -> Option<Flow> {
    let (l4, end) = (p.l4, p.end);
    if p.ip_proto == proto::TCP {
        let h = f.load::<[u8; 14]>(l4)?;
        let flags = h[13];
        if l4 + 20 > end || h[12] >> 4 < 5 {
            return None;
        }
        return Some(Flow {
            proto: proto::TCP,
            tcp_flags: flags,
            sport: u16::from_be_bytes([h[0], h[1]]),
            dport: u16::from_be_bytes([h[2], h[3]]),
        });
    }
    let h = f.load::<[u8; 8]>(l4)?;
    if l4 + 8 > end {
        return None;
    }
    Some(Flow {
        proto: proto::UDP,
        tcp_flags: 0,
        sport: u16::from_be_bytes([h[0], h[1]]),
        dport: u16::from_be_bytes([h[2], h[3]]),
    })
}
