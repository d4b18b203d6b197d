//! Traffic a host needs on its own link, judged ahead of the policy: IPv6 neighbour
//! discovery and MLD (only from and to the link, never forwarded), and the DHCPv4 and
//! DHCPv6 client exchanges that keep an address (built-in allowances).
use ward_common::{direction, family, Reason};

use crate::{
    context::Hook,
    lookup::is_own,
    parse::{l3::Ip, l4::Flow, Frame},
    spoof::is_unspecified,
};

/// Neighbour discovery (ICMPv6 133–137) passes only with hop limit 255 (it was not
/// forwarded), on ingress only to a link-local, link-scope multicast or own address
/// (it will not be forwarded), and router advertisements and redirects only from a
/// link-local source.
#[inline(always)]
pub fn neighbour(f: &Frame, ip: &Ip, hook: &Hook) -> Reason {
    let Some(ty) = f.u8_at(ip.l4) else {
        return Reason::Malformed;
    };
    if ip.hop_limit != 255 || ((ty == 134 || ty == 137) && !is_link_local(&ip.src)) {
        return Reason::NotOnLink;
    }
    if hook.direction == direction::INGRESS && !for_this_link(ip) {
        return Reason::NotOnLink;
    }
    Reason::NeighbourDiscovery
}

/// MLD (ICMPv6 130, 131, 132, 143) passes with hop limit 1 to a link-scope multicast
/// group from a link-local or unspecified source.
#[inline(always)]
pub fn mld(ip: &Ip) -> Reason {
    if ip.hop_limit == 1
        && is_link_multicast(&ip.dst)
        && (is_link_local(&ip.src) || is_unspecified(&ip.src))
    {
        Reason::BuiltIn
    } else {
        Reason::NotOnLink
    }
}

/// Whether a UDP packet is the host's DHCP client exchange: its requests out (v4
/// 68→67, v6 546→547), and the servers' answers in (v4 67→68 to the broadcast or an
/// own address, v6 547→546 to a link-local or own address).
#[inline(always)]
pub fn dhcp_client(ip: &Ip, flow: &Flow, hook: &Hook) -> bool {
    let (client, server) = if ip.family == family::V4 {
        (68, 67)
    } else {
        (546, 547)
    };
    if hook.direction != direction::INGRESS {
        return flow.sport == client && flow.dport == server;
    }
    if flow.sport != server || flow.dport != client {
        return false;
    }
    if ip.family == family::V4 {
        ip.dst[0] == u32::MAX || is_own(ip.family, &ip.dst)
    } else {
        is_link_local(&ip.dst) || is_own(ip.family, &ip.dst)
    }
}

/// Whether an ingress packet is addressed to this link: a link-local or link-scope
/// multicast destination, or one of the host's own addresses.
#[inline(always)]
fn for_this_link(ip: &Ip) -> bool {
    is_link_local(&ip.dst) || is_link_multicast(&ip.dst) || is_own(ip.family, &ip.dst)
}

/// fe80::/10.
#[inline(always)]
fn is_link_local(a: &ward_common::Addr) -> bool {
    let [b0, b1, _, _] = a[0].to_ne_bytes();
    b0 == 0xfe && b1 & 0xc0 == 0x80
}

/// ff02::/16.
#[inline(always)]
fn is_link_multicast(a: &ward_common::Addr) -> bool {
    let [b0, b1, _, _] = a[0].to_ne_bytes();
    b0 == 0xff && b1 == 0x02
}
