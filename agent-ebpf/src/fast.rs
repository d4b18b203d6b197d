//! The fast path (`docs/dataplane.md`, "Fast path"): a packet of an established TCP
//! connection or a tracked UDP flow passes by one connection lookup, when the same
//! endpoint's packets were judged in full at the same hook less than
//! [`FAST_RECHECK_JIFFIES`] ago, under the policy generation in force, with nobody
//! quarantined. Anything else (another frame shape, a TCP segment with SYN, FIN or
//! RST, a stale entry) goes through the full pipeline, which gives the same verdict and
//! renews the entry's permission; a TCP or UDP packet of no tracked connection goes
//! there with word that its lookup found nothing, so that it is not done twice. A lone
//! SYN is not looked up at all: the full pipeline judges it by the policy first.
//!
//! No per-packet state is zeroed, no clock other than `jiffies` (which the verifier
//! inlines as a load) is read, and the headers are read at constant offsets.
use aya_ebpf::helpers::bpf_jiffies64;
use ward_common::{
    family, fast_hook, is_breakglass, proto, slot_of, tcp_state, CtKey, CtKey4, CtValue, Reason,
    Verdict, CT_AUDITED, FAILSAFE_RULE, FAST_RECHECK_JIFFIES,
};

use crate::{
    counters,
    maps::{CONFIG, CONNTRACK_V4, CONNTRACK_V6},
    parse::{
        l2::{ETH_HLEN, ETH_P_IP, ETH_P_IPV6},
        l4::{less_or_equal, opens_tcp, tcp_flags, Flow},
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
    /// Malformed where the full parser stops too (steps 1–3: an untagged frame
    /// truncated in its Ethernet or IP header, or an IP header that contradicts
    /// itself): the verdict is **deny, malformed** whatever else holds.
    Malformed,
}

/// Passes and counts the frame if the fast path may judge it (untagged frames only:
/// VLAN tags take the full pipeline); otherwise says what the full pipeline may take
/// from it. Not inlined: its key and headers get a stack frame of their own, apart from
/// the full pipeline's call chain (which 6.1's 512-byte limit counts).
/// The frame and hook come as scalars, so that the caller's frame keeps nothing for
/// the call. Each family has a straight path of its own: nothing of an IPv6 address
/// is carried (or spilled) on the IPv4 one.
#[inline(never)]
pub fn judge(data: usize, data_end: usize, len: usize, ifindex: u32, direction: u8) -> Fast {
    let frame = Frame {
        data,
        data_end,
        len,
    };
    let Some(ether_type) = frame.be16_at(12) else {
        return Fast::Malformed;
    };
    let hook = fast_hook(ifindex, direction);
    if ether_type == ETH_P_IP {
        return ipv4(&frame, hook);
    }
    if ether_type == ETH_P_IPV6 {
        return ipv6(&frame, hook);
    }
    Fast::Judge
}

/// An IPv4 packet without options or fragmentation, TCP or UDP, whose connection is
/// looked up by a key built directly, in the order `ct_key` gives (lower address, then
/// lower port, first); [`Fast::Malformed`] where the full parser (`parse::l3`) finds
/// the header malformed for the same reason.
#[inline(always)]
fn ipv4(f: &Frame, hook: u32) -> Fast {
    let Some(h) = f.load::<[u32; 5]>(ETH_HLEN) else {
        return Fast::Malformed;
    };
    let [b0, _, t0, t1] = h[0].to_ne_bytes();
    let [_, _, g0, g1] = h[1].to_ne_bytes();
    let [_, ip_proto, _, _] = h[2].to_ne_bytes();
    let tot_len = u16::from_be_bytes([t0, t1]) as usize;
    let fragment = u16::from_be_bytes([g0, g1]) & 0x3fff;
    let end = ETH_HLEN + tot_len;
    let ihl = ((b0 & 0x0f) as usize) * 4;
    if b0 >> 4 != 4 || ihl < 20 || tot_len < ihl || end > f.len {
        return Fast::Malformed;
    }
    if ihl != 20 || fragment != 0 {
        return Fast::Judge;
    }
    let Some(flow) = transport(f, ip_proto, L4_V4, end) else {
        return Fast::Judge;
    };
    if flow.proto == proto::TCP && opens_tcp(flow.tcp_flags) {
        return Fast::Judge;
    }
    let (src, dst) = (h[3], h[4]);
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
    match CONNTRACK_V4.get_ptr(&key) {
        Some(entry) => established(f, entry, from_a, &flow, hook),
        None => Fast::Untracked,
    }
}

/// An IPv6 packet whose next header is TCP or UDP; [`Fast::Malformed`] as for
/// [`ipv4`].
#[inline(always)]
fn ipv6(f: &Frame, hook: u32) -> Fast {
    let Some(h) = f.load::<[u32; 10]>(ETH_HLEN) else {
        return Fast::Malformed;
    };
    let [b0, _, _, _] = h[0].to_ne_bytes();
    let [p0, p1, next, _] = h[1].to_ne_bytes();
    let end = L4_V6 + u16::from_be_bytes([p0, p1]) as usize;
    if b0 >> 4 != 6 || end > f.len {
        return Fast::Malformed;
    }
    let Some(flow) = transport(f, next, L4_V6, end) else {
        return Fast::Judge;
    };
    if flow.proto == proto::TCP && opens_tcp(flow.tcp_flags) {
        return Fast::Judge;
    }
    let (src, dst) = ([h[2], h[3], h[4], h[5]], [h[6], h[7], h[8], h[9]]);
    // The order `ct_key` gives, decided once and used for both the key and `from_a`.
    // Built here rather than by `ct_key` returning the order with the key: that tuple
    // took the verifier past its complexity limit (E2BIG) on the whole program.
    let from_a = less_or_equal(&src, flow.sport, &dst, flow.dport);
    let key = if from_a {
        CtKey {
            addr_a: src,
            addr_b: dst,
            port_a: flow.sport,
            port_b: flow.dport,
            proto: flow.proto,
            family: family::V6,
            _pad: [0; 2],
        }
    } else {
        CtKey {
            addr_a: dst,
            addr_b: src,
            port_a: flow.dport,
            port_b: flow.sport,
            proto: flow.proto,
            family: family::V6,
            _pad: [0; 2],
        }
    };
    match CONNTRACK_V6.get_ptr(&key) {
        Some(entry) => established(f, entry, from_a, &flow, hook),
        None => Fast::Untracked,
    }
}

/// The ports (and TCP flags) of a well-formed TCP segment or UDP datagram at `l4`,
/// read a word at a time, in an IP packet ending at `end`.
#[inline(always)]
fn transport(f: &Frame, ip_proto: u8, l4: usize, end: usize) -> Option<Flow> {
    if ip_proto == proto::TCP {
        let [ports, _, _, off_flags] = f.load::<[u32; 4]>(l4)?;
        let [s0, s1, d0, d1] = ports.to_ne_bytes();
        let [data_offset, flags, _, _] = off_flags.to_ne_bytes();
        if l4 + 20 > end || data_offset >> 4 < 5 {
            return None;
        }
        return Some(Flow {
            proto: proto::TCP,
            tcp_flags: flags,
            sport: u16::from_be_bytes([s0, s1]),
            dport: u16::from_be_bytes([d0, d1]),
        });
    }
    if ip_proto != proto::UDP {
        return None;
    }
    let [ports, _] = f.load::<[u32; 2]>(l4)?;
    let [s0, s1, d0, d1] = ports.to_ne_bytes();
    if l4 + 8 > end {
        return None;
    }
    Some(Flow {
        proto: proto::UDP,
        tcp_flags: 0,
        sport: u16::from_be_bytes([s0, s1]),
        dport: u16::from_be_bytes([d0, d1]),
    })
}

/// Passes and counts a packet of the connection `entry` (its sender endpoint `a` when
/// `from_a`) when the entry lets it take the fast path; [`Fast::Judge`] otherwise.
#[inline(always)]
fn established(f: &Frame, entry: *const CtValue, from_a: bool, flow: &Flow, hook: u32) -> Fast {
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
        || hook_seen != hook
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
