//! The quarantine table in the kernel, through `BPF_PROG_TEST_RUN` (needs root).
mod support;

use std::{net::IpAddr, time::Duration};

use support::{
    frames::{FrameSpec, L4},
    TestDataplane, DROP, PASS,
};

const POLICY: &str = r#"
[zones.imaging]
cidrs = ["198.18.20.0/24", "2001:db8:20::/64"]
[zones.pacs]
cidrs = ["198.18.21.0/24", "2001:db8:21::/64"]
[zones.admin]
cidrs = ["198.18.24.0/24", "2001:db8:24::/64"]

[[allow]]
from = "imaging"
to = "pacs"
tcp = [104]

[[allow]]
from = "admin"
to = "any"
tcp = [22]
"#;

fn loaded(tag: &str) -> TestDataplane {
    let mut t = TestDataplane::new(tag);
    t.configure("[response]\nquarantine_allow = [\"admin\"]\n");
    t.apply_str(POLICY);
    t
}

#[test]
fn quarantine_cuts_established_flows_both_ways_but_not_the_allowed_zones() {
    let mut t = loaded("quarantine");
    for (imaging, pacs, admin) in [
        ("198.18.20.10", "198.18.21.10", "198.18.24.10"),
        ("2001:db8:20::10", "2001:db8:21::10", "2001:db8:24::10"),
    ] {
        let dicom = FrameSpec::new(imaging, pacs, L4::Tcp(40000, 104));
        assert_eq!(t.xdp(&dicom.build()), PASS);
        assert_eq!(t.xdp(&dicom.reply().build()), PASS);

        let ip: IpAddr = imaging.parse().unwrap();
        let entry =
            t.dp.quarantine(ip, None, "test", "kernel test")
                .expect("quarantine");
        assert_eq!(
            (
                entry.ip,
                entry.reason.as_str(),
                entry.by.as_str(),
                entry.expires
            ),
            (ip, "test", "kernel test", None)
        );
        assert_eq!(t.dp.config().unwrap().quarantined, 1);

        assert_eq!(
            t.xdp(&dicom.build()),
            DROP,
            "established flow from the quarantined host"
        );
        assert_eq!(t.xdp(&dicom.reply().build()), DROP, "and towards it");
        let ssh = FrameSpec::new(admin, imaging, L4::Tcp(41000, 22));
        assert_eq!(t.xdp(&ssh.build()), PASS, "admin may still reach it");
        assert_eq!(t.xdp(&ssh.reply().build()), PASS, "and it may answer admin");
        let to_admin = FrameSpec::new(imaging, admin, L4::Tcp(42000, 443));
        assert_eq!(
            t.xdp(&to_admin.build()),
            DROP,
            "the policy still applies with admin"
        );

        t.dp.release(ip).expect("release");
        assert_eq!(t.dp.config().unwrap().quarantined, 0);
        assert_eq!(
            t.xdp(&dicom.build()),
            PASS,
            "released: the connection works again"
        );
        assert!(t.dp.release(ip).is_err(), "releasing twice is an error");
    }
}

#[test]
fn an_expired_quarantine_stops_in_the_kernel_without_the_agent() {
    let mut t = loaded("expiry");
    let ip: IpAddr = "198.18.20.10".parse().unwrap();
    let dicom = FrameSpec::new("198.18.20.10", "198.18.21.10", L4::Tcp(40000, 104));
    t.dp.quarantine(ip, Some(Duration::from_millis(300)), "short", "test")
        .expect("quarantine");
    assert_eq!(t.xdp(&dicom.build()), DROP);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        t.xdp(&dicom.build()),
        PASS,
        "the kernel ignores an expired entry"
    );
    assert_eq!(
        t.dp.quarantines().unwrap().len(),
        1,
        "until the agent sweeps it"
    );
    let expired = t.dp.expire().unwrap();
    assert_eq!(expired.len(), 1);
    assert!(t.dp.quarantines().unwrap().is_empty());
}
