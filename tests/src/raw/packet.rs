//! IP packets built byte by byte, checksums included.
use std::net::{IpAddr, SocketAddr};

use super::tcp;

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
                h[4..6].copy_from_slice(&0x5741u16.to_be_bytes());
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
