//! End-to-end tamper and drift on the simulated clinic (root, namespaces, the kernel):
//! a program detached or replaced behind the agent's back is re-attached and alerted on; an
//! interface matching an `interfaces` pattern is enforced on when it appears; a
//! layer-3 device is refused, and named in `interfaces` it stops `ward run` at start.
//! Run with `--test-threads=1`.
use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt,
    path::Path,
    time::{Duration, Instant},
};

mod support;

use aya::programs::{
    links::{FdLink, PinnedLink},
    xdp::XdpLink,
    Xdp,
};
use support::{
    gateway::{clinic_policy, prepare, start_gateway, status, START_TIMEOUT},
    late::Late,
    metrics::scrape,
    run::Run,
    TestDataplane,
};
use ward::events::FlowRecord;
use ward_common::program_names;
use ward_tests::{reach, util, ward_bin, Clinic, Proto, Role, WardAgent};

const METRICS: &str = "127.0.0.1:9469";
/// The agent must have repaired a tampered hook within this.
const REPAIR_LIMIT: Duration = Duration::from_secs(5);

/// Detaches the link pinned at `pin` as an intruder with root would
/// (`BPF_OBJ_GET`, then `BPF_LINK_DETACH`): the pin stays, its program stops running.
fn detach_pinned_link(pin: &Path) {
    const BPF_OBJ_GET: libc::c_long = 7;
    const BPF_LINK_DETACH: libc::c_long = 34;
    let path = CString::new(pin.as_os_str().as_bytes()).expect("pin path");
    // union bpf_attr: `pathname` (u64) first for BPF_OBJ_GET, `link_fd` (u32) for detach.
    let mut get = [0u64; 16];
    get[0] = path.as_ptr() as u64;
    // SAFETY: `get` is a zeroed bpf_attr of the size passed, `path` outlives the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_GET, get.as_mut_ptr(), 128) };
    assert!(
        fd >= 0,
        "BPF_OBJ_GET {}: {}",
        pin.display(),
        std::io::Error::last_os_error()
    );
    let mut detach = [0u32; 32];
    detach[0] = fd as u32;
    // SAFETY: as above; `fd` is ours and closed right after.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_LINK_DETACH, detach.as_mut_ptr(), 128) };
    let err = std::io::Error::last_os_error();
    unsafe { libc::close(fd as libc::c_int) };
    assert_eq!(rc, 0, "BPF_LINK_DETACH {}: {err}", pin.display());
}

/// How many times `pattern` is in the agent's log.
fn count(agent: &WardAgent, pattern: &str) -> usize {
    agent.log().matches(pattern).count()
}

/// Waits until the log holds `pattern` `n` times; returns how long that took.
fn wait_count(agent: &WardAgent, pattern: &str, n: usize, limit: Duration) -> Duration {
    let start = Instant::now();
    while count(agent, pattern) < n {
        assert!(
            start.elapsed() < limit,
            "{pattern:?} not logged {n} times within {limit:?}; the log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

fn tamper_alerts(run: &Run) -> Vec<FlowRecord> {
    run.records()
        .into_iter()
        .filter(|r| r.verdict() == "alert" && r.unmapped.ward.reason == "tamper")
        .collect()
}

#[test]
fn a_detached_program_is_reattached_alerted_on_and_counted() {
    prepare("the tamper end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("tamper");
    let settings = run.settings(&format!("metrics_listen = {METRICS:?}\n"));
    let mut agent = start_gateway(&clinic, &clinic_policy(), &settings);
    let (imaging, billing) = (clinic.host("imaging"), clinic.host("billing"));
    let denied = || !reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443);
    assert!(denied(), "imaging -> billing:443 is denied to begin with");
    let pin =
        |kind: &str, interface: &str| agent.pin_dir().join(format!("link_{kind}_{interface}"));

    // The agent is frozen while both ends of the flow lose their XDP program: the
    // denied flow goes through, so the tampering is real.
    util::signal(agent.pid(), libc::SIGSTOP).expect("SIGSTOP");
    detach_pinned_link(&pin("xdp", "gw-imaging"));
    detach_pinned_link(&pin("xdp", "gw-billing"));
    let open = reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443);
    util::signal(agent.pid(), libc::SIGCONT).expect("SIGCONT");
    assert!(
        open,
        "with both XDP programs detached the denied flow passes"
    );
    let waited = wait_count(&agent, "tamper on gw-billing", 1, REPAIR_LIMIT);
    eprintln!("re-attached {waited:?} after the frozen agent resumed");
    assert!(denied(), "denied again once re-attached");

    // While it runs: XDP and TC of one interface detached, repaired within the limit.
    detach_pinned_link(&pin("xdp", "gw-imaging"));
    detach_pinned_link(&pin("tc", "gw-imaging"));
    let waited = wait_count(&agent, "tamper on gw-imaging", 3, REPAIR_LIMIT);
    eprintln!("re-attached XDP and TC {waited:?} after they were detached");
    assert!(denied(), "denied after the second repair");
    // Replaced: an intruder swaps its own program (a second copy of Ward's, with
    // another id) into the agent's link and keeps the link open, so the agent cannot
    // attach again until the intruder lets go; meanwhile the hook shows NOT attached.
    let mut intruder = TestDataplane::new("intruder");
    let intruder_id = {
        let xdp: &mut Xdp = intruder
            .dp
            .ebpf()
            .program_mut(program_names::XDP_INGRESS)
            .expect("XDP program")
            .try_into()
            .expect("an XDP program");
        let pinned = PinnedLink::from_pin(pin("xdp", "gw-billing")).expect("open the pin");
        let link = XdpLink::try_from(FdLink::from(pinned)).expect("an XDP link");
        xdp.attach_to_link(link).expect("bpf_link_update");
        xdp.info().expect("program info").id()
    };
    let replaced = format!(
        "tamper on gw-billing: the xdp-ingress program was detached or replaced \
         (found program ids [{intruder_id}]); re-attaching failed, retrying"
    );
    wait_count(&agent, &replaced, 1, REPAIR_LIMIT);
    let (text, _) = status(&agent);
    assert!(
        text.contains("gw-billing: xdp-ingress NOT attached, tc-egress attached"),
        "{text}"
    );
    let metrics = scrape(&clinic.gw, METRICS);
    let billing_xdp = "ward_attached{interface=\"gw-billing\",hook=\"xdp-ingress\"}";
    assert_eq!(metrics.get(billing_xdp), Some(&0.0), "{metrics:#?}");
    drop(intruder);
    let waited = wait_count(
        &agent,
        "gw-billing: the xdp-ingress program is re-attached",
        1,
        REPAIR_LIMIT,
    );
    eprintln!("re-attached {waited:?} after the intruder let go");
    assert!(denied(), "denied after the third repair");

    let log = agent.log();
    for line in [
        "tamper on gw-imaging: the xdp-ingress program was detached or replaced (found no program); re-attached",
        "tamper on gw-imaging: the tc-egress program was detached or replaced (found no program); re-attached",
        "tamper on gw-billing: the xdp-ingress program was detached or replaced (found no program); re-attached",
    ] {
        assert!(log.contains(line), "{line:?} not in the log:\n{log}");
    }

    // Five alerts in the event log, counted in the status and the metrics.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tamper_alerts(&run).len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut alerts: Vec<(String, String)> = tamper_alerts(&run)
        .iter()
        .map(|r| {
            (
                r.unmapped.ward.interface.clone(),
                r.unmapped.ward.hook.clone(),
            )
        })
        .collect();
    alerts.sort();
    let expected = [
        ("gw-billing", "ingress"),
        ("gw-billing", "ingress"),
        ("gw-imaging", "egress"),
        ("gw-imaging", "ingress"),
        ("gw-imaging", "ingress"),
    ]
    .map(|(i, h)| (i.to_string(), h.to_string()));
    assert_eq!(alerts, expected, "tamper alerts in the event log");
    let (text, reply) = status(&agent);
    assert_eq!(reply.status.watch.tamper_total, 5, "{text}");
    assert!(reply.status.hooks.iter().all(|h| h.attached), "{text}");
    assert_eq!(reply.status.hooks.len(), 2 * clinic.hosts.len(), "{text}");
    assert!(
        text.contains("tamper      5 hooks found detached or replaced"),
        "{text}"
    );
    let metrics = scrape(&clinic.gw, METRICS);
    assert_eq!(metrics.get("ward_tamper_total"), Some(&5.0), "{metrics:#?}");
    let attached = "ward_attached{interface=\"gw-imaging\",hook=\"xdp-ingress\"}";
    assert_eq!(metrics.get(attached), Some(&1.0), "{metrics:#?}");

    // The re-made links are pinned where the agent looks: they outlive it, and
    // `ward uninstall` finds and removes them.
    agent.stop().expect("stop");
    assert!(denied(), "enforcement outlives the agent");
    agent.uninstall().expect("uninstall");
    assert!(!denied(), "ward uninstall removed the re-made links");
}

#[test]
fn pattern_interfaces_are_enforced_when_they_appear_and_layer3_ones_refused() {
    prepare("the tamper end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("drift");
    let settings = run.settings(&format!("metrics_listen = {METRICS:?}\n"));
    let mut agent = WardAgent::start_configured(
        &ward_bin(),
        &clinic.gw,
        Role::Gateway,
        &["gw-*".to_string()],
        &clinic_policy(),
        &settings,
    )
    .expect("start ward");
    agent
        .wait_for("enforcing generation=1", START_TIMEOUT)
        .expect("ward enforcing");
    let (imaging, billing, pacs, admin) = (
        clinic.host("imaging"),
        clinic.host("billing"),
        clinic.host("pacs"),
        clinic.host("admin"),
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443),
        "the interfaces there at start are attached through the pattern"
    );

    // A new interface matching `gw-*` is attached: what the policy denies from
    // behind it is dropped there, and what it allows gets through.
    let late = Late::create(&clinic, "gw-late");
    let waited = Instant::now();
    agent
        .wait_for("gw-late: attached", Duration::from_secs(5))
        .expect("gw-late attached");
    eprintln!(
        "gw-late attached {:?} after it was configured",
        waited.elapsed()
    );
    assert!(
        reach(&admin.ns, Proto::Tcp, late.v4.into(), 22),
        "admin -> late:22 is allowed (admin may reach any zone on 22)"
    );
    assert!(
        !reach(&late.ns, Proto::Tcp, pacs.v4.into(), 104),
        "world -> pacs:104 is denied"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let dropped_at_late = || {
        run.records().into_iter().any(|r| {
            r.verdict() == "deny"
                && r.src_endpoint.ip == Some(late.v4.into())
                && r.unmapped.ward.interface == "gw-late"
                && r.unmapped.ward.hook == "ingress"
        })
    };
    while !dropped_at_late() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dropped_at_late(), "no denial reported by gw-late's program");
    let (text, _) = status(&agent);
    assert!(
        text.contains("gw-late: xdp-ingress attached, tc-egress attached"),
        "{text}"
    );

    // A tun device matching `gw-*` is refused, loudly.
    clinic
        .gw
        .ip(&["tuntap", "add", "dev", "gw-tun0", "mode", "tun"])
        .expect("tun device");
    let refusal = "interface gw-tun0 refused, not enforced on: link type NONE (ARPHRD 65534) \
                   is not Ethernet: a layer-3 device such as tun or WireGuard has no Ethernet \
                   header for Ward's programs to parse";
    agent
        .wait_for(refusal, Duration::from_secs(5))
        .expect("gw-tun0 refused");
    let (text, reply) = status(&agent);
    assert!(text.contains("gw-tun0: REFUSED, link type NONE"), "{text}");
    let refused: Vec<&str> = reply
        .status
        .watch
        .refused
        .iter()
        .map(|r| r.interface.as_str())
        .collect();
    assert_eq!(refused, ["gw-tun0"]);
    assert!(!reply.status.hooks.iter().any(|h| h.interface == "gw-tun0"));
    let metrics = scrape(&clinic.gw, METRICS);
    assert_eq!(
        metrics.get("ward_interfaces_refused"),
        Some(&1.0),
        "{metrics:#?}"
    );
    assert_eq!(
        count(&agent, "gw-tun0 refused"),
        1,
        "refused once, not at every pass"
    );

    // An interface that goes away is dropped from the attachments.
    clinic
        .gw
        .ip(&["link", "del", "gw-late"])
        .expect("delete gw-late");
    agent
        .wait_for("gw-late: gone", Duration::from_secs(5))
        .expect("gw-late dropped");
    let (text, _) = status(&agent);
    assert!(!text.contains("gw-late"), "{text}");

    // Named in `interfaces`, the tun device stops a second agent at start, in one line.
    let mut named = WardAgent::start_configured(
        &ward_bin(),
        &clinic.gw,
        Role::Gateway,
        &["gw-imaging".to_string(), "gw-tun0".to_string()],
        &clinic_policy(),
        "",
    )
    .expect("start the second ward");
    let error = "ward: error: interface gw-tun0: refused: link type NONE (ARPHRD 65534) is not \
                 Ethernet: a layer-3 device such as tun or WireGuard has no Ethernet header for \
                 Ward's programs to parse; remove it from `interfaces`\n";
    named
        .wait_for(error, Duration::from_secs(10))
        .expect("refused at start");
    let exit = named.stop().expect("the second agent exits");
    assert!(!exit.success(), "ward run must fail: {exit}");
    assert_eq!(
        named.log().matches("ward: error").count(),
        1,
        "{}",
        named.log()
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443),
        "the first agent still enforces"
    );
    drop(late);
}
