//! Builders of Ethernet frames for the reference dataplane tests.
use std::net::{Ipv4Addr, Ipv6Addr};

/// An Ethernet frame carrying `payload` after `tags` VLAN tags.
pub(super) fn eth(ethertype: u16, tags: &[u16], payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for &tpid in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&[0x00, 0x0a]);
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet: `frag` is the flags and fragment offset field, `options` a multiple of 4 bytes.
pub(super) fn ipv4(
    src: &str,
    dst: &str,
    proto: u8,
    id: u16,
    frag: u16,
    options: &[u8],
    l4: &[u8],
) -> Vec<u8> {
    let (src, dst): (Ipv4Addr, Ipv4Addr) = (src.parse().unwrap(), dst.parse().unwrap());
    let hlen = 20 + options.len();
    let total = (hlen + l4.len()) as u16;
    let mut p = vec![0x40 | (hlen / 4) as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(options);
    p.extend_from_slice(l4);
    p
}

/// An IPv6 packet whose first header is `next`, with `exts` (already chained) before `l4`.
pub(super) fn ipv6(src: &str, dst: &str, next: u8, exts: &[u8], l4: &[u8]) -> Vec<u8> {
    let (src, dst): (Ipv6Addr, Ipv6Addr) = (src.parse().unwrap(), dst.parse().unwrap());
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&((exts.len() + l4.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(exts);
    p.extend_from_slice(l4);
    p
}

/// An 8-byte IPv6 extension header (Hop-by-Hop, Routing or Destination Options).
pub(super) fn ext(next: u8) -> Vec<u8> {
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

/// An IPv6 fragment header.
pub(super) fn frag6(next: u8, offset: u16, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

/// A TCP SYN without options.
pub(super) fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    tcp_flags(sport, dport, SYN)
}

/// TCP flags.
pub(super) const SYN: u8 = 0x02;
pub(super) const ACK: u8 = 0x10;

/// A TCP header without options, with these flags.
pub(super) fn tcp_flags(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    h
}

/// A UDP header with a 4-byte payload.
pub(super) fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 12, 0, 0, b'p', b'i', b'n', b'g']);
    h
}

/// An ICMP or ICMPv6 header: type, code, identifier, then `rest`.
pub(super) fn icmp(kind: u8, ident: u16, rest: &[u8]) -> Vec<u8> {
    let mut h = vec![kind, 0, 0, 0];
    h.extend_from_slice(&ident.to_be_bytes());
    h.extend_from_slice(&[0, 1]);
    h.extend_from_slice(rest);
    h
}

/// A whole IPv4 frame.
pub(super) fn v4(src: &str, dst: &str, proto: u8, l4: &[u8]) -> Vec<u8> {
    eth(0x0800, &[], &ipv4(src, dst, proto, 7, 0, &[], l4))
}

/// A whole IPv6 frame without extension headers.
pub(super) fn v6(src: &str, dst: &str, next: u8, l4: &[u8]) -> Vec<u8> {
    eth(0x86dd, &[], &ipv6(src, dst, next, &[], l4))
}

/// A whole IPv6 frame without extension headers, with this hop limit.
pub(super) fn v6_hops(src: &str, dst: &str, next: u8, l4: &[u8], hops: u8) -> Vec<u8> {
    let mut packet = ipv6(src, dst, next, &[], l4);
    packet[7] = hops;
    eth(0x86dd, &[], &packet)
}
