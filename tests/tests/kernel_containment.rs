//! Containment against a hostile host, in the kernel through `BPF_PROG_TEST_RUN`
//! (needs root): ICMP errors as carriers, martian and own-address sources, and
//! link-scoped traffic. Each denial has its positive control next to it; the reason
//! counters say which rule decided. TCP state and the budgets are in
//! `kernel_tcp_budgets`; the gateway-only parts (reverse path, egress of unguarded
//! interfaces) are end-to-end tests (`e2e_adversary*`).
mod support;

use std::net::IpAddr;
use support::{
    containment::*,
    frames::{FrameSpec, L4},
    DROP, PASS,
};

use ward_common::{OwnFilter, Reason};

#[test]
fn icmp_errors_are_related_only_going_back_to_the_quoted_sender_and_small() {
    let t = loaded("icmp-carrier");
    for (img, pacs, billing, unreach, big) in [
        (IMAGING4, PACS4, BILLING4, 3u8, 600usize),
        (IMAGING6, PACS6, BILLING6, 1u8, 1300usize),
    ] {
        let syn = FrameSpec::new(img, pacs, L4::Tcp(40000, 104));
        assert_eq!(t.xdp(&syn.build()), PASS, "imaging -> pacs:104 opens");
        let reply = syn.reply();

        // The carrier: imaging -> billing, quoting the pacs connection, 1,000 bytes.
        for quoted in [&reply, &syn] {
            let mut carrier = FrameSpec::new(img, billing, L4::Icmp(unreach, 1, 0));
            carrier.payload = quote(quoted);
            carrier.payload.extend_from_slice(&[0x55; 1000]);
            expect(
                &t,
                &carrier,
                DROP,
                Reason::NoRule,
                "error to billing quoting the pacs flow",
            );
        }
        // A genuine error, back to the quoted packet's sender: related.
        let mut genuine = FrameSpec::new(pacs, img, L4::Icmp(unreach, 1, 0));
        genuine.payload = quote(&syn);
        expect(&t, &genuine, PASS, Reason::Related, "error back to imaging");
        // The same error, oversized: judged as plain pacs -> imaging ICMP, no rule.
        let mut oversized = genuine.clone();
        oversized.payload.extend_from_slice(&vec![0x55; big]);
        expect(&t, &oversized, DROP, Reason::NoRule, "oversized error");
        // An unrelated error where a rule allows ICMP (imaging -> pacs): the rule decides.
        let mut ruled = FrameSpec::new(img, pacs, L4::Icmp(unreach, 1, 0));
        ruled.payload = quote(&FrameSpec::new(billing, img, L4::Udp(53, 40001)));
        expect(
            &t,
            &ruled,
            PASS,
            Reason::AllowedByRule,
            "imaging -> pacs icmp by rule",
        );
    }
}

#[test]
fn martian_and_own_sources_are_spoofed() {
    let mut t = loaded("martians");
    // Positive controls: `everything` may reach pacs:80; imaging may reach anything:8080.
    for (src, dst) in [("198.18.30.1", PACS4), ("2001:db8:30::1", PACS6)] {
        let ok = FrameSpec::new(src, dst, L4::Tcp(40000, 80));
        expect(
            &t,
            &ok,
            PASS,
            Reason::AllowedByRule,
            "a world source to pacs:80",
        );
    }
    for src in [
        "127.0.0.1",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
    ] {
        let f = FrameSpec::new(src, PACS4, L4::Tcp(40001, 80));
        expect(&t, &f, DROP, Reason::Spoofed, &format!("source {src}"));
    }
    for src in ["::1", "::", "ff02::1", "::ffff:198.18.20.10"] {
        let f = FrameSpec::new(src, PACS6, L4::Tcp(40002, 80));
        expect(&t, &f, DROP, Reason::Spoofed, &format!("source {src}"));
    }
    for dst in ["127.0.0.1", "::1"] {
        let src = if dst.contains(':') {
            IMAGING6
        } else {
            IMAGING4
        };
        let f = FrameSpec::new(src, dst, L4::Tcp(40003, 8080));
        expect(&t, &f, DROP, Reason::Spoofed, &format!("destination {dst}"));
    }
    // Duplicate address detection uses the unspecified source.
    let dad = FrameSpec::new("::", "ff02::1:ff00:10", L4::Icmp(135, 0, 0)).hops(255);
    expect(&t, &dad, PASS, Reason::NeighbourDiscovery, "DAD from ::");
    // This host is pacs: its own addresses never arrive as a source.
    for (pacs, img) in [(PACS4, IMAGING4), (PACS6, IMAGING6)] {
        own(&mut t, pacs);
        let forged = FrameSpec::new(pacs, img, L4::Tcp(40004, 8080));
        expect(&t, &forged, DROP, Reason::Spoofed, "own address as source");
        let to_us = FrameSpec::new(img, pacs, L4::Tcp(40005, 104));
        expect(
            &t,
            &to_us,
            PASS,
            Reason::AllowedByRule,
            "imaging -> own address",
        );
    }
}

#[test]
fn neighbour_discovery_and_mld_stay_on_the_link() {
    let mut t = loaded("on-link");
    let nd = |src: &str, dst: &str, ty: u8, hops: u8| {
        FrameSpec::new(src, dst, L4::Icmp(ty, 0, 0)).hops(hops)
    };
    let on_link = Reason::NeighbourDiscovery;
    expect(
        &t,
        &nd("fe80::1", "ff02::1:ff00:10", 135, 255),
        PASS,
        on_link,
        "NS",
    );
    expect(&t, &nd("fe80::1", "fe80::2", 136, 255), PASS, on_link, "NA");
    expect(&t, &nd("fe80::1", "ff02::1", 134, 255), PASS, on_link, "RA");
    let off = Reason::NotOnLink;
    expect(
        &t,
        &nd("fe80::1", "ff02::1:ff00:10", 135, 64),
        DROP,
        off,
        "NS, hop limit 64",
    );
    expect(
        &t,
        &nd(IMAGING6, BILLING6, 135, 255),
        DROP,
        off,
        "NS to billing's global address",
    );
    expect(
        &t,
        &nd(IMAGING6, "ff02::1", 134, 255),
        DROP,
        off,
        "RA from a global source",
    );
    expect(
        &t,
        &nd("fe80::1", BILLING6, 137, 255),
        DROP,
        off,
        "redirect to billing",
    );
    // Unicast neighbour unreachability detection to this host's own address passes.
    own(&mut t, BILLING6);
    expect(
        &t,
        &nd(IMAGING6, BILLING6, 135, 255),
        PASS,
        on_link,
        "NS to own address",
    );
    // The host's own ND leaves with hop limit 255, to any neighbour.
    let out = nd(BILLING6, PACS6, 135, 255).build();
    assert_eq!(t.dp.test_run_tc(&out).unwrap(), TC_OK, "own NS out");
    let out = nd(BILLING6, PACS6, 135, 254).build();
    assert_eq!(
        t.dp.test_run_tc(&out).unwrap(),
        TC_SHOT,
        "NS with hop limit 254 out"
    );

    let built_in = Reason::BuiltIn;
    expect(
        &t,
        &nd("fe80::1", "ff02::16", 143, 1),
        PASS,
        built_in,
        "MLDv2 report",
    );
    expect(
        &t,
        &nd("::", "ff02::16", 143, 1),
        PASS,
        built_in,
        "MLDv2 report from ::",
    );
    expect(
        &t,
        &nd("fe80::1", "ff02::1", 130, 1),
        PASS,
        built_in,
        "MLD query",
    );
    expect(
        &t,
        &nd("fe80::1", "ff02::16", 143, 64),
        DROP,
        off,
        "MLD, hop limit 64",
    );
    expect(
        &t,
        &nd(IMAGING6, "ff02::16", 143, 1),
        DROP,
        off,
        "MLD from a global source",
    );
    expect(
        &t,
        &nd("fe80::1", BILLING6, 131, 1),
        DROP,
        off,
        "MLD to a unicast address",
    );
}

#[test]
fn dhcp_clients_are_built_in_and_nothing_more() {
    let mut t = loaded("dhcp");
    let built_in = Reason::BuiltIn;
    let offer = FrameSpec::new("198.18.30.1", "255.255.255.255", L4::Udp(67, 68));
    expect(&t, &offer, PASS, built_in, "DHCPv4 offer, broadcast");
    let to_billing = FrameSpec::new("198.18.30.1", BILLING4, L4::Udp(67, 68));
    expect(
        &t,
        &to_billing,
        DROP,
        Reason::NoRule,
        "67 -> 68 to another host",
    );
    own(&mut t, BILLING4);
    expect(&t, &to_billing, PASS, built_in, "DHCPv4 ack to own address");
    let wrong_port = FrameSpec::new("198.18.30.1", "255.255.255.255", L4::Udp(68, 67));
    expect(
        &t,
        &wrong_port,
        DROP,
        Reason::NoRule,
        "a client's request arriving",
    );
    let advertise = FrameSpec::new("fe80::1", "fe80::2", L4::Udp(547, 546));
    expect(&t, &advertise, PASS, built_in, "DHCPv6 advertise");
    let to_global = FrameSpec::new("fe80::1", BILLING6, L4::Udp(547, 546));
    expect(
        &t,
        &to_global,
        DROP,
        Reason::NoRule,
        "547 -> 546 to another host",
    );

    let discover = FrameSpec::new("0.0.0.0", "255.255.255.255", L4::Udp(68, 67)).build();
    assert_eq!(
        t.dp.test_run_tc(&discover).unwrap(),
        TC_OK,
        "DHCPv4 discover out"
    );
    let solicit = FrameSpec::new("fe80::2", "ff02::1:2", L4::Udp(546, 547)).build();
    assert_eq!(
        t.dp.test_run_tc(&solicit).unwrap(),
        TC_OK,
        "DHCPv6 solicit out"
    );
    let other = FrameSpec::new("fe80::2", "ff02::1:2", L4::Udp(546, 548)).build();
    assert_eq!(t.dp.test_run_tc(&other).unwrap(), TC_SHOT, "546 -> 548 out");
}

#[test]
fn the_own_address_filter_holds_every_own_address_and_no_load_trusts_it() {
    let mut t = loaded("own-filter");
    // Many own addresses of both families, as a gateway has: every one is spoofed as
    // a source, through the filter the agent writes with them.
    let mine: Vec<String> = (1..=40)
        .map(|i| format!("198.18.21.{i}"))
        .chain((1..=40).map(|i| format!("2001:db8:21::{i:x}")))
        .collect();
    let addrs: Vec<IpAddr> = mine.iter().map(|a| a.parse().unwrap()).collect();
    t.dp.set_host_addrs(&addrs).unwrap();
    for (i, me) in mine.iter().enumerate() {
        let img = if me.contains(':') { IMAGING6 } else { IMAGING4 };
        let forged = FrameSpec::new(me, img, L4::Tcp(41000 + i as u16, 8080));
        expect(&t, &forged, DROP, Reason::Spoofed, "own address as source");
    }
    // A source whose filter bit is clear is not looked up: planted in the table
    // alone, it is not taken for an own address...
    let keys: Vec<_> = mine.iter().map(|a| addr_key(a)).collect();
    let filter = OwnFilter::of(keys.iter().map(|k| (k.family, &k.addr)));
    let stranger = (1..=250)
        .map(|i| format!("198.18.20.{i}"))
        .find(|a| {
            let k = addr_key(a);
            !filter.may_hold(k.family, &k.addr)
        })
        .expect("an imaging address outside the filter");
    plant_own(&mut t, &stranger);
    let probe = FrameSpec::new(&stranger, PACS4, L4::Tcp(42000, 104));
    expect(
        &t,
        &probe,
        PASS,
        Reason::AllowedByRule,
        "filter bit clear: no lookup",
    );
    // ...until a load, which trusts no filter it finds, and the agent's next write.
    t.dp = ward::dataplane::Dataplane::load(t.dir()).expect("load again");
    let probe = FrameSpec::new(&stranger, PACS4, L4::Tcp(42001, 104));
    expect(
        &t,
        &probe,
        DROP,
        Reason::Spoofed,
        "after a load every source is looked up",
    );
    own(&mut t, PACS4);
    let probe = FrameSpec::new(&stranger, PACS4, L4::Tcp(42002, 104));
    expect(
        &t,
        &probe,
        DROP,
        Reason::Spoofed,
        "written with the table it holds",
    );
}
