//! The `policy` target: arbitrary text through the policy loader and `ward explain`.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ward_common::Verdict;

use ward::policy::{
    self, Diagnostic, ExplainError, Loaded, Policy, Protocol, RuleEntry, Service, Severity,
};

/// File name the text is loaded under.
const NAME: &str = "fuzz.toml";
/// Most sample addresses and services explained (their product bounds the work).
const SAMPLES: usize = 8;

/// Loads `data` (lossily made UTF-8) as one policy file. A rejected policy must say why,
/// at a place in the text; a loaded one must explain flows between sample addresses of
/// its zones as its compiled rule entries decide them.
pub fn policy(data: &[u8]) -> Result<Loaded, Vec<Diagnostic>> {
    let text = String::from_utf8_lossy(data);
    let result = policy::load_str(NAME, &text);
    match &result {
        Ok(loaded) => {
            check_places(&text, &loaded.warnings, Severity::Warning);
            check_loaded(loaded);
        }
        Err(diags) => {
            assert!(
                diags.iter().any(|d| d.severity == Severity::Error),
                "a rejected policy has an error: {diags:?}"
            );
            check_places(&text, diags, Severity::Error);
        }
    }
    result
}

/// Every diagnostic is at most `worst`, prints, and points into the text.
fn check_places(text: &str, diags: &[Diagnostic], worst: Severity) {
    let lines: Vec<&str> = text.split('\n').collect();
    for d in diags {
        assert!(d.severity >= worst, "{d}");
        assert!(!d.to_string().is_empty());
        assert_eq!(d.origin.file.to_str(), Some(NAME), "{d}");
        if d.origin.line == 0 {
            continue;
        }
        let line = lines.get(d.origin.line - 1).unwrap_or_else(|| {
            panic!("{d}: the text has {} lines", lines.len());
        });
        let columns = line.chars().count() + 1;
        assert!(
            (1..=columns).contains(&d.origin.column),
            "{d}: line {} has {columns} columns",
            d.origin.line
        );
    }
}

fn check_loaded(loaded: &Loaded) {
    let (policy, compiled) = (&loaded.policy, &loaded.compiled);
    assert_eq!(compiled.zone_names.len(), policy.zones.len() + 1);
    assert_eq!(compiled.rule_origins.len(), policy.rules.len());
    let addrs = sample_addrs(policy);
    for &addr in &addrs {
        assert_eq!(
            policy.zone_of(addr),
            longest_match(policy, addr),
            "zone of {addr}"
        );
    }
    let services = sample_services(policy);
    for &src in &addrs {
        for &dst in &addrs {
            for service in &services {
                let explained = policy.explain(src, dst, service);
                if src.is_ipv4() != dst.is_ipv4() {
                    assert_eq!(explained, Err(ExplainError::MixedFamilies(src, dst)));
                    continue;
                }
                let e = explained.expect("same-family flows are explained");
                assert!(!e.to_string().is_empty());
                let zone = |name: &str| policy.zone_id(name).expect("explained zones exist");
                let (s, d) = (zone(&e.src_zone), zone(&e.dst_zone));
                let (proto, port) = service.proto_port();
                let rule = e.rule.as_ref().map(|(id, origin)| {
                    let r = &policy.rules[*id as usize];
                    assert_eq!(&r.origin, origin, "{e}");
                    assert!(r.allows(s, d, proto, port), "{e}");
                    *id
                });
                assert_eq!(e.verdict == Verdict::Allow, rule.is_some(), "{e}");
                assert_eq!(
                    compiled_rule(&compiled.rules, s, d, proto, port),
                    rule,
                    "the compiled entries disagree with `{e}`"
                );
            }
        }
    }
}

/// The first and last address of the first prefixes, and two addresses in no
/// prefix the samples come from.
fn sample_addrs(policy: &Policy) -> Vec<IpAddr> {
    let mut addrs: Vec<IpAddr> = policy
        .zones
        .iter()
        .flat_map(|z| z.cidrs.iter())
        .flat_map(|net| [net.network(), net.broadcast()])
        .take(SAMPLES - 2)
        .collect();
    addrs.push(IpAddr::V4(Ipv4Addr::new(198, 19, 255, 254)));
    addrs.push(IpAddr::V6(Ipv6Addr::new(
        0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1,
    )));
    addrs
}

/// ICMP echo and the edges of the rules' port ranges.
fn sample_services(policy: &Policy) -> Vec<Service> {
    let mut services = vec![Service::Icmp];
    for rule in &policy.rules {
        for r in rule.ports(Protocol::Tcp.code()) {
            services.extend([Service::Tcp(r.first), Service::Tcp(r.last)]);
        }
        for r in rule.ports(Protocol::Udp.code()) {
            services.extend([Service::Udp(r.first), Service::Udp(r.last)]);
        }
    }
    services.dedup();
    services.truncate(SAMPLES);
    services
}

/// The zone of the longest prefix covering `addr`, by brute force.
fn longest_match(policy: &Policy, addr: IpAddr) -> &str {
    policy
        .zones
        .iter()
        .flat_map(|z| z.cidrs.iter().map(move |net| (net, z)))
        .filter(|(net, _)| net.contains(&addr))
        .max_by_key(|(net, _)| net.prefix_len())
        .map_or(policy::WORLD, |(_, z)| z.name.as_str())
}

/// The rule the compiled ranges give a flow, as the kernel's rule tables look it up.
fn compiled_rule(entries: &[RuleEntry], src: u32, dst: u32, proto: u8, port: u16) -> Option<u32> {
    let mut hits = entries
        .iter()
        .filter(|e| (e.src_zone, e.dst_zone, e.proto) == (src, dst, proto) && e.covers(port));
    let hit = hits.next().map(|e| e.rule_id);
    assert!(
        hits.next().is_none(),
        "overlapping rule ranges for port {port}"
    );
    hit
}
