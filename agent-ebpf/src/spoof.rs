//! Anti-spoofing on ingress: a packet whose source cannot be genuine is dropped before
//! anything else judges it (and so never reaches the failsafe, the policy or the scan
//! detector): martian sources and loopback destinations, this host's own addresses
//! arriving from outside, and, on a gateway, sources the arrival interface does not
//! route to (a strict reverse-path check against the kernel's routing table).
use aya_ebpf::{
    bindings::{
        bpf_fib_lookup as FibLookup, BPF_FIB_LKUP_RET_BLACKHOLE, BPF_FIB_LKUP_RET_NOT_FWDED,
        BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_PROHIBIT, BPF_FIB_LKUP_RET_SUCCESS,
        BPF_FIB_LKUP_RET_UNREACHABLE,
    },
    helpers::bpf_fib_lookup,
};
use ward_common::{family, proto, Addr, FLAG_GATEWAY};

use crate::{
    context::{Hook, Settings},
    lookup::is_own,
    parse::{l3::Ip, Frame},
};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_ICMPV6: u8 = 58;

/// Whether a packet that arrived on `hook`'s interface carries a source it cannot have.
/// Not inlined, so that the route lookup's parameters get a stack frame of their own.
#[inline(never)]
pub fn spoofed(f: &Frame, ip: &Ip, hook: &Hook, s: &Settings) -> bool {
    if ip.family == family::V4 {
        if martian_v4(f, ip) {
            return true;
        }
    } else if martian_v6(ip) {
        return true;
    }
    if is_own(ip.family, &ip.src) {
        return true;
    }
    s.flags & FLAG_GATEWAY != 0 && !reverse_path_ok(ip, hook)
}

#[inline(always)]
fn martian_v4(f: &Frame, ip: &Ip) -> bool {
    let [s0, _, _, _] = ip.src[0].to_ne_bytes();
    let [d0, _, _, _] = ip.dst[0].to_ne_bytes();
    if d0 == 127 || s0 == 127 || s0 >= 224 {
        return true;
    }
    if s0 != 0 {
        return false;
    }
    // 0.0.0.0/8 is never a source, but for a DHCP client without an address yet.
    ip.src[0] != 0 || !is_udp_ports(f, ip, 68, 67)
}

#[inline(always)]
fn martian_v6(ip: &Ip) -> bool {
    let [s0, _, _, _] = ip.src[0].to_ne_bytes();
    if s0 == 0xff || is_loopback_v6(&ip.src) || is_loopback_v6(&ip.dst) {
        return true;
    }
    // IPv4-mapped (::ffff:0:0/96) never appears on the wire.
    if ip.src[0] == 0 && ip.src[1] == 0 && ip.src[2] == u32::from_ne_bytes([0, 0, 0xff, 0xff]) {
        return true;
    }
    // The unspecified source belongs to duplicate address detection and MLD only.
    is_unspecified(&ip.src) && ip.ip_proto != IPPROTO_ICMPV6
}

#[inline(always)]
fn is_loopback_v6(a: &Addr) -> bool {
    a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == u32::from_ne_bytes([0, 0, 0, 1])
}

/// Whether `a` is `::` (or `0.0.0.0`).
#[inline(always)]
pub fn is_unspecified(a: &Addr) -> bool {
    a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0
}

/// Whether the packet is UDP from port `sport` to port `dport`.
#[inline(always)]
pub fn is_udp_ports(f: &Frame, ip: &Ip, sport: u16, dport: u16) -> bool {
    if ip.ip_proto != proto::UDP || ip.l4 > crate::parse::MAX_L4_OFFSET {
        return false;
    }
    match f.load::<[u8; 4]>(ip.l4) {
        Some(p) => {
            u16::from_be_bytes([p[0], p[1]]) == sport && u16::from_be_bytes([p[2], p[3]]) == dport
        }
        None => false,
    }
}

/// Whether the route back to the packet's source leaves through the interface it came
/// in on (the kernel's own routing table, as `rp_filter=1` would judge it). Sources the
/// check cannot judge (forwarding disabled, lightweight tunnels, helper errors) pass;
/// IPv6 link-local sources are never forwarded, so they are not checked.
#[inline(always)]
fn reverse_path_ok(ip: &Ip, hook: &Hook) -> bool {
    let [s0, s1, _, _] = ip.src[0].to_ne_bytes();
    if ip.family == family::V6 && s0 == 0xfe && s1 & 0xc0 == 0x80 {
        return true;
    }
    if is_unspecified(&ip.src) {
        return true;
    }
    // SAFETY: `bpf_fib_lookup` is plain data (integers and unions of integers): all
    // zeroes is a valid value, and the fields the lookup reads are set below.
    let mut p: FibLookup = unsafe { core::mem::zeroed() };
    p.ifindex = hook.ifindex;
    // The lookup's own source stays unspecified (zeroed): the packet's destination may
    // be multicast, which the route lookup does not take as a source.
    if ip.family == family::V4 {
        p.family = AF_INET;
        p.__bindgen_anon_4.ipv4_dst = ip.src[0];
    } else {
        p.family = AF_INET6;
        p.__bindgen_anon_4.ipv6_dst = ip.src;
    }
    // SAFETY: `hook.ctx` is the program's own context; `p` is a valid, writable
    // `bpf_fib_lookup` of the size passed.
    let ret = unsafe {
        bpf_fib_lookup(
            hook.ctx,
            &mut p,
            core::mem::size_of::<FibLookup>() as i32,
            0,
        )
    };
    if ret < 0 {
        return true;
    }
    match ret as u32 {
        BPF_FIB_LKUP_RET_SUCCESS | BPF_FIB_LKUP_RET_NO_NEIGH => p.ifindex == hook.ifindex,
        BPF_FIB_LKUP_RET_NOT_FWDED
        | BPF_FIB_LKUP_RET_BLACKHOLE
        | BPF_FIB_LKUP_RET_UNREACHABLE
        | BPF_FIB_LKUP_RET_PROHIBIT => false,
        _ => true,
    }
}
