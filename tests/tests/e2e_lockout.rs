//! The lock-out preflight and commit-confirm end to end (root, namespaces, the
//! kernel): an admin's SSH session to the gateway (a `ward-probe hold` exchanging a
//! line every 100 ms with the gateway's port 22) is not cut by a policy change, saved
//! or applied, unless forced, and then it is; `ward check --config` names it offline;
//! a start is refused the same way unless `--force-policy`. `ward apply
//! --confirm-within` puts a policy the watcher applied unconfirmed under confirmation,
//! and a start with a policy other than the last confirmed one is rolled back unless
//! confirmed. Run with `--test-threads=1`.
use std::{net::IpAddr, process::Output, time::Duration};

mod support;

use support::{
    gateway::{clinic_policy, prepare, start_gateway, START_TIMEOUT},
    run::Run,
};
use ward_tests::{matrix, probe::Server, reach, ward_bin, Clinic, Hold, Proto, Role, WardAgent};

/// The gateway's address in the admin subnet (zone `admin`).
const GATEWAY_ADMIN: [u8; 4] = [198, 18, 24, 1];
/// How long a held session lasts: well past a refusal, a few seconds.
const HOLD_MS: u64 = 4000;

/// The clinic policy without the rules from `from` to `to`.
fn without(policy: &str, from: &str, to: &str) -> String {
    matrix::remove_rules(policy, from, to)
        .expect("edit policy")
        .0
}

/// The first 12 digits of the hash of the policy at `path`, as `ward check` gives it.
fn short_hash(path: &std::path::Path) -> String {
    let out = std::process::Command::new(ward_bin())
        .args(["check", "--format", "json"])
        .arg(path)
        .output()
        .expect("ward check");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    report["sha256"].as_str().expect("sha256")[..12].to_owned()
}

/// stdout and whether it exited 0.
fn text(out: &Output) -> (bool, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// An SSH session from the admin host to the gateway's port 22, established.
fn admin_session(clinic: &Clinic) -> Hold {
    let gateway = IpAddr::from(GATEWAY_ADMIN);
    let mut hold =
        Hold::start(&clinic.host("admin").ns, gateway, 22, 100, HOLD_MS).expect("ward-probe hold");
    std::thread::sleep(Duration::from_millis(700));
    assert!(hold.running(), "the session is established");
    hold
}

/// The line naming the admin session, as the refusal and `ward check` write it.
const CUT: &str = "198.18.24.10 → 198.18.24.1:22 (deny admin -> admin tcp/22: no rule allows it)";

#[test]
fn a_change_that_would_cut_the_admins_ssh_is_refused_unless_forced() {
    prepare("the lock-out end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let _sshd = Server::start(&clinic.gw, &[22], &[]).expect("port 22 on the gateway");
    let run = Run::new("lockout");
    let original = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    let policy = run.policy(&original);
    let mut agent = start_gateway(&clinic, &policy, "");
    let in_force = short_hash(&policy);
    let held = admin_session(&clinic);

    // Saved: the watcher's reload is refused, naming the session.
    std::fs::write(&policy, without(&original, "admin", "any")).expect("edit policy");
    agent
        .wait_for(
            "reload refused on policy file change",
            Duration::from_secs(10),
        )
        .expect("refused");
    assert!(agent.log().contains(CUT), "{}", agent.log());

    // Applied: refused too, exit 1, the session named.
    let (ok, out) = text(
        &agent
            .cli(&["apply", "--confirm-within", "30s"])
            .expect("apply"),
    );
    assert!(!ok, "refused: {out}");
    assert_eq!(
        out,
        format!(
            "refused: the policy in force stays generation 1 policy {in_force}\n  the new policy \
             would cut 1 established session to a management port: {CUT}; nothing was changed \
             (`ward reload --force` or `ward apply --force` puts it in force anyway)\n"
        )
    );
    // Offline, in the gateway's namespace: the same session, an error.
    let checked = clinic
        .gw
        .nsenter(ward_bin())
        .arg("check")
        .arg("--config")
        .arg(agent.config_path())
        .arg(&policy)
        .output()
        .expect("ward check");
    let (ok, out) = text(&checked);
    assert!(!ok, "{out}");
    assert!(
        out.ends_with(
            "preflight failed: 1 established session to a management port would be cut\n"
        ),
        "{out}"
    );
    let err = String::from_utf8_lossy(&checked.stderr);
    assert!(
        err.contains(&format!(
            "the policy would cut an established session: {CUT}"
        )),
        "{err}"
    );
    // The oracle: every line of the session went through.
    held.finish(Duration::from_secs(10))
        .expect("the session was never cut");

    // Forced: in force, and the session is cut.
    let held = admin_session(&clinic);
    let (ok, out) = text(
        &agent
            .cli(&["apply", "--confirm-within", "30s", "--force"])
            .expect("apply --force"),
    );
    assert!(ok, "{out}");
    assert!(out.starts_with("reloaded: generation 2 policy "), "{out}");
    assert!(agent
        .log()
        .contains("lock-out preflight overridden (forced)"));
    let cut = held.finish(Duration::from_secs(10));
    assert!(cut.is_err(), "the forced policy cut the session: {cut:?}");
    assert!(!reach(
        &clinic.host("admin").ns,
        Proto::Tcp,
        IpAddr::from(GATEWAY_ADMIN),
        22
    ));
}

#[test]
fn a_start_that_would_cut_the_admins_ssh_is_refused_unless_forced() {
    prepare("the lock-out end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let _sshd = Server::start(&clinic.gw, &[22], &[]).expect("port 22 on the gateway");
    let run = Run::new("lockout-start");
    let original = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    let policy = run.policy(&without(&original, "admin", "any"));
    let held = admin_session(&clinic);
    let mut agent = WardAgent::start_configured(
        &ward_bin(),
        &clinic.gw,
        Role::Gateway,
        &clinic.gateway_interfaces(),
        &policy,
        "",
    )
    .expect("start ward");
    let refusal = format!(
        "the new policy would cut 1 established session to a management port: {CUT}; nothing \
         was changed (`ward run --force-policy` puts it in force anyway)"
    );
    agent.wait_for(&refusal, START_TIMEOUT).expect("refused");
    let st = agent.stop().expect("the refused start has exited");
    assert!(!st.success(), "a refused start fails");
    held.finish(Duration::from_secs(10))
        .expect("the session was never cut");

    let held = admin_session(&clinic);
    agent.set_run_args(&["--force-policy"]);
    agent.respawn().expect("respawn");
    agent
        .wait_for("enforcing generation=1", START_TIMEOUT)
        .expect("forced start");
    let cut = held.finish(Duration::from_secs(10));
    assert!(cut.is_err(), "the forced start cut the session: {cut:?}");
}

#[test]
fn apply_puts_a_policy_the_watcher_applied_unconfirmed_under_confirmation() {
    prepare("the lock-out end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("honest-apply");
    let original = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    let policy = run.policy(&original);
    let first = short_hash(&policy);
    let mut agent = start_gateway(&clinic, &policy, "");
    let (imaging, pacs) = (clinic.host("imaging"), clinic.host("pacs"));
    let dicom = || reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104);

    std::fs::write(&policy, without(&original, "imaging", "pacs")).expect("edit policy");
    agent
        .wait_for("(reloaded on policy file change)", Duration::from_secs(10))
        .expect("the watcher applies it");
    assert!(!dicom(), "in force, unconfirmed");
    let second = short_hash(&policy);

    let (ok, out) = text(
        &agent
            .cli(&["apply", "--confirm-within", "3s"])
            .expect("apply"),
    );
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..2],
        [
            format!("awaits confirmation: generation 2 policy {second}").as_str(),
            format!(
                "  it went in force on policy file change without confirmation; it now awaits \
                 confirmation, or policy {first} comes back"
            )
            .as_str(),
        ]
    );
    assert!(
        lines[2].starts_with("  run `ward confirm` before "),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    agent
        .wait_for("rolled back: ", Duration::from_secs(10))
        .expect("rolled back unconfirmed");
    assert!(dicom(), "the policy before the watcher's change is back");
}

#[test]
fn a_start_with_a_policy_not_confirmed_before_is_rolled_back_unless_confirmed() {
    prepare("the lock-out end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("confirm-start");
    let original = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    let policy = run.policy(&original);
    let settings = "watch_policy = false\n[failsafe]\nconfirm_within = \"3s\"\n";
    // The first start: nothing confirmed before, nothing to return to.
    let mut agent = start_gateway(&clinic, &policy, settings);
    let (imaging, pacs) = (clinic.host("imaging"), clinic.host("pacs"));
    let dicom = || reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104);
    assert!(!agent.log().contains("the start is commit-confirmed"));
    assert!(dicom());

    // Changed while stopped: the start must be confirmed, and is not.
    agent.stop().expect("stop");
    std::fs::write(&policy, without(&original, "imaging", "pacs")).expect("edit policy");
    agent.respawn().expect("respawn");
    agent
        .wait_for("the start is commit-confirmed", START_TIMEOUT)
        .expect("commit-confirmed start");
    assert!(
        !dicom(),
        "the changed policy is in force while it awaits confirmation"
    );
    agent
        .wait_for("rolled back: ", Duration::from_secs(10))
        .expect("rolled back");
    assert!(dicom(), "the last confirmed policy is back");

    // Started again and confirmed: it stays, and the next start needs nothing.
    agent.stop().expect("stop");
    agent.respawn().expect("respawn");
    agent
        .wait_for("the start is commit-confirmed", START_TIMEOUT)
        .expect("commit-confirmed start");
    let (ok, out) = text(&agent.cli(&["confirm"]).expect("confirm"));
    assert!(ok && out.starts_with("confirmed: generation "), "{out}");
    std::thread::sleep(Duration::from_secs(4));
    assert!(!dicom(), "the confirmed policy stayed");
    agent.stop().expect("stop");
    agent.respawn().expect("respawn");
    agent
        .wait_for("enforcing generation=", START_TIMEOUT)
        .expect("started");
    std::thread::sleep(Duration::from_secs(4));
    let log = agent.log();
    assert!(!log.contains("the start is commit-confirmed"), "{log}");
    assert!(!log.contains("rolled back: "), "{log}");
    assert!(!dicom());
}
