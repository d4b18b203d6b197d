//! End-to-end reliability on the simulated clinic (root, namespaces, the kernel): a
//! killed or stopped agent leaves enforcement in place, a new agent adopts its pinned
//! links and maps without a gap (and without rewriting an unchanged policy), only
//! `ward uninstall` (or `--detach-on-exit`) removes enforcement, a commit-confirmed
//! policy is rolled back unless confirmed, and the failsafe keeps SSH open to the
//! management zone whatever the policy says. Run with `--test-threads=1`.
use std::time::Duration;

mod support;

use support::{
    gateway::{clinic_policy, prepare, start_gateway, START_TIMEOUT},
    run::Run,
};
use ward_tests::{matrix, reach, Clinic, Hold, Proto, WardAgent};

/// (link id, program id) of the pinned link `name` in the agent's pin directory.
fn link(agent: &WardAgent, name: &str) -> (u32, u32) {
    use aya::programs::links::{FdLink, PinnedLink};
    let pinned = PinnedLink::from_pin(agent.pin_dir().join(name))
        .unwrap_or_else(|e| panic!("pinned link {name}: {e}"));
    let info = FdLink::from(pinned).info().expect("link info");
    (info.id(), info.program_id())
}

/// Whether this kernel has TCX links (6.6 and later); below, the egress classifier is
/// a netlink filter on a clsact qdisc, with no link to pin.
fn tcx_kernel() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 6)
}

/// The clinic policy without the rules from `from` to `to`.
fn without(policy: &str, from: &str, to: &str) -> String {
    matrix::remove_rules(policy, from, to)
        .expect("edit policy")
        .0
}

/// `ward ARGS` against the agent; its stdout, or a panic with its output.
fn ward(agent: &WardAgent, args: &[&str]) -> String {
    let out = agent.cli(args).expect("run ward");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ward {args:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// `rollbacks_total` from `ward status --json`.
fn rollbacks(agent: &WardAgent) -> u64 {
    let json: serde_json::Value =
        serde_json::from_str(&ward(agent, &["status", "--json"])).expect("status JSON");
    json["status"]["rollbacks_total"]
        .as_u64()
        .expect("rollbacks_total")
}

#[test]
fn enforcement_outlives_the_agent_until_ward_uninstall() {
    prepare("the reliability end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("outlives");
    let original = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    let policy = run.policy(&original);
    let mut agent = start_gateway(&clinic, &policy, "");
    let (imaging, pacs, billing) = (
        clinic.host("imaging"),
        clinic.host("pacs"),
        clinic.host("billing"),
    );
    let xdp_link = format!("link_xdp_{}", imaging.gw_if);
    let tc_link = format!("link_tc_{}", imaging.gw_if);
    let tcx = tcx_kernel();
    let before = (link(&agent, &xdp_link), tcx.then(|| link(&agent, &tc_link)));
    let mut held = Hold::start(&imaging.ns, pacs.v4.into(), 104, 100, 120_000).expect("hold");

    // kill -9: the pinned programs keep enforcing the last policy.
    agent.crash().expect("kill -9");
    assert!(
        !reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443),
        "denied stays denied without the agent"
    );
    assert!(
        !reach(&imaging.ns, Proto::Udp, billing.v6.into(), 514),
        "over IPv6 too"
    );
    assert!(
        reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "allowed stays allowed without the agent"
    );
    assert!(
        held.running(),
        "the open DICOM connection survives the crash"
    );

    // A new agent (a new build of the programs, as an upgrade brings) replaces the
    // programs inside the same links: one bpf_link_update each, no gap. The unchanged
    // policy stays as it is.
    agent.respawn().expect("respawn");
    agent
        .wait_for("enforcing generation=1", START_TIMEOUT)
        .expect("ward enforcing again");
    let log = agent.log();
    for said in [
        "adopting the XDP link",
        "policy unchanged since the last agent (generation 1); nothing rewritten",
    ] {
        assert!(log.contains(said), "`{said}` missing from the log:\n{log}");
    }
    let after = (link(&agent, &xdp_link), tcx.then(|| link(&agent, &tc_link)));
    assert_eq!(after.0 .0, before.0 .0, "the XDP link is the same link");
    assert_ne!(after.0 .1, before.0 .1, "with the new program in it");
    match (before.1, after.1) {
        (Some(before), Some(after)) => {
            assert_eq!(after.0, before.0, "the TC link is the same link");
            assert_ne!(after.1, before.1, "with the new program in it");
        }
        // Below 6.6: the netlink classifier is replaced in place.
        _ => assert!(
            log.contains("adopting the TC classifier left by an earlier agent"),
            "the clsact classifier was not adopted:\n{log}"
        ),
    }
    assert!(!reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443));
    assert!(reach(&imaging.ns, Proto::Tcp, pacs.v6.into(), 104));
    assert!(held.running(), "the open connection survives the upgrade");

    // SIGTERM: the agent goes, enforcement stays.
    agent.stop().expect("stop");
    assert!(
        agent.log().contains("enforcement stays on"),
        "{}",
        agent.log()
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443),
        "still denied after SIGTERM"
    );
    assert!(reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104));

    // A changed policy at the next start is swapped in atomically.
    std::fs::write(&policy, without(&original, "imaging", "pacs")).expect("edit policy");
    agent.respawn().expect("respawn");
    agent
        .wait_for("enforcing generation=2", START_TIMEOUT)
        .expect("the changed policy in force");
    assert!(!reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 11112));
    let cut = held
        .finish(Duration::from_secs(10))
        .expect_err("the removed rule cuts the held DICOM connection");
    assert!(cut.to_string().contains("failed ("), "{cut:#}");

    // `ward uninstall` refuses while the agent runs, then removes enforcement.
    let refused = agent.uninstall().expect_err("uninstall while running");
    assert!(
        refused.to_string().contains("the agent is running"),
        "{refused:#}"
    );
    agent.stop().expect("stop");
    let said = agent.uninstall().expect("uninstall");
    assert!(
        said.contains("Ward no longer enforces on") && said.contains(&imaging.gw_if),
        "{said}"
    );
    assert!(
        !agent.pin_dir().exists(),
        "the pinned maps are gone after uninstall"
    );
    assert!(
        reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443),
        "open after uninstall"
    );
    assert!(reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104));
}

#[test]
fn detach_on_exit_removes_enforcement_when_the_agent_stops() {
    prepare("the reliability end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let mut agent = start_gateway(&clinic, &clinic_policy(), "");
    let (imaging, billing) = (clinic.host("imaging"), clinic.host("billing"));
    agent.stop().expect("stop");
    agent.set_run_args(&["--detach-on-exit"]);
    agent.respawn().expect("respawn with --detach-on-exit");
    agent
        .wait_for("enforcing generation=1", START_TIMEOUT)
        .expect("enforcing");
    assert!(agent.log().contains("nothing rewritten"), "{}", agent.log());
    assert!(!reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443));
    agent.stop().expect("stop");
    assert!(
        agent
            .log()
            .contains("(--detach-on-exit); their traffic is no longer filtered"),
        "{}",
        agent.log()
    );
    assert!(
        reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443),
        "detached on SIGTERM with --detach-on-exit"
    );
}

#[test]
fn an_unconfirmed_apply_is_rolled_back_and_the_failsafe_keeps_ssh_open() {
    prepare("the reliability end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("confirm");
    let original = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    let policy = run.policy(&original);
    let settings = "watch_policy = false\n[failsafe]\n\
                    management = [\"198.18.24.0/24\", \"2001:db8:24::/64\"]\n";
    let mut agent = start_gateway(&clinic, &policy, settings);
    let (imaging, pacs, ehr, admin, billing) = (
        clinic.host("imaging"),
        clinic.host("pacs"),
        clinic.host("ehr"),
        clinic.host("admin"),
        clinic.host("billing"),
    );
    let status = ward(&agent, &["status"]);
    assert!(
        status.contains("failsafe    tcp/22 from 198.18.24.0/24, 2001:db8:24::/64"),
        "{status}"
    );

    // Apply a change that must be confirmed within 3 s, and do not confirm it.
    std::fs::write(&policy, without(&original, "imaging", "pacs")).expect("edit policy");
    let applied = ward(&agent, &["apply", "--confirm-within", "3s"]);
    assert!(applied.contains("run `ward confirm` before"), "{applied}");
    assert!(
        ward(&agent, &["status"]).contains("AWAITS CONFIRMATION: generation 2"),
        "status shows the pending confirmation"
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "the applied change is in force while it awaits confirmation"
    );
    agent
        .wait_for("rolled back: ", Duration::from_secs(10))
        .expect("rolled back after 3 s");
    assert!(
        reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "the previous policy is back"
    );
    assert_eq!(rollbacks(&agent), 1);

    // The same change, confirmed in time, stays.
    let applied = ward(&agent, &["apply", "--confirm-within", "3s"]);
    assert!(applied.starts_with("reloaded: generation 4"), "{applied}");
    assert!(ward(&agent, &["confirm"]).contains("confirmed: generation 4"));
    let again = agent.cli(&["confirm"]).expect("ward confirm");
    assert!(!again.status.success(), "nothing is left to confirm");
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "the confirmed change stayed past the window"
    );
    assert_eq!(rollbacks(&agent), 1, "no second roll-back");

    // A policy that takes SSH from the admins: the failsafe keeps it, and only it.
    std::fs::write(&policy, without(&original, "admin", "any")).expect("edit policy");
    ward(&agent, &["reload"]);
    assert!(
        reach(&admin.ns, Proto::Tcp, ehr.v4.into(), 22),
        "failsafe: admin -> ehr ssh"
    );
    assert!(
        reach(&admin.ns, Proto::Tcp, ehr.v6.into(), 22),
        "failsafe over IPv6"
    );
    assert!(
        !reach(&admin.ns, Proto::Icmp, ehr.v4.into(), 0),
        "the rest of the removed rule is gone"
    );
    assert!(
        !reach(&billing.ns, Proto::Tcp, ehr.v4.into(), 22),
        "billing is no management prefix"
    );
}

#[test]
fn the_confirm_probe_confirms_a_change_that_keeps_the_management_path() {
    prepare("the reliability end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("probe");
    let original = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    let policy = run.policy(&original);
    let admin = clinic.host("admin");
    // Every file change is commit-confirmed; the gateway (in the admin subnet too)
    // probes the admin host's SSH through the new policy.
    let settings = format!(
        "[failsafe]\nconfirm_within = \"4s\"\nconfirm_probe = \"{}:22\"\n",
        admin.v4
    );
    let mut agent = start_gateway(&clinic, &policy, &settings);
    let (imaging, pacs, ehr) = (
        clinic.host("imaging"),
        clinic.host("pacs"),
        clinic.host("ehr"),
    );

    let kept = without(&original, "imaging", "pacs");
    std::fs::write(&policy, &kept).expect("edit policy");
    agent
        .wait_for("confirmed by the confirm probe", Duration::from_secs(10))
        .expect("the probe confirms");
    std::thread::sleep(Duration::from_secs(5));
    assert!(!agent.log().contains("rolled back: "), "{}", agent.log());
    assert!(!reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104));

    // This change cuts the admins' SSH (no failsafe here): the probe fails, the
    // change is rolled back to the last confirmed policy.
    std::fs::write(&policy, without(&kept, "admin", "any")).expect("edit policy");
    agent
        .wait_for("rolled back: ", Duration::from_secs(15))
        .expect("rolled back");
    assert!(
        reach(&admin.ns, Proto::Tcp, ehr.v4.into(), 22),
        "admin SSH is back"
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "the roll-back goes to the last confirmed policy, not the original"
    );
    assert_eq!(rollbacks(&agent), 1);
}

#[test]
fn a_start_whose_policy_is_refused_enforces_the_last_good_policy_or_denies_all() {
    prepare("the reliability end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("boot");
    let original = std::fs::read_to_string(clinic_policy()).expect("clinic policy");
    let policy = run.policy(&original);
    let failsafe = "[failsafe]\nmanagement = [\"198.18.24.0/24\", \"2001:db8:24::/64\"]\n";
    let mut agent = start_gateway(&clinic, &policy, &run.settings(failsafe));
    let (imaging, pacs, ehr, admin) = (
        clinic.host("imaging"),
        clinic.host("pacs"),
        clinic.host("ehr"),
        clinic.host("admin"),
    );
    assert!(reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104));

    // A reboot: nothing pinned. The policy on disk was broken meanwhile.
    agent.stop().expect("stop");
    agent.uninstall().expect("uninstall");
    std::fs::write(
        &policy,
        format!("{original}\n[[allow]]\nfrom = \"nowhere\"\n"),
    )
    .expect("edit");
    agent.respawn().expect("respawn");
    agent
        .wait_for("enforcing generation=", START_TIMEOUT)
        .expect("the agent enforces the last good policy instead of exiting");
    assert!(
        reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "the last good policy allows imaging -> pacs:104"
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, ehr.v4.into(), 443),
        "and denies what it denied"
    );
    let status = ward(&agent, &["status"]);
    assert!(status.contains("FAULT       policy since"), "{status}");
    assert!(
        status.contains("enforcing the last good policy"),
        "{status}"
    );

    // The policy repaired: it is enforced and the fault clears.
    std::fs::write(&policy, without(&original, "imaging", "pacs")).expect("repair");
    agent
        .wait_for("reloaded", Duration::from_secs(10))
        .expect("the repaired policy is loaded");
    assert!(
        !reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "the repaired policy is in force"
    );
    assert!(!ward(&agent, &["status"]).contains("FAULT"));

    // A first boot with no last good policy (a new state_dir) and a broken policy:
    // everything is denied but the failsafe.
    agent.stop().expect("stop");
    agent.uninstall().expect("uninstall");
    let state = agent.state_dir();
    std::fs::remove_dir_all(&state).expect("forget the last good policy");
    std::fs::write(&policy, "[zones.x]\ncidrs = [\"not a cidr\"]\n").expect("break");
    agent.respawn().expect("respawn");
    agent
        .wait_for("enforcing generation=", START_TIMEOUT)
        .expect("the agent enforces the deny-all policy instead of exiting");
    assert!(
        !reach(&admin.ns, Proto::Tcp, ehr.v4.into(), 443),
        "deny-all: admin -> ehr:443"
    );
    assert!(
        !reach(&pacs.ns, Proto::Udp, admin.v4.into(), 514),
        "deny-all: pacs -> admin:514"
    );
    assert!(
        reach(&admin.ns, Proto::Tcp, ehr.v4.into(), 22),
        "the failsafe still lets the admins in"
    );
    let status = ward(&agent, &["status"]);
    assert!(status.contains("the built-in deny-all policy"), "{status}");
    agent.stop().expect("stop");
}
