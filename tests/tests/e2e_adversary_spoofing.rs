//! Containment against a hostile host (issue 14), forged sources: through the gateway
//! (reverse-path check), as a weapon against the quarantine, and on a host in host role
//! (its own addresses, loopback, multicast and other martian sources, neighbour
//! discovery and MLD on its link). The oracle is what arrives, sniffed at the
//! destination (`ward_tests::raw`); each test has a positive control, over IPv4 and
//! IPv6. See `e2e_adversary` for the whole suite; run with `--test-threads=1`.
use std::net::IpAddr;
use std::time::{Duration, Instant};

mod support;

use support::gateway::{clinic_policy, prepare, start_gateway, START_TIMEOUT};
use support::run::Run;
use ward_tests::raw::{
    assert_verdicts as check, link_local, octets, sa, tcp, v6_extension, Injector, Packet, Sent,
    Sniffer,
};
use ward_tests::{reach, ward_bin, Clinic, Proto, Role, WardAgent};

/// `ip` in `ward quarantine --list`?
fn quarantined(agent: &WardAgent, ip: IpAddr) -> (bool, String) {
    let (ok, list) = agent.cli_outcome(&["quarantine", "--list"]);
    assert!(ok, "ward quarantine --list: {list}");
    (list.lines().any(|l| l.starts_with(&format!("{ip} "))), list)
}

/// The gateway's `[response]` here: 5 distinct destinations within 5 s quarantine.
const RESPONSE: &str = "log_level = \"denied\"\n[response]\nthreshold = 5\nwindow = \"5s\"\n\
                        duration = \"1h\"\nquarantine_allow = [\"admin\"]\n";

/// Forged sources through the gateway: imaging sends what admin or EHR may send
/// (SSH to EHR, syslog to admin) under their addresses; nothing arrives, while the
/// same packets under imaging's own address to a destination it may reach do. Then
/// quarantine as a weapon: forty SYNs a source, forged from PACS and from the
/// gateway's addresses, scanning billing, quarantine neither and imaging keeps PACS;
/// imaging scanning under its own address is quarantined (positive control).
#[test]
fn forged_sources_pass_nothing_and_cannot_get_pacs_quarantined() {
    prepare("the adversarial end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let agent = start_gateway(&clinic, &clinic_policy(), RESPONSE);
    let (imaging, pacs, ehr, billing, admin) = (
        clinic.host("imaging"),
        clinic.host("pacs"),
        clinic.host("ehr"),
        clinic.host("billing"),
        clinic.host("admin"),
    );
    let [at_ehr, at_admin, at_pacs, at_billing] =
        [ehr, admin, pacs, billing].map(|h| Sniffer::on(h).unwrap());
    let from_imaging = Injector::from_host(&clinic, imaging).unwrap();
    let gateway_addrs: [IpAddr; 4] = [
        "198.18.20.1".parse().unwrap(),
        "198.18.23.1".parse().unwrap(),
        "2001:db8:20::1".parse().unwrap(),
        "2001:db8:23::1".parse().unwrap(),
    ];
    for v6 in [false, true] {
        let fam = if v6 { "IPv6" } else { "IPv4" };
        let img = imaging.addr(v6);
        let send = |what: &str, p: Packet| from_imaging.mark(&format!("{fam} {what}"), p).unwrap();
        let ssh = send(
            "SYN to ehr:22 forged from admin",
            Packet::tcp(sa(admin.addr(v6), 40001), sa(ehr.addr(v6), 22), tcp::SYN),
        );
        let syslog = send(
            "syslog to admin:514 forged from ehr",
            Packet::udp(sa(ehr.addr(v6), 40002), sa(admin.addr(v6), 514)),
        );
        let own_syslog = send(
            "syslog to admin:514 from imaging's own address",
            Packet::udp(sa(img, 40003), sa(admin.addr(v6), 514)),
        );
        let own_dicom = send(
            "SYN to pacs:104 from imaging's own address",
            Packet::tcp(sa(img, 40004), sa(pacs.addr(v6), 104), tcp::SYN),
        );
        check(
            &format!("{fam} forged sources"),
            &[(&at_admin, &own_syslog), (&at_pacs, &own_dicom)],
            &[(&at_ehr, &ssh), (&at_admin, &syslog)],
        );
    }

    // Quarantine as a weapon: 40 SYNs a forged source (8 billing addresses x 5 ports).
    let forged: Vec<IpAddr> = [pacs.v4.into(), pacs.v6.into()]
        .into_iter()
        .chain(gateway_addrs)
        .collect();
    let mut scans = Vec::new();
    for &src in &forged {
        for (i, last) in [10u16, 2, 3, 4, 5, 6, 7, 8].into_iter().enumerate() {
            let dst: IpAddr = match src {
                IpAddr::V4(_) => format!("198.18.23.{last}").parse().unwrap(),
                IpAddr::V6(_) => format!("2001:db8:23::{last:x}").parse().unwrap(),
            };
            for port in [22u16, 104, 443, 8443, 11112] {
                let p = Packet::tcp(sa(src, 42000 + i as u16), sa(dst, port), tcp::SYN);
                scans.push(
                    from_imaging
                        .mark(&format!("forged scan from {src}"), p)
                        .unwrap(),
                );
            }
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    for &ip in &forged {
        let (listed, list) = quarantined(&agent, ip);
        assert!(!listed, "a forged scan got {ip} quarantined:\n{list}");
    }
    let (_, status) = agent.cli_outcome(&["status"]);
    assert!(
        status.contains("quarantine  0 hosts now"),
        "no quarantine after the forged scan:\n{status}"
    );
    for v6 in [false, true] {
        assert!(
            reach(&imaging.ns, Proto::Tcp, pacs.addr(v6), 104),
            "imaging must still reach PACS (v6: {v6}) after the forged scan"
        );
    }

    // Positive control: imaging scanning billing under its own address is quarantined.
    for last in 2..=9u8 {
        let dst: IpAddr = format!("198.18.23.{last}").parse().unwrap();
        from_imaging
            .mark(
                "real scan",
                Packet::tcp(sa(imaging.v4.into(), 43000), sa(dst, 443), tcp::SYN),
            )
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut listed, mut list) = quarantined(&agent, imaging.v4.into());
    while !listed && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        (listed, list) = quarantined(&agent, imaging.v4.into());
    }
    assert!(listed, "imaging's own scan must quarantine it:\n{list}");
    for &ip in &forged {
        assert!(!quarantined(&agent, ip).0, "{ip} quarantined:\n{list}");
    }
    assert!(
        !reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "quarantined imaging must no longer reach PACS"
    );
    let denied: Vec<(&Sniffer, &Sent)> = scans.iter().map(|s| (&at_billing, s)).collect();
    check("forged scans of billing", &[], &denied);
}

/// A host without `[failsafe] management`: warned about in the start log and first
/// in `ward status`, text and JSON.
fn host_without_management_is_warned_about(agent: &WardAgent) {
    const WARNING: &str = "role = \"host\" and `[failsafe] management` is empty: no management \
        access is guaranteed, so a policy mistake can lock the administrators out of this host; \
        list the management prefixes in [failsafe] management (and the ports in tcp_ports)";
    assert!(
        agent.log().contains(&format!("WARNING: {WARNING}")),
        "no warning at the start:\n{}",
        agent.log()
    );
    let (ok, text) = agent.cli_outcome(&["status"]);
    assert!(ok, "ward status: {text}");
    assert_eq!(
        text.lines().next(),
        Some(format!("WARNING     {WARNING}").as_str()),
        "ward status:\n{text}"
    );
    let out = agent
        .cli(&["status", "--json"])
        .expect("ward status --json");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(json["warnings"], serde_json::json!([WARNING]));
}

/// Ward in host role on admin, with a policy that lets anyone reach admin's SSH (so
/// only the anti-spoofing checks can stop what follows): packets claiming admin's own
/// address (routed from imaging), or a loopback, multicast, class E, unspecified or
/// IPv4-mapped source, or addressed to loopback (from a neighbour on admin's link),
/// do not arrive; the same SYN from imaging's real address does, routed or on link.
/// On the link, neighbour discovery passes only with hop limit 255, and router
/// advertisements and redirects only from a link-local source; ND with the gateway
/// keeps working (caches flushed first).
#[test]
fn a_host_drops_packets_claiming_its_own_loopback_or_multicast_sources() {
    prepare("the adversarial end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("adversary-host");
    let text = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    let policy = run.policy(&format!(
        "{text}\n[[allow]]\nfrom = \"any\"\nto = \"admin\"\ntcp = [22]\n\
         description = \"test: SSH to admin from anywhere\"\n"
    ));
    let (imaging, admin) = (clinic.host("imaging"), clinic.host("admin"));
    let mut agent = WardAgent::start_configured(
        &ward_bin(),
        &admin.ns,
        Role::Host,
        &[admin.host_if.to_string()],
        &policy,
        "",
    )
    .expect("start ward");
    agent
        .wait_for("enforcing generation=1", START_TIMEOUT)
        .expect("ward enforcing");
    host_without_management_is_warned_about(&agent);
    let at_admin = Sniffer::on(admin).unwrap();
    let routed = Injector::from_host(&clinic, imaging).unwrap();
    let on_link = Injector::on_link_to(&clinic, admin).unwrap();
    for v6 in [false, true] {
        if v6 {
            // Neighbour discovery with the host must work for everything below: the
            // gateway's solicitations to admin, admin's advertisements back.
            for ns in [&admin.ns, &clinic.gw] {
                ns.ip(&["-6", "neigh", "flush", "all"])
                    .expect("flush neighbours");
            }
        }
        let fam = if v6 { "IPv6" } else { "IPv4" };
        let (img, adm) = (imaging.addr(v6), admin.addr(v6));
        let syn = |src: &str, dst: IpAddr| {
            Packet::tcp(sa(src.parse().unwrap(), 40100), sa(dst, 22), tcp::SYN)
        };
        let mut denied = vec![routed
            .mark(
                &format!("{fam} SYN claiming admin's own address, routed"),
                Packet::tcp(sa(adm, 40101), sa(adm, 22), tcp::SYN),
            )
            .unwrap()];
        denied.push(
            on_link
                .mark(
                    &format!("{fam} SYN claiming admin's own address, on link"),
                    Packet::tcp(sa(adm, 40102), sa(adm, 22), tcp::SYN),
                )
                .unwrap(),
        );
        let martians: &[&str] = if v6 {
            &["::1", "::", "ff02::1", "ff05::2", "::ffff:198.18.20.10"]
        } else {
            &[
                "127.0.0.1",
                "127.1.2.3",
                "224.0.0.5",
                "239.1.1.1",
                "240.0.0.1",
                "255.255.255.255",
                "0.0.0.0",
            ]
        };
        for src in martians {
            denied.push(
                on_link
                    .mark(&format!("{fam} SYN from martian {src}"), syn(src, adm))
                    .unwrap(),
            );
        }
        let loopback: IpAddr = if v6 { "::1" } else { "127.0.0.1" }.parse().unwrap();
        denied.push(
            on_link
                .mark(
                    &format!("{fam} SYN to loopback"),
                    Packet::tcp(sa(img, 40103), sa(loopback, 22), tcp::SYN),
                )
                .unwrap(),
        );
        let mut allowed = vec![
            routed
                .mark(
                    &format!("{fam} SYN from imaging's real address, routed"),
                    Packet::tcp(sa(img, 40104), sa(adm, 22), tcp::SYN),
                )
                .unwrap(),
            on_link
                .mark(
                    &format!("{fam} SYN from imaging's real address, on link"),
                    Packet::tcp(sa(img, 40105), sa(adm, 22), tcp::SYN),
                )
                .unwrap(),
        ];
        if v6 {
            // Neighbour discovery on the link: only with hop limit 255, and router
            // advertisements and redirects only from a link-local source.
            let gw_ll = link_local(&clinic.gw, &admin.gw_if).expect("link-local address");
            let gw_global: IpAddr = "2001:db8:24::1".parse().unwrap();
            let all_nodes: IpAddr = "ff02::1".parse().unwrap();
            let mut target = octets(adm);
            target.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 0x24]);
            let ra = |src: IpAddr| {
                Packet::icmp(src, all_nodes, 134, 0, [64, 0, 0, 0])
                    .with_payload(vec![0u8; 8])
                    .with_ttl(255)
            };
            let mut redirect = octets(img);
            redirect.extend_from_slice(&octets(img));
            let nd = [
                (
                    "NS to admin with hop limit 64",
                    Packet::icmp(gw_ll, adm, 135, 0, [0; 4])
                        .with_payload(target.clone())
                        .with_ttl(64),
                ),
                ("RA from a global source", ra(gw_global)),
                (
                    "redirect from a global source",
                    Packet::icmp(gw_global, adm, 137, 0, [0; 4])
                        .with_payload(redirect.clone())
                        .with_ttl(255),
                ),
            ];
            for (what, p) in nd {
                denied.push(on_link.mark(&format!("{fam} {what}, on link"), p).unwrap());
            }
            let nd = [
                (
                    "NS to admin from the gateway's link-local address",
                    Packet::icmp(gw_ll, adm, 135, 0, [0; 4])
                        .with_payload(target)
                        .with_ttl(255),
                ),
                ("RA from the gateway's link-local address", ra(gw_ll)),
            ];
            for (what, p) in nd {
                allowed.push(on_link.mark(&format!("{fam} {what}, on link"), p).unwrap());
            }
            // MLD (a listener report, with its hop-by-hop router alert): built in from a
            // link-local source with hop limit 1, not from a global source.
            let group: IpAddr = "ff02::1:3".parse().unwrap();
            let mld = |src: IpAddr| {
                Packet::icmp(src, "ff02::16".parse().unwrap(), 143, 0, [0, 0, 0, 1])
                    .with_payload([&[4u8, 0, 0, 0][..], &octets(group)].concat())
                    .with_ttl(1)
            };
            let router_alert = |ip| v6_extension(ip, 0, &[0, 5, 2, 0, 0, 1, 0]);
            denied.push(
                on_link
                    .mark_edited(
                        &format!("{fam} MLD report from a global source, on link"),
                        mld(gw_global),
                        router_alert,
                    )
                    .unwrap(),
            );
            allowed.push(
                on_link
                    .mark_edited(
                        &format!("{fam} MLD report from a link-local source, on link"),
                        mld(gw_ll),
                        router_alert,
                    )
                    .unwrap(),
            );
        }
        let allowed: Vec<(&Sniffer, &Sent)> = allowed.iter().map(|s| (&at_admin, s)).collect();
        let denied: Vec<(&Sniffer, &Sent)> = denied.iter().map(|s| (&at_admin, s)).collect();
        check(&format!("{fam} host role on admin"), &allowed, &denied);
        assert!(
            reach(&imaging.ns, Proto::Udp, adm, 514),
            "{fam}: imaging's syslog to admin works"
        );
    }
    agent.stop().expect("stop");
}
