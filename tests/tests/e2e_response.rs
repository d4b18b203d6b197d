//! End-to-end automatic response on the simulated clinic (root, namespaces, the kernel):
//! a scanning imaging host is quarantined, its open PACS connection stops, admins can
//! still reach it, release restores it, an exempt host is only alerted on, and a
//! quarantine survives a restart of the agent. Run with `--test-threads=1`.
use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

mod support;

use support::{
    gateway::{clinic_policy, prepare, start_gateway, START_TIMEOUT},
    run::Run,
};
use ward::events::FlowRecord;
use ward_tests::{reach, Clinic, Hold, Host, Proto, WardAgent};

/// The agent's `[response]` for these tests: 5 distinct destinations within 5 s.
const RESPONSE: &str = r#"
log_level = "denied"
[response]
threshold = 5
window = "5s"
duration = "1h"
quarantine_allow = ["admin"]
never_quarantine = ["clinicians"]
"#;

/// Waits for an alert about `ip` with `action` in the run's event log.
fn wait_alert(run: &Run, ip: IpAddr, action: &str) -> Option<FlowRecord> {
    run.wait_alert(action, |r| r.src_endpoint.ip == Some(ip))
}

fn start(clinic: &Clinic, run: &Run) -> WardAgent {
    prepare("the response end-to-end tests");
    start_gateway(clinic, &clinic_policy(), &run.settings(RESPONSE))
}

/// `host` tries TCP 443 on eight addresses of the billing subnet (all denied).
fn scan_billing(host: &Host) {
    for last in 1..=8 {
        let target: IpAddr = format!("198.18.23.{last}").parse().unwrap();
        assert!(
            !reach(&host.ns, Proto::Tcp, target, 443),
            "{} reached {target}",
            host.name
        );
    }
}

/// Waits until `ip` is in `ward quarantine --list`.
fn wait_quarantined(agent: &WardAgent, ip: IpAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, list) = agent.cli_outcome(&["quarantine", "--list"]);
        assert!(ok, "ward quarantine --list: {list}");
        if list.lines().any(|l| l.starts_with(&format!("{ip} "))) || Instant::now() > deadline {
            return list;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_scanning_host_is_quarantined_admins_keep_access_and_release_restores_it() {
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("response");
    let mut agent = start(&clinic, &run);
    let (imaging, pacs, admin) = (
        clinic.host("imaging"),
        clinic.host("pacs"),
        clinic.host("admin"),
    );
    let ip: IpAddr = imaging.v4.into();

    // A DICOM connection that was working before the scan.
    let mut held = Hold::start(&imaging.ns, pacs.v4.into(), 104, 100, 30_000).expect("hold");
    std::thread::sleep(Duration::from_millis(500));
    assert!(held.running(), "the DICOM connection works before the scan");

    scan_billing(imaging);
    let list = wait_quarantined(&agent, ip);
    assert!(
        list.contains(&format!("{ip} ")) && list.contains("by auto: scan"),
        "not quarantined:\n{list}\n{}",
        agent.log()
    );
    let alert = wait_alert(&run, ip, "quarantine").expect("a quarantine alert in the event log");
    assert_eq!(alert.src_endpoint.zone, "imaging");
    let info = alert.unmapped.ward.alert.as_ref().expect("alert details");
    assert_eq!(info.by, "auto");
    assert!(info.expires.is_some(), "automatic quarantines expire");

    // The open connection stops; new ones are refused; admins still reach the host.
    let deadline = Instant::now() + Duration::from_secs(5);
    while held.running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        held.finish(Duration::from_secs(1)).is_err(),
        "the held DICOM connection must stop"
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "quarantined host reached PACS"
    );
    assert!(
        reach(&admin.ns, Proto::Tcp, imaging.v4.into(), 22),
        "admin must still reach it"
    );
    let (_, status) = agent.cli_outcome(&["status"]);
    assert!(
        status.contains("quarantine  1 hosts now; set 1 automatically"),
        "status:\n{status}"
    );

    // Release: PACS works again, and the release is an alert too.
    let (ok, out) = agent.cli_outcome(&["release", &ip.to_string()]);
    assert!(
        ok && out.starts_with(&format!("released {ip} ")),
        "release: {out}"
    );
    assert!(wait_alert(&run, ip, "release").is_some(), "a release alert");
    assert!(
        reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "released host reaches PACS again"
    );
    let (ok, out) = agent.cli_outcome(&["release", &ip.to_string()]);
    assert!(
        !ok && out.contains("is not quarantined"),
        "second release: {out}"
    );
    agent.stop().expect("stop");
}

#[test]
fn an_exempt_host_is_alerted_on_and_a_quarantine_survives_a_restart() {
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("exempt");
    let mut agent = start(&clinic, &run);
    let (clinician, ehr, imaging, pacs) = (
        clinic.host("clinician"),
        clinic.host("ehr"),
        clinic.host("imaging"),
        clinic.host("pacs"),
    );

    // never_quarantine = ["clinicians"]: a scan raises an alert but changes nothing.
    scan_billing(clinician);
    let exempt = wait_alert(&run, clinician.v4.into(), "exempt").expect("an exempt alert");
    assert_eq!(exempt.src_endpoint.zone, "clinicians");
    assert!(
        reach(&clinician.ns, Proto::Tcp, ehr.v4.into(), 443),
        "exempt host keeps working"
    );
    let (_, list) = agent.cli_outcome(&["quarantine", "--list"]);
    assert_eq!(list.trim(), "no host is quarantined");

    // A manual quarantine (IPv6 this time) survives the agent's restart.
    let ip: IpAddr = imaging.v6.into();
    let (ok, out) = agent.cli_outcome(&[
        "quarantine",
        &ip.to_string(),
        "--ttl",
        "2h",
        "--reason",
        "forensics",
    ]);
    assert!(ok, "quarantine: {out}");
    assert!(!reach(&imaging.ns, Proto::Tcp, pacs.v6.into(), 104));
    assert!(
        reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "only the quarantined address is cut"
    );
    agent.restart().expect("restart");
    agent
        .wait_for("enforcing generation=", START_TIMEOUT)
        .expect("ward enforcing again");
    let list = wait_quarantined(&agent, ip);
    assert!(
        list.contains("forensics") && list.contains("until "),
        "after restart:\n{list}"
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, pacs.v6.into(), 104),
        "still quarantined after the restart"
    );
    agent.stop().expect("stop");
}

#[test]
fn management_hosts_are_never_quarantined_and_automatic_quarantines_are_rate_limited() {
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("limits");
    prepare("the response end-to-end tests");
    let settings = format!(
        "{}max_auto_quarantines = 1\n[failsafe]\nmanagement = [\"198.18.24.0/24\", \"2001:db8:24::/64\"]\n",
        RESPONSE.replace("never_quarantine = [\"clinicians\"]\n", "")
    );
    let mut agent = start_gateway(&clinic, &clinic_policy(), &run.settings(&settings));
    let (admin, ehr, imaging, pacs) = (
        clinic.host("admin"),
        clinic.host("ehr"),
        clinic.host("imaging"),
        clinic.host("pacs"),
    );

    // A scan from a failsafe management address (or from a source forged to look
    // like one) is an alert, never a quarantine: the jump host keeps its access.
    scan_billing(admin);
    let exempt = wait_alert(&run, admin.v4.into(), "exempt").expect("an exempt alert");
    let why = &exempt.unmapped.ward.alert.as_ref().expect("details").reason;
    assert!(
        why.ends_with("not quarantined: in the failsafe management prefixes"),
        "{why}"
    );
    assert!(
        reach(&admin.ns, Proto::Tcp, ehr.v4.into(), 22),
        "admin -> ehr:22"
    );

    // One automatic quarantine a minute: imaging is quarantined, PACS scanning right
    // after is only alerted on.
    scan_billing(imaging);
    let list = wait_quarantined(&agent, imaging.v4.into());
    assert!(list.contains(&format!("{} ", imaging.v4)), "{list}");
    scan_billing(pacs);
    let limited =
        wait_alert(&run, pacs.v4.into(), "quarantine-limited").expect("a rate-limit alert");
    let why = &limited
        .unmapped
        .ward
        .alert
        .as_ref()
        .expect("details")
        .reason;
    assert!(
        why.contains("more than max_auto_quarantines = 1 within a minute"),
        "{why}"
    );
    let (_, list) = agent.cli_outcome(&["quarantine", "--list"]);
    assert!(
        !list.contains(&format!("{} ", pacs.v4)),
        "PACS quarantined:\n{list}"
    );
    assert!(
        !list.contains(&format!("{} ", admin.v4)),
        "admin quarantined:\n{list}"
    );
    assert!(
        reach(&pacs.ns, Proto::Udp, admin.v4.into(), 514),
        "PACS keeps its syslog to admin"
    );
    let (_, status) = agent.cli_outcome(&["status"]);
    assert!(
        status.contains("1 exempt alerts; 1 over the rate limit"),
        "{status}"
    );
    agent.stop().expect("stop");
}
