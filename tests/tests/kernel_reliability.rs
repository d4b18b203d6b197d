//! Reliability in the kernel, through `BPF_PROG_TEST_RUN` (needs root): the failsafe
//! ahead of policy and quarantine, the digest that spares an unchanged policy a
//! rewrite, the refusal of pinned maps with another layout, and the unpinning of the
//! maps an earlier build pinned that this one retired.
mod support;

use std::{ffi::CString, net::IpAddr};

use support::{
    frames::{FrameSpec, L4},
    TestDataplane, DROP, PASS,
};
use ward::dataplane::{Dataplane, DataplaneError, LoadOptions};

/// Nothing reaches the servers over SSH: only the failsafe can let it through.
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
"#;

const FAILSAFE: &str =
    "[failsafe]\nmanagement = [\"198.18.24.0/24\", \"2001:db8:24::/64\"]\ntcp_ports = [22, 2222]\n";

/// TCP flag bits.
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// The frame of `spec` with its TCP flags set to `flags`.
fn tcp(spec: &FrameSpec, flags: u8) -> Vec<u8> {
    let mut frame = spec.build();
    let ip_header = if spec.src.is_ipv6() { 40 } else { 20 };
    frame[14 + ip_header + 13] = flags;
    frame
}

fn hosts(v6: bool) -> (&'static str, &'static str, &'static str) {
    if v6 {
        ("2001:db8:24::10", "2001:db8:21::10", "2001:db8:20::10")
    } else {
        ("198.18.24.10", "198.18.21.10", "198.18.20.10")
    }
}

#[test]
fn failsafe_lets_management_ssh_through_ahead_of_policy_and_quarantine() {
    let mut t = TestDataplane::new("failsafe");
    t.configure(FAILSAFE);
    t.apply_str(POLICY);
    for v6 in [false, true] {
        let (admin, pacs, imaging) = hosts(v6);
        let ssh = FrameSpec::new(admin, pacs, L4::Tcp(40000, 22));
        assert_eq!(t.xdp(&tcp(&ssh, SYN)), PASS, "admin -> pacs:22 (v6 {v6})");
        assert_eq!(
            t.xdp(&tcp(&ssh.reply(), SYN | ACK)),
            PASS,
            "pacs:22 -> admin reply"
        );
        assert_eq!(
            t.dp.test_run_tc(&tcp(&ssh.reply(), ACK)).unwrap(),
            0,
            "the reply leaves through TC egress too (TC_ACT_OK)"
        );
        let second = FrameSpec::new(admin, pacs, L4::Tcp(40001, 2222));
        assert_eq!(t.xdp(&tcp(&second, SYN)), PASS, "the second failsafe port");
        // Denials around it: other port, other source, a SYN from the port.
        let telnet = FrameSpec::new(admin, pacs, L4::Tcp(40002, 23));
        assert_eq!(t.xdp(&tcp(&telnet, SYN)), DROP, "admin -> pacs:23");
        let lateral = FrameSpec::new(imaging, pacs, L4::Tcp(40003, 22));
        assert_eq!(t.xdp(&tcp(&lateral, SYN)), DROP, "imaging -> pacs:22");
        let from_22 = FrameSpec::new(pacs, admin, L4::Tcp(22, 3389));
        assert_eq!(
            t.xdp(&tcp(&from_22, SYN)),
            DROP,
            "a new connection from port 22 to admin is no reply"
        );
        let udp = FrameSpec::new(admin, pacs, L4::Udp(40004, 22));
        assert_eq!(t.xdp(&udp.build()), DROP, "udp/22 is no failsafe");
        // No stateless "reply": an ACK from port 22 of any host to any port of a
        // management host passes only on a connection the management host opened.
        for (from, port) in [(imaging, 3389), (pacs, 40009)] {
            let forged = FrameSpec::new(from, admin, L4::Tcp(22, port));
            assert_eq!(
                t.xdp(&tcp(&forged, ACK)),
                DROP,
                "{from}:22 -> admin:{port} ACK without a failsafe connection"
            );
        }
    }

    // Quarantine does not cut the management path: the admin station itself is
    // quarantined, and still reaches SSH (and nothing else).
    let admin: IpAddr = "198.18.24.10".parse().unwrap();
    t.dp.quarantine(admin, None, "test", "kernel test")
        .expect("quarantine");
    let (a, pacs, _) = hosts(false);
    let ssh = FrameSpec::new(a, pacs, L4::Tcp(40010, 22));
    assert_eq!(t.xdp(&tcp(&ssh, SYN)), PASS, "quarantined admin -> pacs:22");
    let other = FrameSpec::new(a, pacs, L4::Tcp(40011, 104));
    assert_eq!(
        t.xdp(&tcp(&other, SYN)),
        DROP,
        "quarantined admin -> pacs:104"
    );

    // An empty management list removes the failsafe.
    t.configure("[failsafe]\nmanagement = []\n");
    assert_eq!(t.dp.config().unwrap().failsafe_ports, [0; 8]);
    let ssh = FrameSpec::new(a, pacs, L4::Tcp(40012, 22));
    assert_eq!(t.xdp(&tcp(&ssh, SYN)), DROP, "no failsafe configured");
}

#[test]
fn an_unchanged_policy_is_recognised_and_a_changed_one_is_not() {
    let mut t = TestDataplane::new("digest");
    t.configure("");
    let loaded = t.apply_str(POLICY);
    let generation = t.dp.config().unwrap().generation;
    assert_eq!(t.dp.in_force(&loaded.compiled).unwrap(), Some(generation));

    // A second dataplane on the same pins (a restarted agent) sees the same.
    let again = Dataplane::load(t.dir()).expect("load again");
    assert_eq!(again.in_force(&loaded.compiled).unwrap(), Some(generation));
    drop(again);

    let changed = POLICY.replace("tcp = [104]", "tcp = [104, 11112]");
    let other = ward::policy::load_str("changed.toml", &changed).unwrap();
    assert_eq!(t.dp.in_force(&other.compiled).unwrap(), None);
    // The quarantine_allow zones are part of what a slot holds.
    t.configure("[response]\nquarantine_allow = [\"admin\"]\n");
    assert_eq!(t.dp.in_force(&loaded.compiled).unwrap(), None);
}

#[test]
fn pinned_maps_of_another_layout_are_refused_then_replaced_on_request() {
    let t = TestDataplane::new("layout");
    // An earlier build's connection table with a different value size.
    let ct = t.dir().join(ward_common::map_names::CONNTRACK_V6);
    std::fs::remove_file(&ct).expect("unpin WARD_CT6");
    pin_hash_map(&ct, 40, 16, 1024);

    let err = match Dataplane::load(t.dir()) {
        Ok(_) => panic!("a map of another layout was adopted"),
        Err(e) => e,
    };
    assert!(matches!(err, DataplaneError::Incompatible { .. }), "{err}");
    let message = err.to_string();
    for needle in ["WARD_CT6", "value 16 B", "--reset-state", "keep enforcing"] {
        assert!(
            message.contains(needle),
            "`{needle}` missing from: {message}"
        );
    }
    assert!(
        !message.contains("WARD_RULE_RANGES"),
        "only the changed map is named: {message}"
    );

    let options = LoadOptions {
        reset_incompatible: true,
        ..Default::default()
    };
    Dataplane::load_with(t.dir(), &options).expect("load with --reset-state");
    let info = aya::maps::MapInfo::from_pin(&ct).expect("new WARD_CT6 pinned");
    assert_eq!(
        info.value_size() as usize,
        std::mem::size_of::<ward_common::CtValue>()
    );
    Dataplane::load(t.dir()).expect("the replaced maps are adopted as they are");
}

#[test]
fn a_policy_map_replaced_by_reset_state_gets_the_policy_written_again() {
    use ward_common::map_names::{
        HOSTS_V4, HOSTS_V6, NETS_V6, RULE_PAIRS, RULE_RANGES, ZONES_V4, ZONES_V6,
    };
    let maps = [
        ZONES_V4,
        ZONES_V6,
        HOSTS_V4,
        HOSTS_V6,
        NETS_V6,
        RULE_PAIRS,
        RULE_RANGES,
    ];
    // One load to start with and one per replaced map (under TCG each costs seconds):
    // each map is replaced under the dataplane the previous one's reload left.
    let mut t = TestDataplane::new("reset-policy");
    t.configure(FAILSAFE);
    let loaded = t.apply_str(POLICY);
    let mut current: Option<Dataplane> = None;
    for (i, map) in maps.into_iter().enumerate() {
        // Ports of this map's own: a connection an earlier round tracked would pass
        // whatever the maps hold.
        let port = 40020 + 2 * i as u16;
        let (_, pacs, imaging) = hosts([ZONES_V6, HOSTS_V6, NETS_V6].contains(&map));
        let dicom = FrameSpec::new(imaging, pacs, L4::Tcp(port, 104));
        let dp = current.as_ref().unwrap_or(&t.dp);
        assert_eq!(
            dp.test_run_xdp(&tcp(&dicom, SYN), 1).unwrap().0,
            PASS,
            "imaging -> pacs:104 before ({map})"
        );
        // An earlier build's map of another layout, replaced with --reset-state while
        // the configuration (and its slot digests) is kept.
        let path = t.dir().join(map);
        std::fs::remove_file(&path).expect("unpin");
        pin_hash_map(&path, 8, 4, 16);
        let options = LoadOptions {
            reset_incompatible: true,
            ..Default::default()
        };
        let mut fresh = Dataplane::load_with(t.dir(), &options).expect("--reset-state");
        assert_eq!(
            fresh.in_force(&loaded.compiled).unwrap(),
            None,
            "the emptied {map} is not taken for the policy in force"
        );
        fresh
            .apply(&loaded.compiled)
            .expect("the policy written again");
        assert!(fresh.in_force(&loaded.compiled).unwrap().is_some());
        let replies = FrameSpec::new(imaging, pacs, L4::Tcp(port + 1, 104));
        assert_eq!(
            fresh.test_run_xdp(&tcp(&replies, SYN), 1).unwrap().0,
            PASS,
            "imaging -> pacs:104 after the rewrite ({map})"
        );
        current = Some(fresh);
    }
}

#[test]
fn a_map_an_earlier_build_pinned_and_this_one_retired_is_unpinned_at_load() {
    let mut t = TestDataplane::new("retired");
    let loaded = t.apply_str(POLICY);
    // The rule trie of the build before the rule tables, left pinned by its agent.
    let trie = t.dir().join("WARD_RULES");
    pin_hash_map(&trie, 12, 4, 16);
    assert!(trie.exists());
    let dp = Dataplane::load(t.dir()).expect("load beside the retired map");
    assert!(!trie.exists(), "the retired map is still pinned");
    // Nothing else was touched: the policy in force is still recognised, and enforced.
    assert!(dp.in_force(&loaded.compiled).expect("in_force").is_some());
    let (_, pacs, imaging) = hosts(false);
    let dicom = FrameSpec::new(imaging, pacs, L4::Tcp(40030, 104));
    let verdict =
        |dp: &Dataplane, spec: &FrameSpec| dp.test_run_xdp(&tcp(spec, SYN), 1).expect("run").0;
    assert_eq!(verdict(&dp, &dicom), PASS, "imaging -> pacs:104");
    assert_eq!(
        verdict(&dp, &dicom.reply()),
        DROP,
        "pacs -> imaging: no rule"
    );
    // A load without any retired map left is quiet and changes nothing.
    drop(dp);
    Dataplane::load(t.dir()).expect("a second load");
    assert!(!trie.exists());
}

/// Creates a `BPF_MAP_TYPE_HASH` with these sizes and pins it at `path` (raw `bpf(2)`:
/// aya creates maps only from an object's definitions).
fn pin_hash_map(path: &std::path::Path, key_size: u32, value_size: u32, max_entries: u32) {
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_OBJ_PIN: libc::c_long = 6;
    const BPF_MAP_TYPE_HASH: u32 = 1;
    // bpf_attr for BPF_MAP_CREATE starts with these four u32 fields; the rest is zero.
    let mut create = [0u8; 128];
    for (i, v) in [BPF_MAP_TYPE_HASH, key_size, value_size, max_entries]
        .iter()
        .enumerate()
    {
        create[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_MAP_CREATE, create.as_ptr(), 128u32) };
    assert!(
        fd >= 0,
        "BPF_MAP_CREATE: {}",
        std::io::Error::last_os_error()
    );
    // bpf_attr for BPF_OBJ_PIN: u64 pathname, u32 bpf_fd.
    let name = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut pin = [0u8; 128];
    pin[0..8].copy_from_slice(&(name.as_ptr() as u64).to_ne_bytes());
    pin[8..12].copy_from_slice(&(fd as u32).to_ne_bytes());
    let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_PIN, pin.as_ptr(), 128u32) };
    assert_eq!(rc, 0, "BPF_OBJ_PIN: {}", std::io::Error::last_os_error());
    unsafe { libc::close(fd as i32) };
}
