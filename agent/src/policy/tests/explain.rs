//! Flow explanations on the clinic policy.
use std::net::IpAddr;

use ward_common::Verdict;

use super::*;

fn explain(src: &str, dst: &str, service: &str) -> Result<String, ExplainError> {
    let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let service: Service = service.parse()?;
    clinic()
        .policy
        .explain(src, dst, &service)
        .map(|e| e.to_string())
}

#[test]
fn explains_the_clinic() {
    let ok = |s: &str, d: &str, svc: &str| explain(s, d, svc).expect("valid query");
    assert_eq!(
        ok("198.18.20.5", "198.18.21.10", "tcp/104"),
        "allow imaging -> pacs tcp/104 by rule #0 at clinic.toml:34"
    );
    assert_eq!(
        ok("2001:db8:20::5", "2001:db8:21::1", "icmp"),
        "allow imaging -> pacs icmp by rule #0 at clinic.toml:34"
    );
    assert_eq!(
        ok("198.18.20.5", "198.18.23.1", "tcp/443"),
        "deny imaging -> billing tcp/443: no rule allows it"
    );
    assert_eq!(
        ok("198.18.21.10", "198.18.20.5", "tcp/104"),
        "deny pacs -> imaging tcp/104: no rule allows it"
    );
    assert_eq!(
        ok("198.18.25.7", "198.18.22.2", "tcp/443"),
        "allow clinicians -> ehr tcp/443 by rule #1 at clinic.toml:42"
    );
    assert_eq!(
        ok("198.18.24.1", "192.0.2.1", "TCP/22"),
        "allow admin -> world tcp/22 by rule #3 at clinic.toml:56"
    );
    assert_eq!(
        ok("192.0.2.1", "198.18.24.1", "tcp/22"),
        "deny world -> admin tcp/22: no rule allows it"
    );
    assert_eq!(
        ok("198.18.22.9", "198.18.24.1", "udp/514"),
        "allow ehr -> admin udp/514 by rule #4 at clinic.toml:64"
    );
    assert_eq!(
        ok("198.18.22.9", "198.18.22.10", "tcp/443"),
        "deny ehr -> ehr tcp/443: no rule allows it"
    );
}

#[test]
fn explanation_fields() {
    let policy = clinic().policy;
    let e = policy
        .explain(
            "198.18.23.1".parse().unwrap(),
            "198.18.22.1".parse().unwrap(),
            &Service::Tcp(8443),
        )
        .unwrap();
    assert_eq!(e.verdict, Verdict::Allow);
    assert_eq!(
        (e.src_zone.as_str(), e.dst_zone.as_str()),
        ("billing", "ehr")
    );
    assert_eq!(e.rule.map(|(id, o)| (id, o.line)), Some((2, 49)));
}

#[test]
fn bad_queries() {
    assert_eq!(
        explain("198.18.20.5", "2001:db8:21::1", "tcp/104"),
        Err(ExplainError::MixedFamilies(
            "198.18.20.5".parse().unwrap(),
            "2001:db8:21::1".parse().unwrap()
        ))
    );
    for bad in ["tcp", "tcp/0", "tcp/65536", "sctp/9", "udp/x", "icmp/1", ""] {
        assert_eq!(
            bad.parse::<Service>(),
            Err(ExplainError::Service(bad.to_owned())),
            "{bad}"
        );
    }
}
