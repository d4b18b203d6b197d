//! Differential test: random policies and random (also malformed) frames; the kernel's
//! verdict must equal the reference evaluator's for every frame. Needs root.
mod support;

use std::fmt::Write as _;

use support::{
    frames::{FrameSpec, ACK, FIN, L4, RST, SYN},
    Rng, TestDataplane, PASS,
};
use ward::policy::{self, catalogue::CATALOGUE};
use ward_common::{map_names, Config, FragKey, Reason, Verdict};
use ward_reference::ReferenceDataplane;

/// Policies drawn unless `WARD_DIFF_POLICIES` says otherwise (e.g. for a quicker run).
const POLICIES: usize = 1_000;
const FRAMES_PER_POLICY: usize = 40;

#[test]
fn kernel_agrees_with_reference_on_random_policies_and_frames() {
    let seed = std::env::var("WARD_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    let wanted: usize = std::env::var("WARD_DIFF_POLICIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(POLICIES);
    let mut rng = Rng::new(seed);
    let mut t = TestDataplane::new("diff");
    let (mut judged, mut allowed, mut policies) = (0usize, 0usize, 0usize);
    let (mut established, mut reloads) = (0usize, 0usize);
    while policies < wanted {
        let (zones_text, zones) = random_zones(&mut rng);
        let mut text = format!("{zones_text}{}", random_rules(&mut rng, zones.len()));
        let Ok(loaded) = policy::load_str("random.toml", &text) else {
            continue; // e.g. the same prefix drawn for two zones
        };
        policies += 1;
        t.dp.apply(&loaded.compiled).expect("apply");
        clear_state(&mut t);
        unlimited_budgets(&mut t);
        let mut reference = ReferenceDataplane::new(&loaded.policy);
        let mut sent: Vec<FrameSpec> = Vec::new();
        // Half way, a third of the policies are replaced by other rules between the
        // same zones, the tables kept: tracked connections are judged again, and
        // retransmitted SYNs meet the new rules.
        let reload_at = if rng.chance(1, 3) {
            FRAMES_PER_POLICY / 2
        } else {
            usize::MAX
        };
        for i in 0..FRAMES_PER_POLICY {
            if i == reload_at {
                let next = format!("{zones_text}{}", random_rules(&mut rng, zones.len()));
                if let Ok(loaded) = policy::load_str("random.toml", &next) {
                    t.dp.apply(&loaded.compiled).expect("apply");
                    reference.set_policy(&loaded.policy);
                    text = format!("{text}\nthen, from frame {i}, the rules of:\n{next}");
                    reloads += 1;
                }
            }
            let spec = if !sent.is_empty() && rng.chance(1, 4) {
                rng.pick(&sent).reply()
            } else if !sent.is_empty() && rng.chance(1, 4) {
                // A follower: the same endpoint again, as a connection's next packet
                // (what the kernel's fast path judges by the entry alone).
                // (A TCP one is sometimes the same segment again: a retransmission.)
                let follower = rng.pick(&sent).clone();
                match follower.l4 {
                    L4::Tcp(..) if rng.chance(2, 3) => follower.flags(ACK),
                    _ => follower,
                }
            } else {
                random_frame(&mut rng, &zones)
            };
            let mut frame = spec.build();
            mutate(&mut rng, &mut frame);
            let kernel = t.xdp(&frame);
            let (expected, reason) = reference.judge(&frame);
            let kernel_verdict = if kernel == PASS {
                Verdict::Allow
            } else {
                Verdict::Deny
            };
            assert_eq!(
                kernel_verdict, expected,
                "seed {seed}: kernel and reference disagree (reference reason {reason:?})\npolicy:\n{text}\nframe {spec:?}\nbytes {frame:02x?}"
            );
            judged += 1;
            allowed += usize::from(expected == Verdict::Allow);
            established += usize::from(reason == Reason::Established);
            sent.push(spec);
        }
    }
    eprintln!(
        "{judged} frames over {policies} policies ({reloads} replaced half way) agreed ({allowed} allowed, {established} established)"
    );
    assert!(reloads > wanted / 10, "the generator must replace policies");
    assert!(
        allowed > judged / 20 && allowed < judged,
        "the generator must produce both verdicts"
    );
    assert!(
        established > judged / 100,
        "the generator must produce packets of established connections"
    );
}

/// The reference models no budgets: no limit on new flows, events never matter.
fn unlimited_budgets(t: &mut TestDataplane) {
    let mut config = t.dp.config().unwrap();
    config.flows_per_source = 0;
    let mut array: aya::maps::Array<_, Config> =
        aya::maps::Array::try_from(t.dp.ebpf().map_mut(map_names::CONFIG).unwrap()).unwrap();
    array.set(0, config, 0).unwrap();
}

/// Empties the connection and fragment tables so each policy starts from scratch.
fn clear_state(t: &mut TestDataplane) {
    support::conntrack::clear(t);
    let ebpf = t.dp.ebpf();
    let mut frags: aya::maps::HashMap<_, FragKey, u64> =
        aya::maps::HashMap::try_from(ebpf.map_mut(map_names::FRAGMENTS).unwrap()).unwrap();
    let keys: Vec<FragKey> = frags.keys().filter_map(Result::ok).collect();
    for k in keys {
        let _ = frags.remove(&k);
    }
}

/// A zone's addresses to draw from: (IPv4 /24 base, IPv6 /64 base).
struct ZoneAddrs {
    v4: [u8; 3],
    v6: u16,
}

/// One to five zones: their TOML and the addresses to draw from.
fn random_zones(rng: &mut Rng) -> (String, Vec<ZoneAddrs>) {
    let n = 1 + rng.below(5) as usize;
    let mut text = String::new();
    let mut zones = Vec::new();
    for i in 0..n {
        let third = rng.below(8) as u8;
        let v6 = 0x100 + rng.below(8) as u16;
        // Nested prefixes exercise longest-prefix match; a zone of hosts alone (and a
        // policy of such zones) leaves the tries empty, which the lookup then skips.
        let (v4cidr, v6cidr) = if rng.chance(1, 6) {
            let host = rng.below(4);
            (
                format!("198.18.{third}.{host}/32"),
                format!("2001:db8:{v6:x}::{host:x}/128"),
            )
        } else if rng.chance(1, 3) {
            (
                format!("198.18.{third}.{}/30", 4 * rng.below(4)),
                format!("2001:db8:{v6:x}::/80"),
            )
        } else {
            (
                format!("198.18.{third}.0/24"),
                format!("2001:db8:{v6:x}::/64"),
            )
        };
        // Exact hosts, often inside another zone's prefix: the zone hashes.
        let hosts = if rng.chance(1, 3) {
            format!(
                ", \"198.18.{}.{}/32\", \"2001:db8:{:x}::{:x}/128\"",
                rng.below(8),
                rng.below(20),
                0x100 + rng.below(8),
                rng.below(20)
            )
        } else {
            String::new()
        };
        writeln!(
            text,
            "[zones.z{i}]\ncidrs = [\"{v4cidr}\", \"{v6cidr}\"{hosts}]"
        )
        .unwrap();
        zones.push(ZoneAddrs {
            v4: [198, 18, third],
            v6,
        });
    }
    (text, zones)
}

/// One to six allow rules between the `n` zones of [`random_zones`].
fn random_rules(rng: &mut Rng, n: usize) -> String {
    let mut text = String::new();
    for _ in 0..1 + rng.below(6) {
        let side = |rng: &mut Rng| match rng.below(4) {
            0 => "\"any\"".to_string(),
            1 => format!(
                "[\"z{}\", \"z{}\"]",
                rng.below(n as u64),
                rng.below(n as u64)
            ),
            _ => format!("\"z{}\"", rng.below(n as u64)),
        };
        let from = side(rng);
        let to = side(rng);
        writeln!(text, "[[allow]]\nfrom = {from}\nto = {to}").unwrap();
        let ports = |rng: &mut Rng| {
            let lo = 1 + rng.below(200);
            if rng.chance(1, 2) {
                format!("[{lo}]")
            } else {
                format!("[\"{lo}-{}\"]", lo + rng.below(100))
            }
        };
        let mut any = false;
        if rng.chance(1, 2) {
            writeln!(text, "tcp = {}", ports(rng)).unwrap();
            any = true;
        }
        if rng.chance(1, 2) {
            writeln!(text, "udp = {}", ports(rng)).unwrap();
            any = true;
        }
        if rng.chance(1, 3) {
            // Named services must compile to the same port sets as explicit ports.
            let names: Vec<String> = (0..1 + rng.below(2))
                .map(|_| format!("\"{}\"", rng.pick(CATALOGUE).name))
                .collect();
            writeln!(text, "services = [{}]", names.join(", ")).unwrap();
            any = true;
        }
        if !any || rng.chance(1, 3) {
            writeln!(text, "icmp = true").unwrap();
        }
    }
    text
}

fn random_addr(rng: &mut Rng, zones: &[ZoneAddrs], v6: bool) -> String {
    let z = rng.pick(zones);
    let world = rng.chance(1, 8);
    match (v6, world) {
        (false, false) => format!("{}.{}.{}.{}", z.v4[0], z.v4[1], z.v4[2], rng.below(20)),
        (false, true) => format!("198.19.{}.{}", rng.below(4), rng.below(250)),
        (true, false) => format!("2001:db8:{:x}::{:x}", z.v6, rng.below(20)),
        (true, true) => format!("2001:db8:ffff::{:x}", rng.below(250)),
    }
}

/// Addresses that anti-spoofing and the link-scoped rules look at.
const SPECIAL_V4: &[&str] = &[
    "0.0.0.0",
    "0.0.0.1",
    "127.0.0.1",
    "224.0.0.1",
    "255.255.255.255",
];
const SPECIAL_V6: &[&str] = &[
    "::",
    "::1",
    "fe80::1",
    "fe80::2",
    "ff02::1",
    "ff02::16",
    "ff02::1:ff00:1",
    "ff05::2",
    "::ffff:198.18.0.1",
];

fn random_frame(rng: &mut Rng, zones: &[ZoneAddrs]) -> FrameSpec {
    let v6 = rng.chance(1, 2);
    let addr = |rng: &mut Rng| {
        if rng.chance(1, 10) {
            rng.pick(if v6 { SPECIAL_V6 } else { SPECIAL_V4 })
                .to_string()
        } else {
            random_addr(rng, zones, v6)
        }
    };
    let src = addr(rng);
    let dst = addr(rng);
    let port = |rng: &mut Rng| {
        if rng.chance(1, 8) {
            let service = rng.pick(CATALOGUE);
            *rng.pick(if service.tcp.is_empty() {
                service.udp
            } else {
                service.tcp
            })
        } else if rng.chance(3, 4) {
            1 + rng.below(300) as u16
        } else {
            rng.next() as u16
        }
    };
    let link = |rng: &mut Rng| {
        if v6 {
            *rng.pick(&[130u8, 131, 132, 143, 133, 134, 135, 136, 137])
        } else {
            rng.below(256) as u8
        }
    };
    let dhcp = |rng: &mut Rng| {
        let (client, server) = if v6 { (546, 547) } else { (68, 67) };
        *rng.pick(&[(client, server), (server, client)])
    };
    let l4 = match rng.below(7) {
        0 | 1 => L4::Tcp(port(rng), port(rng)),
        2 => L4::Udp(port(rng), port(rng)),
        3 => L4::Icmp(if v6 { 128 } else { 8 }, 0, rng.below(4) as u16),
        4 => L4::Icmp(link(rng), 0, rng.below(4) as u16),
        5 => {
            let (s, d) = dhcp(rng);
            L4::Udp(s, d)
        }
        _ => L4::Icmp(rng.below(256) as u8, 0, rng.below(4) as u16),
    };
    let mut spec = FrameSpec::new(&src, &dst, l4)
        .flags(*rng.pick(&[SYN, SYN, SYN, SYN, SYN, ACK, SYN | ACK, FIN | ACK, RST, 0]))
        .hops(*rng.pick(&[64, 255, 1, 254]));
    if rng.chance(1, 8) {
        spec.vlans = (0..1 + rng.below(3))
            .map(|_| rng.below(4000) as u16)
            .collect();
    }
    if !v6 && rng.chance(1, 8) {
        spec.ipv4_options = vec![1; 4 * (1 + rng.below(3) as usize)];
    }
    if !v6 && rng.chance(1, 8) {
        spec.ipv4_frag = Some((rng.below(3) as u16, rng.chance(1, 2), rng.below(3) as u16));
    }
    if v6 && rng.chance(1, 6) {
        for _ in 0..1 + rng.below(8) {
            let code = *rng.pick(&[0u8, 43, 60, 51, 44]);
            let body = if code == 44 {
                let field = ((rng.below(3) as u16) << 3) | rng.below(2) as u16;
                let f = field.to_be_bytes();
                vec![0, f[0], f[1], 0, 0, 0, rng.below(3) as u8]
            } else if code == 51 {
                vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            } else {
                vec![0; 7]
            };
            spec.ipv6_ext.push((code, body));
        }
    }
    if matches!(spec.l4, L4::Icmp(3 | 11 | 1 | 2, ..)) && rng.chance(3, 4) {
        // Mostly quoting a packet the error's destination sent, sometimes one it
        // did not (a carrier), sometimes oversized.
        let (qsrc, qdst) = if rng.chance(3, 4) {
            (&dst, &src)
        } else {
            (&src, &dst)
        };
        let quoted = FrameSpec::new(qsrc, qdst, L4::Tcp(port(rng), port(rng))).ip_packet();
        let keep = if v6 { 48 } else { 28 };
        spec.payload = quoted[..keep.min(quoted.len())].to_vec();
        if rng.chance(1, 6) {
            spec.payload
                .resize(spec.payload.len() + if v6 { 1300 } else { 600 }, 0x55);
        }
    }
    spec
}

/// Sometimes truncates the frame or flips a byte, so malformed input is judged too.
fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
    match rng.below(10) {
        0 => {
            let len = 14 + rng.below((frame.len() - 13) as u64) as usize;
            frame.truncate(len);
        }
        1 => {
            let i = rng.below(frame.len() as u64) as usize;
            frame[i] ^= 1 << rng.below(8);
        }
        _ => {}
    }
}
