//! Building test frames byte by byte: Ethernet with VLAN tags, IPv4 (options,
//! fragments), IPv6 (extension headers, fragment header), TCP, UDP, ICMP and ICMPv6.
//!
//! The one frame builder of the tests: the reference dataplane's unit tests use these
//! functions directly; the kernel tests and the differential test describe a frame as a
//! [`FrameSpec`], which is built with them.
use std::net::{Ipv4Addr, Ipv6Addr};

mod spec;

pub use spec::{FrameSpec, L4};

/// TCP flag FIN.
pub const FIN: u8 = 0x01;
/// TCP flag SYN.
pub const SYN: u8 = 0x02;
/// TCP flag RST.
pub const RST: u8 = 0x04;
/// TCP flag ACK.
pub const ACK: u8 = 0x10;

/// The source MAC address of every built frame.
const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
/// The destination MAC address of every built frame: the benchmark's receiving veth
/// has it, so that frames sent on the wire reach its IP layer (another address would
/// be dropped there as meant for another host).
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// An Ethernet frame carrying `payload` after 802.1Q-style tags, each `(TPID, TCI)`.
pub fn eth_tagged(ethertype: u16, tags: &[(u16, u16)], payload: &[u8]) -> Vec<u8> {
    let mut f = DST_MAC.to_vec();
    f.extend_from_slice(&SRC_MAC);
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An Ethernet frame carrying `payload` after one tag of VLAN 10 per TPID in `tpids`.
pub fn eth(ethertype: u16, tpids: &[u16], payload: &[u8]) -> Vec<u8> {
    let tags: Vec<(u16, u16)> = tpids.iter().map(|&tpid| (tpid, 0x000a)).collect();
    eth_tagged(ethertype, &tags, payload)
}

/// The IPv4 header fields tests vary beside the addresses and protocol.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Fields<'a> {
    /// Identification.
    pub id: u16,
    /// Flags and fragment offset, as on the wire.
    pub frag: u16,
    /// Time to live.
    pub ttl: u8,
    /// Options, a multiple of 4 bytes.
    pub options: &'a [u8],
}

/// An IPv4 packet (header checksum left zero: the programs never read it).
pub fn ipv4_with(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, f: Ipv4Fields, l4: &[u8]) -> Vec<u8> {
    let hlen = 20 + f.options.len();
    let total = (hlen + l4.len()) as u16;
    let mut p = vec![0x40 | (hlen / 4) as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&f.id.to_be_bytes());
    p.extend_from_slice(&f.frag.to_be_bytes());
    p.extend_from_slice(&[f.ttl, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(f.options);
    p.extend_from_slice(l4);
    p
}

/// An IPv4 packet with TTL 64: `frag` is the flags and fragment offset field, `options`
/// a multiple of 4 bytes.
pub fn ipv4(
    src: &str,
    dst: &str,
    proto: u8,
    id: u16,
    frag: u16,
    options: &[u8],
    l4: &[u8],
) -> Vec<u8> {
    let fields = Ipv4Fields {
        id,
        frag,
        ttl: 64,
        options,
    };
    ipv4_with(addr(src), addr(dst), proto, fields, l4)
}

/// An IPv6 packet whose first header is `next`, with `exts` (already chained) before `l4`.
pub fn ipv6_with(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    hop_limit: u8,
    exts: &[u8],
    l4: &[u8],
) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&((exts.len() + l4.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[next, hop_limit]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(exts);
    p.extend_from_slice(l4);
    p
}

/// An IPv6 packet with hop limit 64 whose first header is `next`, with `exts` (already
/// chained) before `l4`.
pub fn ipv6(src: &str, dst: &str, next: u8, exts: &[u8], l4: &[u8]) -> Vec<u8> {
    ipv6_with(addr(src), addr(dst), next, 64, exts, l4)
}

/// An 8-byte IPv6 extension header (Hop-by-Hop, Routing or Destination Options).
pub fn ext(next: u8) -> Vec<u8> {
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

/// An IPv6 fragment header.
pub fn frag6(next: u8, offset: u16, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

/// A TCP SYN without options.
pub fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    tcp_flags(sport, dport, SYN)
}

/// A TCP header without options, with these flags (sequence 1, window 65535).
pub fn tcp_flags(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    h
}

/// A UDP header followed by `payload`.
pub fn udp_with(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(payload);
    h
}

/// A UDP header with the 4-byte payload `ping`.
pub fn udp(sport: u16, dport: u16) -> Vec<u8> {
    udp_with(sport, dport, b"ping")
}

/// An ICMP or ICMPv6 header: type, code, identifier, sequence number, then `rest`.
pub fn icmp_with(kind: u8, code: u8, ident: u16, seq: u16, rest: &[u8]) -> Vec<u8> {
    let mut h = vec![kind, code, 0, 0];
    h.extend_from_slice(&ident.to_be_bytes());
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(rest);
    h
}

/// An ICMP or ICMPv6 header of code 0 and sequence 1: type, identifier, then `rest`.
pub fn icmp(kind: u8, ident: u16, rest: &[u8]) -> Vec<u8> {
    icmp_with(kind, 0, ident, 1, rest)
}

/// A whole IPv4 frame.
pub fn v4(src: &str, dst: &str, proto: u8, l4: &[u8]) -> Vec<u8> {
    eth(0x0800, &[], &ipv4(src, dst, proto, 7, 0, &[], l4))
}

/// A whole IPv6 frame without extension headers.
pub fn v6(src: &str, dst: &str, next: u8, l4: &[u8]) -> Vec<u8> {
    eth(0x86dd, &[], &ipv6(src, dst, next, &[], l4))
}

/// A whole IPv6 frame without extension headers, with this hop limit.
pub fn v6_hops(src: &str, dst: &str, next: u8, l4: &[u8], hops: u8) -> Vec<u8> {
    eth(
        0x86dd,
        &[],
        &ipv6_with(addr(src), addr(dst), next, hops, &[], l4),
    )
}

/// Parses a literal address of the test.
fn addr<A: std::str::FromStr>(text: &str) -> A
where
    A::Err: std::fmt::Debug,
{
    text.parse()
        .unwrap_or_else(|e| panic!("test address {text:?}: {e:?}"))
}
