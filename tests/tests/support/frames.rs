//! Building test frames byte by byte: Ethernet, VLAN tags, IPv4 (with options), IPv6
//! (with extension headers), TCP, UDP, ICMP and ICMPv6.
#![allow(dead_code)]
use std::net::IpAddr;

/// An L4 header to put in a frame.
#[derive(Clone, Copy, Debug)]
pub enum L4 {
    /// TCP with these ports (SYN).
    Tcp(u16, u16),
    /// UDP with these ports.
    Udp(u16, u16),
    /// ICMP or ICMPv6 message: type, code, identifier.
    Icmp(u8, u8, u16),
}

/// A frame under construction.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    /// VLAN tags (0, 1 or 2).
    pub vlans: Vec<u16>,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 option bytes (a multiple of 4).
    pub ipv4_options: Vec<u8>,
    /// IPv6 extension headers: (next-header code of this header, its bytes without the first byte).
    pub ipv6_ext: Vec<(u8, Vec<u8>)>,
    /// IPv4 fragment: (offset in 8-byte units, more fragments, id).
    pub ipv4_frag: Option<(u16, bool, u16)>,
    /// Upper-layer header.
    pub l4: L4,
    /// Bytes after the L4 header (e.g. a quoted packet in an ICMP error).
    pub payload: Vec<u8>,
    /// TCP flags (`SYN` unless set otherwise).
    pub tcp_flags: u8,
    /// IPv4 TTL / IPv6 hop limit.
    pub hop_limit: u8,
}

/// TCP flag FIN.
pub const FIN: u8 = 0x01;
/// TCP flag SYN.
pub const SYN: u8 = 0x02;
/// TCP flag RST.
pub const RST: u8 = 0x04;
/// TCP flag ACK.
pub const ACK: u8 = 0x10;

impl FrameSpec {
    /// A plain frame from `src` to `dst`.
    pub fn new(src: &str, dst: &str, l4: L4) -> Self {
        Self {
            vlans: vec![],
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            ipv4_options: vec![],
            ipv6_ext: vec![],
            ipv4_frag: None,
            l4,
            payload: vec![],
            tcp_flags: SYN,
            hop_limit: 64,
        }
    }

    /// The same frame with these TCP flags.
    pub fn flags(mut self, tcp_flags: u8) -> Self {
        self.tcp_flags = tcp_flags;
        self
    }

    /// The same frame with this TTL / hop limit.
    pub fn hops(mut self, hop_limit: u8) -> Self {
        self.hop_limit = hop_limit;
        self
    }

    /// The IP packet (no Ethernet header).
    pub fn ip_packet(&self) -> Vec<u8> {
        let v6 = self.src.is_ipv6();
        let mut l4 = match self.l4 {
            L4::Tcp(s, d) => {
                let mut h = vec![0u8; 20];
                h[0..2].copy_from_slice(&s.to_be_bytes());
                h[2..4].copy_from_slice(&d.to_be_bytes());
                h[12] = 5 << 4;
                h[13] = self.tcp_flags;
                h
            }
            L4::Udp(s, d) => {
                let mut h = vec![0u8; 8];
                h[0..2].copy_from_slice(&s.to_be_bytes());
                h[2..4].copy_from_slice(&d.to_be_bytes());
                h[4..6].copy_from_slice(&((8 + self.payload.len()) as u16).to_be_bytes());
                h
            }
            L4::Icmp(t, c, id) => {
                let mut h = vec![0u8; 8];
                h[0] = t;
                h[1] = c;
                h[4..6].copy_from_slice(&id.to_be_bytes());
                h
            }
        };
        l4.extend_from_slice(&self.payload);
        let proto = match self.l4 {
            L4::Tcp(..) => 6,
            L4::Udp(..) => 17,
            L4::Icmp(..) => {
                if v6 {
                    58
                } else {
                    1
                }
            }
        };
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let ihl = 20 + self.ipv4_options.len();
                let mut h = vec![0u8; 20];
                h[0] = 0x40 | (ihl / 4) as u8;
                h[2..4].copy_from_slice(&((ihl + l4.len()) as u16).to_be_bytes());
                if let Some((off, more, id)) = self.ipv4_frag {
                    h[4..6].copy_from_slice(&id.to_be_bytes());
                    let f = off | if more { 0x2000 } else { 0 };
                    h[6..8].copy_from_slice(&f.to_be_bytes());
                }
                h[8] = self.hop_limit;
                h[9] = proto;
                h[12..16].copy_from_slice(&s.octets());
                h[16..20].copy_from_slice(&d.octets());
                h.extend_from_slice(&self.ipv4_options);
                h.extend_from_slice(&l4);
                h
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut ext = Vec::new();
                let mut codes: Vec<u8> = self.ipv6_ext.iter().map(|(c, _)| *c).collect();
                codes.push(proto);
                for (i, (_, body)) in self.ipv6_ext.iter().enumerate() {
                    ext.push(codes[i + 1]);
                    ext.extend_from_slice(body);
                }
                let mut h = vec![0u8; 40];
                h[0] = 0x60;
                h[4..6].copy_from_slice(&((ext.len() + l4.len()) as u16).to_be_bytes());
                h[6] = codes[0];
                h[7] = self.hop_limit;
                h[8..24].copy_from_slice(&s.octets());
                h[24..40].copy_from_slice(&d.octets());
                h.extend_from_slice(&ext);
                h.extend_from_slice(&l4);
                h
            }
            _ => panic!("mixed address families"),
        }
    }

    /// The whole Ethernet frame.
    pub fn build(&self) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        for vlan in &self.vlans {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&vlan.to_be_bytes());
        }
        let ether_type: u16 = if self.src.is_ipv6() { 0x86dd } else { 0x0800 };
        f.extend_from_slice(&ether_type.to_be_bytes());
        f.extend_from_slice(&self.ip_packet());
        f
    }

    /// The same flow in the other direction (a SYN is answered with SYN-ACK, anything
    /// else with ACK).
    pub fn reply(&self) -> Self {
        let mut r = self.clone();
        r.tcp_flags = if self.tcp_flags == SYN {
            SYN | ACK
        } else {
            ACK
        };
        std::mem::swap(&mut r.src, &mut r.dst);
        r.l4 = match self.l4 {
            L4::Tcp(s, d) => L4::Tcp(d, s),
            L4::Udp(s, d) => L4::Udp(d, s),
            L4::Icmp(t, c, id) => L4::Icmp(echo_reply_type(t), c, id),
        };
        r
    }
}

fn echo_reply_type(t: u8) -> u8 {
    match t {
        8 => 0,
        128 => 129,
        other => other,
    }
}
