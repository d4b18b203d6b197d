//! Containment against a hostile host (issue 14), end to end on the clinic (root,
//! namespaces, the kernel): the adversary is root on the imaging workstation and
//! sends hand-built packets (`ward_tests::raw`); the oracle is what arrives at the
//! destination, sniffed there (AF_PACKET, frames carrying the test's markers only).
//! Each test asserts the denials and a positive control, over IPv4 and IPv6.
//! Run with `--test-threads=1`; `e2e_adversary_limits` holds the rest of the suite:
//! `cargo test -p ward-tests --test e2e_adversary --test e2e_adversary_limits --
//! --test-threads=1`. `WARD_ADVERSARY_GRACE_MS` (default 1000) is how long a denied
//! packet is still waited for once the allowed ones arrived.
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

mod support;

use support::gateway::{clinic_policy, prepare, start_gateway, START_TIMEOUT};
use support::run::Run;
use ward_tests::raw::{
    connect_in, echo, reset, tcp, v6_extension, verdicts, Injector, Packet, Sent, Sniffer,
    ATOMIC_FRAGMENT, PADN_OPTIONS,
};
use ward_tests::{reach, ward_bin, Clinic, Proto, Role, WardAgent};

fn sa(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The link-local IPv6 address of `ifname` in `ns`.
fn link_local(ns: &ward_tests::Netns, ifname: &str) -> IpAddr {
    let out = ns
        .ip(&["-6", "-o", "addr", "show", "dev", ifname, "scope", "link"])
        .expect("ip addr");
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no link-local address on {ifname}: {out}"))
}

/// Panics with every mismatch `verdicts` found, naming `when`.
fn check(when: &str, allowed: &[(&Sniffer, &Sent)], denied: &[(&Sniffer, &Sent)]) {
    let bad = verdicts(allowed, denied);
    assert!(bad.is_empty(), "{when}:\n{}", bad.join("\n"));
}

/// `ip` in `ward quarantine --list`?
fn quarantined(agent: &WardAgent, ip: IpAddr) -> (bool, String) {
    let (ok, list) = agent.cli_outcome(&["quarantine", "--list"]);
    assert!(ok, "ward quarantine --list: {list}");
    (list.lines().any(|l| l.starts_with(&format!("{ip} "))), list)
}

/// ICMP errors: an error sent by imaging to billing quoting imaging's allowed PACS
/// connection (large, or addressed to someone the quoted packet is not from) must not
/// arrive, nor an oversized one from PACS back to imaging; a genuine small error from
/// PACS to imaging about that connection does, and so does an unrelated error from admin
/// (a rule lets admin send ICMP anywhere).
/// Neighbour discovery (NS, RA, redirect) from imaging to billing's global address is
/// never forwarded; ND between the hosts and the gateway keeps working.
#[test]
fn icmp_errors_and_neighbour_discovery_carry_nothing_across_the_gateway() {
    prepare("the adversarial end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let _agent = start_gateway(&clinic, &clinic_policy(), "");
    let (imaging, pacs, billing) = (
        clinic.host("imaging"),
        clinic.host("pacs"),
        clinic.host("billing"),
    );
    let (at_billing, at_imaging, at_pacs) = (
        Sniffer::on(billing).unwrap(),
        Sniffer::on(imaging).unwrap(),
        Sniffer::on(pacs).unwrap(),
    );
    let (from_imaging, from_pacs) = (
        Injector::from_host(&clinic, imaging).unwrap(),
        Injector::from_host(&clinic, pacs).unwrap(),
    );
    let from_admin = Injector::from_host(&clinic, clinic.host("admin")).unwrap();
    for v6 in [false, true] {
        let fam = if v6 { "IPv6" } else { "IPv4" };
        let (img, pcs, bil) = (imaging.addr(v6), pacs.addr(v6), billing.addr(v6));
        // The allowed connection the errors quote (positive control: it works).
        let mut conn = connect_in(&imaging.ns, sa(pcs, 104), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{fam}: imaging -> pacs:104 must work: {e:#}"));
        let local = conn.local_addr().unwrap();
        let out = Packet::tcp(local, sa(pcs, 104), tcp::ACK | tcp::PSH);
        let back = Packet::tcp(sa(pcs, 104), local, tcp::ACK | tcp::PSH);
        // Destination unreachable (host) and "fragmentation needed" / packet too big.
        let (unreach, code, big_kind, big_code) = if v6 { (1, 3, 2, 0) } else { (3, 1, 3, 4) };
        // The next-hop MTU: 576 (IPv4: unused 16 bits, then the MTU), 1280 (IPv6).
        let mtu_rest: [u8; 4] = if v6 {
            1280u32.to_be_bytes()
        } else {
            [0, 0, 0x02, 0x40]
        };
        let carrying = |q: &Packet| {
            let mut b = q.ip();
            b.resize(b.len() + 1000, 0x5a);
            b
        };
        let mut denied = Vec::new();
        let mut denied_pacs = Vec::new();
        let mut send_denied = |what: &str, p: Packet| {
            denied.push(from_imaging.mark(&format!("{fam} {what}"), p).unwrap());
        };
        send_denied(
            "unreachable to billing quoting imaging->pacs, 1000 bytes",
            Packet::icmp(img, bil, unreach, code, [0; 4]).with_payload(carrying(&out)),
        );
        send_denied(
            "unreachable to billing quoting pacs->imaging, 1000 bytes",
            Packet::icmp(img, bil, unreach, code, [0; 4]).with_payload(carrying(&back)),
        );
        send_denied(
            "packet-too-big to billing quoting imaging->pacs, 1000 bytes",
            Packet::icmp(img, bil, big_kind, big_code, mtu_rest).with_payload(carrying(&out)),
        );
        send_denied(
            "small unreachable to billing quoting imaging->pacs",
            Packet::icmp(img, bil, unreach, code, [0; 4]).with_payload(out.ip()),
        );
        if v6 {
            // Target: billing; option: a source link-layer address.
            let mut ns = octets(bil);
            ns.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 0x20]);
            send_denied(
                "neighbour solicitation to billing's global address",
                Packet::icmp(img, bil, 135, 0, [0; 4])
                    .with_payload(ns)
                    .with_ttl(255),
            );
            send_denied(
                "router advertisement to billing's global address",
                Packet::icmp(img, bil, 134, 0, [64, 0, 0x07, 0x08])
                    .with_payload(vec![0u8; 8])
                    .with_ttl(255),
            );
            // Target imaging, destination pacs: "reach pacs through imaging".
            let mut redirect = octets(img);
            redirect.extend_from_slice(&octets(pcs));
            send_denied(
                "redirect to billing's global address",
                Packet::icmp(img, bil, 137, 0, [0; 4])
                    .with_payload(redirect.clone())
                    .with_ttl(255),
            );
            // To PACS, which imaging may send ICMP to: only the ND rule stops these,
            // also behind extension headers.
            let mut ns_pacs = octets(pcs);
            ns_pacs.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 0x20]);
            let ns = Packet::icmp(img, pcs, 135, 0, [0; 4])
                .with_payload(ns_pacs)
                .with_ttl(255);
            let ra = Packet::icmp(img, pcs, 134, 0, [64, 0, 0x07, 0x08])
                .with_payload(vec![0u8; 8])
                .with_ttl(255);
            let rd = Packet::icmp(img, pcs, 137, 0, [0; 4])
                .with_payload(redirect)
                .with_ttl(255);
            type Edit = fn(Vec<u8>) -> Vec<u8>;
            let plain: Edit = |ip| ip;
            let dest_opts: Edit = |ip| v6_extension(ip, 60, &PADN_OPTIONS);
            let atomic: Edit = |ip| v6_extension(ip, 44, &ATOMIC_FRAGMENT);
            for (what, p, edit) in [
                ("neighbour solicitation to pacs", ns.clone(), plain),
                ("router advertisement to pacs", ra, plain),
                ("redirect to pacs", rd, plain),
                (
                    "neighbour solicitation to pacs behind destination options",
                    ns.clone(),
                    dest_opts,
                ),
                (
                    "neighbour solicitation to pacs as an atomic fragment",
                    ns,
                    atomic,
                ),
            ] {
                denied_pacs.push(
                    from_imaging
                        .mark_edited(&format!("{fam} {what}"), p, edit)
                        .unwrap(),
                );
            }
        }
        // An error back to the quoted packet's sender about a tracked connection, but
        // over the RFC size (576 bytes IPv4, 1280 IPv6): not related, and no rule lets
        // pacs send ICMP to imaging.
        let mut oversized = out.ip();
        oversized.resize(oversized.len() + if v6 { 1300 } else { 1000 }, 0x5a);
        let too_big = from_pacs
            .mark(
                &format!("{fam} oversized unreachable from pacs quoting imaging->pacs"),
                Packet::icmp(pcs, img, unreach, code, [0; 4]).with_payload(oversized),
            )
            .unwrap();
        // Positive control: PACS reports an error about imaging's packet, to imaging.
        let genuine = from_pacs
            .mark(
                &format!("{fam} genuine small unreachable from pacs quoting imaging->pacs"),
                Packet::icmp(pcs, img, unreach, code, [0; 4]).with_payload(out.ip()),
            )
            .unwrap();
        let mut denied: Vec<(&Sniffer, &Sent)> = denied.iter().map(|s| (&at_billing, s)).collect();
        denied.push((&at_imaging, &too_big));
        denied.extend(denied_pacs.iter().map(|s| (&at_pacs, s)));
        // Positive control: an unrelated error is judged as ICMP by the policy, and
        // admin may send ICMP anywhere.
        let adm = clinic.host("admin").addr(v6);
        let unrelated = Packet::udp(sa(bil, 5353), sa(adm, 5353)).ip();
        let by_rule = from_admin
            .mark(
                &format!("{fam} unrelated unreachable from admin to billing"),
                Packet::icmp(adm, bil, unreach, code, [0; 4]).with_payload(unrelated),
            )
            .unwrap();
        check(
            fam,
            &[(&at_imaging, &genuine), (&at_billing, &by_rule)],
            &denied,
        );
        echo(&mut conn)
            .unwrap_or_else(|e| panic!("{fam}: the quoted connection still works: {e:#}"));
    }
    // ND between the hosts and the gateway works: caches flushed, then IPv6 flows.
    for ns in [&imaging.ns, &pacs.ns, &clinic.gw] {
        ns.ip(&["-6", "neigh", "flush", "all"])
            .expect("flush neighbours");
    }
    assert!(
        reach(&imaging.ns, Proto::Tcp, pacs.v6.into(), 104),
        "IPv6 imaging -> pacs:104 after the neighbour caches were flushed (ND must work)"
    );
    assert!(
        reach(&imaging.ns, Proto::Icmp, pacs.v6.into(), 0),
        "IPv6 ping imaging -> pacs"
    );
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
            let gw_ll = link_local(&clinic.gw, &admin.gw_if);
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

/// TCP state: an ACK-, FIN- or RST-only segment to an allowed service arrives (a rule
/// allows it) but opens no entry, so PACS cannot then send a SYN or data to that
/// port of imaging; after an allowed connection is reset, PACS cannot open the same
/// 5-tuple backwards. A reply on a live connection arrives (positive control).
#[test]
fn segments_without_syn_open_nothing_and_a_reset_connection_stays_closed() {
    prepare("the adversarial end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let _agent = start_gateway(&clinic, &clinic_policy(), "");
    let (imaging, pacs) = (clinic.host("imaging"), clinic.host("pacs"));
    let (at_imaging, at_pacs) = (Sniffer::on(imaging).unwrap(), Sniffer::on(pacs).unwrap());
    let (from_imaging, from_pacs) = (
        Injector::from_host(&clinic, imaging).unwrap(),
        Injector::from_host(&clinic, pacs).unwrap(),
    );
    for v6 in [false, true] {
        let fam = if v6 { "IPv6" } else { "IPv4" };
        let (img, pcs) = (imaging.addr(v6), pacs.addr(v6));
        let dicom = sa(pcs, 104);
        let live = connect_in(&imaging.ns, dicom, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{fam}: imaging -> pacs:104: {e:#}"));
        let mut arrived = Vec::new();
        let mut denied = Vec::new();
        // (flags, name, whether a rule lets it through: plain ACK, FIN and RST
        // segments pass untracked; what becomes of SYN-ACK and SYN-FIN is not fixed,
        // but neither may open an entry).
        for (i, (flags, name, passes)) in [
            (tcp::ACK, "ACK", true),
            (tcp::FIN | tcp::ACK, "FIN", true),
            (tcp::RST, "RST", true),
            (tcp::SYN | tcp::ACK, "SYN-ACK", false),
            (tcp::SYN | tcp::FIN, "SYN-FIN", false),
        ]
        .into_iter()
        .enumerate()
        {
            let port = 44000 + i as u16 + if v6 { 100 } else { 0 };
            let seg = from_imaging
                .mark(
                    &format!("{fam} {name}-only segment imaging:{port} -> pacs:104"),
                    Packet::tcp(sa(img, port), dicom, flags),
                )
                .unwrap();
            if passes {
                assert_eq!(
                    at_pacs.wait_for(&seg.marker, 1, ward_tests::raw::ARRIVAL),
                    1,
                    "{}: allowed by the rule, it must arrive",
                    seg.what
                );
            } else {
                std::thread::sleep(Duration::from_millis(300));
            }
            arrived.push(seg);
            for (flags, kind) in [(tcp::SYN, "SYN"), (tcp::ACK | tcp::PSH, "data")] {
                denied.push(
                    from_pacs
                        .mark(
                            &format!("{fam} {kind} pacs:104 -> imaging:{port} after a {name}-only segment"),
                            Packet::tcp(dicom, sa(img, port), flags),
                        )
                        .unwrap(),
                );
            }
        }
        // A connection that worked, then reset by imaging.
        let closed = connect_in(&imaging.ns, dicom, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{fam}: imaging -> pacs:104: {e:#}"));
        let port = closed.local_addr().unwrap().port();
        reset(closed);
        std::thread::sleep(Duration::from_millis(300));
        denied.push(
            from_pacs
                .mark(
                    &format!("{fam} SYN pacs:104 -> imaging:{port} after the connection was reset"),
                    Packet::tcp(dicom, sa(img, port), tcp::SYN),
                )
                .unwrap(),
        );
        // Positive controls: imaging may open the reset 5-tuple again (a SYN from the
        // initiator re-opens a closed entry); a segment on the live connection's reply
        // path arrives.
        let reopen = from_imaging
            .mark(
                &format!("{fam} SYN imaging:{port} -> pacs:104 after the reset"),
                Packet::tcp(sa(img, port), dicom, tcp::SYN),
            )
            .unwrap();
        let reply = from_pacs
            .mark(
                &format!("{fam} reply on the live connection"),
                Packet::tcp(dicom, live.local_addr().unwrap(), tcp::ACK),
            )
            .unwrap();
        let denied: Vec<(&Sniffer, &Sent)> = denied.iter().map(|s| (&at_imaging, s)).collect();
        check(
            &format!("{fam} TCP state"),
            &[(&at_imaging, &reply), (&at_pacs, &reopen)],
            &denied,
        );
        let mut live = live;
        echo(&mut live).unwrap_or_else(|e| panic!("{fam}: the live connection still works: {e:#}"));
    }
}
