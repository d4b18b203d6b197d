use ward_common::proto;

use super::*;

const POLICY: &str = r#"
[zones.imaging]
cidrs = ["198.18.20.0/24"]
[zones.pacs]
cidrs = ["198.18.21.0/24"]
[zones.billing]
cidrs = ["198.18.23.0/24"]

[[allow]]
from = "imaging"
to = "pacs"
services = ["dicom"]
"#;

fn policy() -> Policy {
    crate::policy::load_str("p.toml", POLICY).unwrap().policy
}

fn request(from: &str, to: &str, service: &str, for_secs: u64, reason: &str) -> GrantRequest {
    GrantRequest {
        from: from.into(),
        to: to.into(),
        service: service.into(),
        for_secs,
        reason: reason.into(),
        operator: "alice".into(),
    }
}

fn ask(r: &GrantRequest, in_force: &[Grant]) -> Result<Grant, BreakglassError> {
    grant(
        r,
        "alice (uid 0)".into(),
        &BreakglassConfig::default(),
        &policy(),
        in_force,
    )
}

#[test]
fn services_are_catalogue_names_or_protocol_and_port() {
    assert_eq!(
        service_ports("dns").unwrap(),
        [(proto::TCP, 53), (proto::UDP, 53)]
    );
    assert_eq!(service_ports("tcp/8443").unwrap(), [(proto::TCP, 8443)]);
    assert_eq!(service_ports("udp/514").unwrap(), [(proto::UDP, 514)]);
    assert_eq!(service_ports("icmp").unwrap(), [(proto::ICMP, 0)]);
    assert_eq!(
        service_ports("htps").unwrap_err().to_string(),
        "unknown service `htps` (did you mean `https`?): use a name of `ward policy services`, \
         tcp/PORT, udp/PORT or icmp"
    );
    assert!(service_ports("tcp/70000").is_err());
}

#[test]
fn a_grant_takes_the_lowest_free_number_and_ends_when_asked() {
    let r = request(
        "imaging",
        "billing",
        "https",
        7200,
        "  INC-4711 vendor support ",
    );
    let first = ask(&r, &[]).unwrap();
    assert_eq!(
        (first.id, first.reason.as_str()),
        (0, "INC-4711 vendor support")
    );
    assert_eq!(
        first.expires.duration_since(first.since).unwrap().as_secs(),
        7200
    );
    assert_eq!(first.ports(), [(proto::TCP, 443)]);
    assert_eq!(first.summary(), "grant 0: imaging -> billing https");
    let other = ask(
        &request("billing", "imaging", "tcp/22", 60, "x"),
        std::slice::from_ref(&first),
    );
    assert_eq!(other.unwrap().id, 1);
    assert_eq!(
        ask(&r, &[first]).unwrap_err(),
        BreakglassError::Duplicate("grant 0: imaging -> billing https".into())
    );
}

#[test]
fn bad_requests_are_refused_with_the_reason() {
    let refused = |r: GrantRequest| ask(&r, &[]).unwrap_err().to_string();
    assert_eq!(
        refused(request("imaging", "billing", "https", 9 * 3600, "x")),
        "--for must be longer than 0 and at most 8h (`[breakglass] max_duration`)"
    );
    assert!(refused(request("imaging", "billing", "https", 0, "x")).starts_with("--for"));
    assert_eq!(
        refused(request("imaging", "billing", "https", 60, " ")),
        "--reason is required and at most 96 bytes"
    );
    assert_eq!(
        refused(request("imaging", "bills", "https", 60, "x")),
        "no zone `bills` in the policy in force"
    );
    assert_eq!(
        refused(request("imaging", "pacs", "tcp/104", 60, "x")),
        "the policy already allows imaging -> pacs tcp/104: no break-glass needed"
    );
    // Partly allowed (104 is, 11113 is not): granted.
    assert!(ask(&request("imaging", "pacs", "tcp/11113", 60, "x"), &[]).is_ok());
    let off = BreakglassConfig {
        enabled: false,
        ..BreakglassConfig::default()
    };
    let r = request("imaging", "billing", "https", 60, "x");
    assert_eq!(
        grant(&r, "a".into(), &off, &policy(), &[]),
        Err(BreakglassError::Disabled)
    );
}

#[test]
fn at_most_sixteen_grants_are_in_force() {
    let mut in_force = Vec::new();
    for port in 0..BREAKGLASS_GRANTS {
        let service = format!("tcp/{}", 8000 + port);
        in_force.push(ask(&request("imaging", "billing", &service, 60, "x"), &in_force).unwrap());
    }
    let r = request("imaging", "billing", "tcp/9000", 60, "x");
    assert_eq!(ask(&r, &in_force), Err(BreakglassError::Full));
}
