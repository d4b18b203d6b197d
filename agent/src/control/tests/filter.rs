//! The flow filter: each field matches either end, all given must hold; `--addr`
//! parsing; the request line.
use super::record;
use crate::{
    control::{parse_addr, FlowFilter, FlowVerdict, Request},
    events::FlowRecord,
};

/// 198.18.0.1:40000 (lab) -> 198.18.1.2:443 (clinic), denied.
fn denied() -> FlowRecord {
    let mut r = record(0, "deny", "lab", "clinic");
    (r.src_endpoint.ip, r.src_endpoint.port) = (Some("198.18.0.1".parse().unwrap()), Some(40000));
    (r.dst_endpoint.ip, r.dst_endpoint.port) = (Some("198.18.1.2".parse().unwrap()), Some(443));
    r
}

fn filter(f: impl FnOnce(&mut FlowFilter)) -> FlowFilter {
    let mut filter = FlowFilter::default();
    f(&mut filter);
    filter
}

#[test]
fn each_field_matches_either_end() {
    let r = denied();
    let cases: [(FlowFilter, bool); 14] = [
        (FlowFilter::default(), true),
        (
            filter(|f| f.addr = Some("198.18.0.1/32".parse().unwrap())),
            true,
        ),
        (
            filter(|f| f.addr = Some("198.18.1.0/24".parse().unwrap())),
            true,
        ),
        (
            filter(|f| f.addr = Some("198.18.0.0/23".parse().unwrap())),
            true,
        ),
        (
            filter(|f| f.addr = Some("198.18.2.0/24".parse().unwrap())),
            false,
        ),
        (
            filter(|f| f.addr = Some("2001:db8::/32".parse().unwrap())),
            false,
        ),
        (filter(|f| f.port = Some(443)), true),
        (filter(|f| f.port = Some(40000)), true),
        (filter(|f| f.port = Some(80)), false),
        (filter(|f| f.zone = Some("clinic".into())), true),
        (filter(|f| f.zone = Some("guest".into())), false),
        (filter(|f| f.verdict = Some(FlowVerdict::Allow)), false),
        // Combined: all must hold.
        (
            filter(|f| {
                f.verdict = Some(FlowVerdict::Deny);
                f.zone = Some("lab".into());
                f.addr = Some("198.18.1.2/32".parse().unwrap());
                f.port = Some(443);
            }),
            true,
        ),
        (
            filter(|f| {
                f.addr = Some("198.18.1.2/32".parse().unwrap());
                f.port = Some(22);
            }),
            false,
        ),
    ];
    for (i, (filter, expected)) in cases.iter().enumerate() {
        assert_eq!(filter.matches(&r), *expected, "case {i}: {filter:?}");
    }
}

#[test]
fn a_record_without_addresses_or_ports_matches_no_address_or_port() {
    let mut r = denied();
    (r.src_endpoint.ip, r.dst_endpoint.ip) = (None, None);
    (r.src_endpoint.port, r.dst_endpoint.port) = (None, None);
    assert!(!filter(|f| f.addr = Some("0.0.0.0/0".parse().unwrap())).matches(&r));
    assert!(!filter(|f| f.port = Some(443)).matches(&r));
}

#[test]
fn addresses_and_prefixes_parse_host_bits_do_not() {
    assert_eq!(
        parse_addr("198.18.0.1"),
        Ok("198.18.0.1/32".parse().unwrap())
    );
    assert_eq!(
        parse_addr("2001:db8::/48"),
        Ok("2001:db8::/48".parse().unwrap())
    );
    assert_eq!(
        parse_addr("198.18.0.1/24"),
        Err("`198.18.0.1/24` has host bits set (did you mean 198.18.0.0/24?)".into())
    );
    assert_eq!(
        parse_addr("lab"),
        Err("`lab` is neither an address nor a CIDR prefix".into())
    );
}

#[test]
fn the_request_line_carries_the_new_fields() {
    let f = filter(|f| {
        f.addr = Some("198.18.0.0/15".parse().unwrap());
        f.port = Some(53);
    });
    let line = serde_json::to_string(&Request::Flows(f)).unwrap();
    assert_eq!(line, r#"{"cmd":"flows","addr":"198.18.0.0/15","port":53}"#);
}
