//! The interface watch: names and patterns, Ethernet only, the start-up check.
use netlink_packet_route::link::LinkLayerType;

use super::*;

fn wanted(entries: &[&str]) -> Wanted {
    Wanted::new(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
}

#[test]
fn names_match_exactly_and_patterns_by_glob() {
    let w = wanted(&["eth0", "gw-*", "veth?", "wg[0-3]"]);
    assert_eq!(w.names(), ["eth0"]);
    for yes in ["eth0", "gw-imaging", "gw-", "veth1", "wg2"] {
        assert!(w.matches(yes), "{yes}");
    }
    for no in ["eth1", "eth00", "xgw-a", "veth12", "wg4", "lo"] {
        assert!(!w.matches(no), "{no}");
    }
}

#[test]
fn a_bad_pattern_is_an_error_naming_it() {
    let err = Wanted::new(&["eth[".to_string()]).unwrap_err().to_string();
    assert!(err.starts_with("interface eth[: invalid pattern"), "{err}");
}

#[test]
fn only_ethernet_links_are_accepted() {
    let link = |link_type| Link {
        index: 7,
        name: "x".into(),
        link_type,
        xdp_programs: Vec::new(),
        up: true,
    };
    assert_eq!(refusal(&link(LinkLayerType::Ether)), None);
    let tun = refusal(&link(LinkLayerType::None)).expect("tun is refused");
    assert!(tun.contains("(ARPHRD 65534) is not Ethernet"), "{tun}");
    assert!(refusal(&link(LinkLayerType::Tunnel)).is_some(), "ipip");
    assert!(refusal(&link(LinkLayerType::Loopback)).is_some(), "lo");
}

#[test]
fn a_named_interface_may_be_missing_at_start_but_not_refused() {
    assert!(
        check_interfaces(&["wd-no-such-if".into()]).is_ok(),
        "attached when it appears"
    );
    // `lo` is there but is no Ethernet device.
    let err = check_interfaces(&["lo".into()]).unwrap_err().to_string();
    assert!(err.starts_with("interface lo: refused: link type"), "{err}");
    assert!(
        check_interfaces(&["wd-*".into()]).is_ok(),
        "a pattern may match nothing"
    );
}
