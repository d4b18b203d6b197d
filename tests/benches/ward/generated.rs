//! Generated policies: the large zone policies of the per-packet and policy-operation
//! measurements, and the allow-list the throughput comparison expresses in Ward,
//! nftables and iptables. Addresses only from 198.18.0.0/15 and 2001:db8::/32.
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// First IPv4 address of the generated prefixes (one /32 per CIDR: 100,000 of them end
/// at 198.19.134.159, below the benchmark's own endpoints in 198.19.240.0/20).
const V4_BASE: u32 = u32::from_be_bytes([198, 18, 0, 0]);

/// A generated zone policy and the flows the per-packet measurement sends through it.
pub struct ZonePolicy {
    /// TOML text.
    pub text: String,
    /// Number of zones.
    pub zones: usize,
    /// An address of the zone that the last rule allows from, per family.
    pub src: [String; 2],
    /// An address of the zone that the last rule allows to, per family.
    pub dst: [String; 2],
}

/// The allowed service of [`ZonePolicy`]'s last rule (TCP).
pub const ALLOWED_PORT: u16 = 8443;
/// A TCP port no generated rule allows (all generated ports are ≥ 1024).
pub const DENIED_PORT: u16 = 9;

fn v4(k: usize) -> Ipv4Addr {
    Ipv4Addr::from(V4_BASE + k as u32)
}

fn v6_net(k: usize) -> Ipv6Addr {
    let k = k as u32;
    Ipv6Addr::new(
        0x2001,
        0xdb8,
        0x100 + (k >> 16) as u16,
        k as u16,
        0,
        0,
        0,
        0,
    )
}

/// A policy of `cidrs` IPv4 /32s and as many IPv6 /64s, in `clamp(cidrs / 10, 10, 1000)`
/// zones (CIDR `k` in zone `k mod zones`), and `rules` rules between zone pairs, each
/// with a TCP port and a TCP and a UDP port range (overlapping, as real rule sets do).
/// The last rule allows TCP 8443 from the zone of CIDR `cidrs/3` to that of `2·cidrs/3`.
pub fn zone_policy(cidrs: usize, rules: usize) -> ZonePolicy {
    let zones = (cidrs / 10).clamp(10, 1000).min(cidrs);
    let mut t = String::with_capacity(cidrs * 60 + rules * 120);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); zones];
    for k in 0..cidrs {
        members[k % zones].push(k);
    }
    for (z, ks) in members.iter().enumerate() {
        let _ = write!(t, "[zones.z{z:04}]\ncidrs = [");
        for (i, &k) in ks.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(t, "{sep}\"{}/32\", \"{}/64\"", v4(k), v6_net(k));
        }
        t.push_str("]\n");
    }
    let (ks, kd) = (cidrs / 3, 2 * cidrs / 3);
    for i in 0..rules.saturating_sub(1) {
        let a = i % zones;
        let b = (a + 1 + i / zones) % zones;
        let lo = 1024 + (i * 37) % 50_000;
        let hi = lo + 10 + i % 90;
        let single = 1024 + (i * 101) % 60_000;
        let _ = writeln!(
            t,
            "[[allow]]\nfrom = \"z{a:04}\"\nto = \"z{b:04}\"\ntcp = [{single}, \"{lo}-{hi}\"]\nudp = [\"{}-{}\"]",
            lo + 3,
            hi + 20
        );
    }
    let _ = writeln!(
        t,
        "[[allow]]\nfrom = \"z{:04}\"\nto = \"z{:04}\"\ntcp = [{ALLOWED_PORT}, \"20000-20100\"]\nudp = [514]",
        ks % zones,
        kd % zones
    );
    let host6 = |k: usize| {
        let mut o = v6_net(k).octets();
        o[15] = 1;
        Ipv6Addr::from(o).to_string()
    };
    ZonePolicy {
        text: t,
        zones,
        src: [v4(ks).to_string(), host6(ks)],
        dst: [v4(kd).to_string(), host6(kd)],
    }
}

/// One entry of the throughput allow-list: UDP from `src` to the receiver, ports `lo..=hi`.
#[derive(Clone, Copy)]
pub struct Entry {
    /// Source host.
    pub src: Ipv4Addr,
    /// First destination port.
    pub lo: u16,
    /// Last destination port.
    pub hi: u16,
}

/// The receiver of the throughput measurement.
pub const RX_ADDR: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 2);
/// The sender's own address (not a source of the generated frames).
pub const TX_ADDR: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 1);
/// A source in no allow-list entry (the denied frames).
pub const STRANGER: Ipv4Addr = Ipv4Addr::new(198, 18, 255, 250);

/// `n` entries, distinct source hosts 198.18.0.1…, ten ports each.
pub fn allow_list(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let lo = 1024 + ((i * 7) % 50_000) as u16;
            Entry {
                src: Ipv4Addr::from(V4_BASE + 1 + i as u32),
                lo,
                hi: lo + 9,
            }
        })
        .collect()
}

/// The allow-list as a Ward policy: one zone per source host, one for the receiver,
/// one rule per entry.
pub fn ward_allow_list(list: &[Entry]) -> String {
    let mut t = format!("[zones.rx]\ncidrs = [\"{RX_ADDR}/32\"]\n");
    for (i, e) in list.iter().enumerate() {
        let _ = writeln!(t, "[zones.s{i:05}]\ncidrs = [\"{}/32\"]", e.src);
    }
    for (i, e) in list.iter().enumerate() {
        let _ = writeln!(
            t,
            "[[allow]]\nfrom = \"s{i:05}\"\nto = \"rx\"\nudp = [\"{}-{}\"]",
            e.lo, e.hi
        );
    }
    t
}

/// `table FAMILY NAME` holding the verdict map `allow` of `list`
/// (saddr . daddr . l4proto . dport), followed by `chain`.
fn nft_map_table(family_name: &str, list: &[Entry], chain: &str) -> String {
    let mut t = format!(
        "table {family_name} {{\n  map allow {{\n    type ipv4_addr . ipv4_addr . inet_proto . inet_service : verdict\n    flags interval\n    elements = {{\n"
    );
    for (i, e) in list.iter().enumerate() {
        let sep = if i + 1 == list.len() { "" } else { "," };
        let _ = writeln!(
            t,
            "      {} . {RX_ADDR} . udp . {}-{} : accept{sep}",
            e.src, e.lo, e.hi
        );
    }
    let _ = write!(t, "    }}\n  }}\n{chain}}}\n");
    t
}

/// nftables, the best way it allows: a netdev ingress chain with one lookup in a
/// concatenated interval verdict map (saddr . daddr . l4proto . dport).
pub fn nft_sets(list: &[Entry], dev: &str) -> String {
    nft_map_table(
        "netdev ward_bench",
        list,
        &format!("  chain ingress {{\n    type filter hook ingress device \"{dev}\" priority 0; policy accept;\n    ip saddr . ip daddr . meta l4proto . th dport vmap @allow\n    meta protocol ip drop\n  }}\n"),
    )
}

/// What a sysadmin deploys against Ward's stateful dataplane: the same map in an `inet`
/// input chain with policy drop, `ct state established,related accept` before it.
pub fn nft_stateful(list: &[Entry]) -> String {
    nft_map_table(
        "inet ward_bench_ct",
        list,
        "  chain input {\n    type filter hook input priority 0; policy drop;\n    ct state established,related accept\n    ip saddr . ip daddr . meta l4proto . th dport vmap @allow\n  }\n",
    )
}

/// nftables with one rule per entry, in the same netdev ingress chain.
pub fn nft_rules(list: &[Entry], dev: &str) -> String {
    let mut t = format!(
        "table netdev ward_bench {{\n  chain ingress {{\n    type filter hook ingress device \"{dev}\" priority 0; policy accept;\n"
    );
    for e in list {
        let _ = writeln!(
            t,
            "    ip saddr {} ip daddr {RX_ADDR} udp dport {}-{} accept",
            e.src, e.lo, e.hi
        );
    }
    t.push_str("    meta protocol ip drop\n  }\n}\n");
    t
}

/// iptables-restore input: the filter table's INPUT chain, one rule per entry, policy DROP.
pub fn iptables(list: &[Entry]) -> String {
    let mut t =
        String::from("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for e in list {
        let _ = writeln!(
            t,
            "-A INPUT -s {}/32 -d {RX_ADDR}/32 -p udp -m udp --dport {}:{} -j ACCEPT",
            e.src, e.lo, e.hi
        );
    }
    t.push_str("COMMIT\n");
    t
}
