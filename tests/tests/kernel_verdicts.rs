//! Kernel verdicts on crafted frames, through `BPF_PROG_TEST_RUN` (needs root).
mod support;

use support::{
    frames::{FrameSpec, L4},
    TestDataplane, DROP, PASS,
};

const POLICY: &str = r#"
[zones.imaging]
cidrs = ["198.18.20.0/24", "2001:db8:20::/64"]
[zones.pacs]
cidrs = ["198.18.21.0/24", "2001:db8:21::/64"]
[zones.billing]
cidrs = ["198.18.23.0/24", "2001:db8:23::/64"]

[[allow]]
from = "imaging"
to = "pacs"
tcp = [104, "11112-11115"]
udp = [514]
icmp = true
"#;

const IMAGING4: &str = "198.18.20.10";
const PACS4: &str = "198.18.21.10";
const BILLING4: &str = "198.18.23.10";
const IMAGING6: &str = "2001:db8:20::10";
const PACS6: &str = "2001:db8:21::10";

fn loaded(tag: &str) -> TestDataplane {
    let mut t = TestDataplane::new(tag);
    t.apply_str(POLICY);
    t
}

#[test]
fn allowed_flows_pass_with_replies_and_others_drop() {
    let t = loaded("flows");
    for (img, pacs) in [(IMAGING4, PACS4), (IMAGING6, PACS6)] {
        for (i, l4) in [
            L4::Tcp(40000, 104),
            L4::Tcp(40001, 11113),
            L4::Udp(40002, 514),
        ]
        .into_iter()
        .enumerate()
        {
            let f = FrameSpec::new(img, pacs, l4);
            assert_eq!(t.xdp(&f.build()), PASS, "case {i} {img}->{pacs} {l4:?}");
            assert_eq!(
                t.xdp(&f.reply().build()),
                PASS,
                "reply of {img}->{pacs} {l4:?}"
            );
        }
        let icmp = if img.contains(':') { 128 } else { 8 };
        let echo = FrameSpec::new(img, pacs, L4::Icmp(icmp, 0, 7));
        assert_eq!(t.xdp(&echo.build()), PASS, "echo {img}->{pacs}");
        assert_eq!(
            t.xdp(&echo.reply().build()),
            PASS,
            "echo reply {pacs}->{img}"
        );
        // Reverse initiation: pacs opens a connection to imaging.
        assert_eq!(
            t.xdp(&FrameSpec::new(pacs, img, L4::Tcp(41000, 104)).build()),
            DROP
        );
        assert_eq!(
            t.xdp(&FrameSpec::new(pacs, img, L4::Icmp(icmp, 0, 9)).build()),
            DROP
        );
        // Ports outside the rule.
        for port in [103, 105, 11111, 11116, 443] {
            assert_eq!(
                t.xdp(&FrameSpec::new(img, pacs, L4::Tcp(40010, port)).build()),
                DROP,
                "tcp/{port}"
            );
        }
        assert_eq!(
            t.xdp(&FrameSpec::new(img, pacs, L4::Udp(40011, 104)).build()),
            DROP,
            "udp/104"
        );
        // An echo reply nobody asked for.
        let reply_type = if img.contains(':') { 129 } else { 0 };
        assert_eq!(
            t.xdp(&FrameSpec::new(img, pacs, L4::Icmp(reply_type, 0, 99)).build()),
            DROP
        );
    }
    assert_eq!(
        t.xdp(&FrameSpec::new(IMAGING4, BILLING4, L4::Tcp(40000, 443)).build()),
        DROP
    );
    assert_eq!(
        t.xdp(&FrameSpec::new(IMAGING4, "198.51.100.1", L4::Tcp(40000, 104)).build()),
        DROP,
        "world"
    );
    // Intra-zone traffic is not allowed unless a rule says so.
    assert_eq!(
        t.xdp(&FrameSpec::new(IMAGING4, "198.18.20.11", L4::Tcp(40000, 104)).build()),
        DROP
    );
}

#[test]
fn vlan_tags_and_ip_options_are_parsed() {
    let t = loaded("vlan");
    for vlans in [vec![10], vec![10, 20]] {
        let mut f = FrameSpec::new(IMAGING4, PACS4, L4::Tcp(40000, 104));
        f.vlans = vlans.clone();
        assert_eq!(t.xdp(&f.build()), PASS, "vlans {vlans:?}");
        let mut denied = FrameSpec::new(IMAGING4, BILLING4, L4::Tcp(40000, 104));
        denied.vlans = vlans.clone();
        assert_eq!(t.xdp(&denied.build()), DROP, "vlans {vlans:?} denied");
    }
    let mut three = FrameSpec::new(IMAGING4, PACS4, L4::Tcp(40001, 104));
    three.vlans = vec![1, 2, 3];
    assert_eq!(t.xdp(&three.build()), DROP, "three VLAN tags");

    let mut opts = FrameSpec::new(IMAGING4, PACS4, L4::Tcp(40002, 104));
    opts.ipv4_options = vec![1, 1, 1, 0, 0x94, 4, 0, 0];
    assert_eq!(t.xdp(&opts.build()), PASS, "IPv4 options");
    let mut opts_denied = FrameSpec::new(IMAGING4, BILLING4, L4::Tcp(40002, 104));
    opts_denied.ipv4_options = vec![1, 1, 1, 0];
    assert_eq!(t.xdp(&opts_denied.build()), DROP);
}

#[test]
fn ipv6_extension_headers_are_walked_and_bounded() {
    let t = loaded("ext");
    let hop = (0u8, vec![0u8; 7]);
    let dst = (60u8, vec![0u8; 7]);
    let mut f = FrameSpec::new(IMAGING6, PACS6, L4::Tcp(40000, 104));
    f.ipv6_ext = vec![hop.clone(), dst.clone()];
    assert_eq!(t.xdp(&f.build()), PASS, "hop-by-hop + destination options");
    let mut denied = FrameSpec::new(IMAGING6, PACS6, L4::Tcp(40000, 443));
    denied.ipv6_ext = vec![hop.clone()];
    assert_eq!(t.xdp(&denied.build()), DROP);
    let mut six = FrameSpec::new(IMAGING6, PACS6, L4::Tcp(40001, 104));
    six.ipv6_ext = vec![dst.clone(); 6];
    assert_eq!(t.xdp(&six.build()), PASS, "six extension headers");
    let mut seven = FrameSpec::new(IMAGING6, PACS6, L4::Tcp(40002, 104));
    seven.ipv6_ext = vec![dst.clone(); 7];
    assert_eq!(t.xdp(&seven.build()), DROP, "seven extension headers");
    let mut overlong = FrameSpec::new(IMAGING6, PACS6, L4::Tcp(40003, 104));
    overlong.ipv6_ext = vec![(60, vec![200, 0, 0, 0, 0, 0, 0])];
    assert_eq!(
        t.xdp(&overlong.build()),
        DROP,
        "extension header longer than the packet"
    );
}

#[test]
fn fragments_follow_their_first_fragment() {
    let t = loaded("frag");
    // IPv4: a non-first fragment alone is dropped; after an allowed first, it passes.
    let mut rest = FrameSpec::new(IMAGING4, PACS4, L4::Udp(0, 0));
    rest.ipv4_frag = Some((3, false, 0x1234));
    assert_eq!(t.xdp(&rest.build()), DROP, "orphan fragment");
    let mut first = FrameSpec::new(IMAGING4, PACS4, L4::Udp(40000, 514));
    first.ipv4_frag = Some((0, true, 0x1234));
    assert_eq!(t.xdp(&first.build()), PASS, "first fragment");
    assert_eq!(t.xdp(&rest.build()), PASS, "fragment of an allowed packet");
    let mut denied_first = FrameSpec::new(IMAGING4, BILLING4, L4::Udp(40000, 514));
    denied_first.ipv4_frag = Some((0, true, 0x4321));
    assert_eq!(t.xdp(&denied_first.build()), DROP);
    let mut denied_rest = FrameSpec::new(IMAGING4, BILLING4, L4::Udp(0, 0));
    denied_rest.ipv4_frag = Some((3, false, 0x4321));
    assert_eq!(
        t.xdp(&denied_rest.build()),
        DROP,
        "fragment of a denied packet"
    );

    // IPv6 fragment header: next header UDP (17), id 0x77.
    let frag = |offset: u16, more: bool| {
        let field = (offset << 3) | u16::from(more);
        let f = field.to_be_bytes();
        (44u8, vec![0, f[0], f[1], 0, 0, 0, 0x77])
    };
    let mut rest6 = FrameSpec::new(IMAGING6, PACS6, L4::Udp(0, 0));
    rest6.ipv6_ext = vec![frag(10, false)];
    assert_eq!(t.xdp(&rest6.build()), DROP, "orphan IPv6 fragment");
    let mut first6 = FrameSpec::new(IMAGING6, PACS6, L4::Udp(40000, 514));
    first6.ipv6_ext = vec![frag(0, true)];
    assert_eq!(t.xdp(&first6.build()), PASS, "first IPv6 fragment");
    assert_eq!(
        t.xdp(&rest6.build()),
        PASS,
        "IPv6 fragment of an allowed packet"
    );
}

#[test]
fn truncated_and_malformed_frames_drop_and_non_ip_passes() {
    let t = loaded("malformed");
    for spec in [
        FrameSpec::new(IMAGING4, PACS4, L4::Tcp(40000, 104)),
        FrameSpec::new(IMAGING6, PACS6, L4::Udp(40000, 514)),
        FrameSpec::new(IMAGING4, PACS4, L4::Icmp(8, 0, 1)),
    ] {
        let full = spec.build();
        // BPF_PROG_TEST_RUN refuses XDP input shorter than an Ethernet header.
        for len in 14..full.len() {
            assert_eq!(
                t.xdp(&full[..len]),
                DROP,
                "{spec:?} truncated to {len} bytes"
            );
        }
    }
    let good = FrameSpec::new(IMAGING4, PACS4, L4::Tcp(40000, 104)).build();
    let mut bad_version = good.clone();
    bad_version[14] = 0x55;
    assert_eq!(t.xdp(&bad_version), DROP, "IPv4 version 5");
    let mut short_ihl = good.clone();
    short_ihl[14] = 0x44;
    assert_eq!(t.xdp(&short_ihl), DROP, "IHL 4");
    let mut long_total = good.clone();
    long_total[16..18].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(t.xdp(&long_total), DROP, "total length beyond the frame");
    let mut bad_doff = good.clone();
    bad_doff[14 + 20 + 12] = 0x40;
    assert_eq!(t.xdp(&bad_doff), DROP, "TCP data offset 4");
    let mut padded = good.clone();
    padded.extend_from_slice(&[0; 6]);
    assert_eq!(t.xdp(&padded), PASS, "Ethernet padding after the IP packet");

    let mut arp = vec![0xff; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    assert_eq!(t.xdp(&arp), PASS, "ARP");
    let ns = FrameSpec::new("fe80::1", "ff02::1:ff00:10", L4::Icmp(135, 0, 0)).hops(255);
    assert_eq!(t.xdp(&ns.build()), PASS, "neighbour solicitation");
}

#[test]
fn icmp_errors_pass_only_for_tracked_connections() {
    let t = loaded("icmp");
    for (img, pacs, unreach) in [(IMAGING4, PACS4, 3u8), (IMAGING6, PACS6, 1u8)] {
        let syn = FrameSpec::new(img, pacs, L4::Tcp(40000, 104));
        assert_eq!(t.xdp(&syn.build()), PASS);
        let quote = |f: &FrameSpec| {
            let p = f.ip_packet();
            let hlen = if img.contains(':') { 40 } else { 20 };
            p[..hlen + 8].to_vec()
        };
        let mut error = FrameSpec::new(pacs, img, L4::Icmp(unreach, 1, 0));
        error.payload = quote(&syn);
        assert_eq!(
            t.xdp(&error.build()),
            PASS,
            "error about a tracked connection"
        );
        let untracked = FrameSpec::new(img, pacs, L4::Tcp(40999, 104));
        let mut stray = FrameSpec::new(pacs, img, L4::Icmp(unreach, 1, 0));
        stray.payload = quote(&untracked);
        assert_eq!(
            t.xdp(&stray.build()),
            DROP,
            "error about an untracked connection"
        );
        let mut cut = error.clone();
        cut.payload.truncate(cut.payload.len() - 1);
        assert_eq!(t.xdp(&cut.build()), DROP, "quoted packet cut short");
    }
}

#[test]
fn no_policy_denies_ip_and_reload_revokes_or_keeps_connections() {
    let mut t = TestDataplane::new("reload");
    let syn = FrameSpec::new(IMAGING4, PACS4, L4::Tcp(40000, 104));
    assert_eq!(t.xdp(&syn.build()), DROP, "no policy loaded yet");
    let mut arp = vec![0xff; 12];
    arp.extend_from_slice(&[0x08, 0x06, 0, 0]);
    assert_eq!(t.xdp(&arp), PASS, "ARP without a policy");

    t.apply_str(POLICY);
    let dicom = FrameSpec::new(IMAGING4, PACS4, L4::Tcp(40001, 11112));
    assert_eq!(t.xdp(&syn.build()), PASS);
    assert_eq!(t.xdp(&dicom.build()), PASS);
    // New policy: port 104 still allowed, the 11112-11115 range is gone.
    t.apply_str(&POLICY.replace(r#"tcp = [104, "11112-11115"]"#, "tcp = [104]"));
    assert_eq!(
        t.xdp(&syn.reply().build()),
        PASS,
        "still-allowed connection survives the reload"
    );
    assert_eq!(
        t.xdp(&dicom.reply().build()),
        DROP,
        "revoked connection stops"
    );
    assert_eq!(t.xdp(&dicom.build()), DROP, "and stays stopped");
    assert_eq!(
        t.xdp(&FrameSpec::new(IMAGING4, PACS4, L4::Tcp(40002, 11112)).build()),
        DROP
    );
}

#[test]
fn tc_egress_judges_like_xdp() {
    let t = loaded("tc");
    let allowed = FrameSpec::new(IMAGING4, PACS4, L4::Tcp(40000, 104));
    assert_eq!(t.dp.test_run_tc(&allowed.build()).unwrap(), 0, "TC_ACT_OK");
    assert_eq!(
        t.xdp(&allowed.reply().build()),
        PASS,
        "reply of a flow opened on egress"
    );
    let denied = FrameSpec::new(IMAGING4, BILLING4, L4::Tcp(40000, 104));
    assert_eq!(t.dp.test_run_tc(&denied.build()).unwrap(), 2, "TC_ACT_SHOT");
}
