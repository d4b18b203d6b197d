//! Faults that must not stop enforcement (root, namespaces, the kernel): the event log
//! on a full disk, an unreadable or deleted policy, a full event ring buffer. Each is
//! reported in `ward status` and the agent's log, enforcement goes on with the last
//! good policy, and a fault that ends is cleared. Run with `--test-threads=1`.
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

mod support;

use support::gateway::{clinic_policy, prepare, start_gateway};
use ward_tests::{reach, util::signal, Clinic, Proto, WardAgent};

/// A policy directory of the test's own (deleted on drop), holding `clinic.toml`.
struct PolicyDir(PathBuf);

impl Drop for PolicyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ward status --json` of the agent.
fn status(agent: &WardAgent) -> serde_json::Value {
    let out = agent.cli(&["status", "--json"]).expect("ward status");
    assert!(out.status.success(), "ward status failed");
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// The fault in `area`, waiting up to 10 s for it (`present`) or for its end.
fn fault(agent: &WardAgent, area: &str, present: bool) -> Option<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(agent);
        let found = s["status"]["faults"]
            .as_array()
            .expect("faults")
            .iter()
            .find(|f| f["area"] == area)
            .cloned();
        if found.is_some() == present || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The clinic enforces as it should: one allowed and one denied flow.
fn still_enforcing(clinic: &Clinic, when: &str) {
    let (imaging, pacs, billing) = (
        clinic.host("imaging"),
        clinic.host("pacs"),
        clinic.host("billing"),
    );
    assert!(
        reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "{when}: imaging -> pacs:104 stays allowed"
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443),
        "{when}: imaging -> billing:443 stays denied"
    );
}

#[test]
fn faults_are_reported_while_enforcement_goes_on() {
    prepare("the fault end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let dir = PolicyDir(
        std::env::temp_dir().join(format!("ward-test-{}-faults-policy", std::process::id())),
    );
    std::fs::create_dir_all(&dir.0).expect("policy dir");
    let file = dir.0.join("clinic.toml");
    let clinic_text = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    std::fs::write(&file, &clinic_text).expect("policy");
    // Event lines go to a full disk; one source may cause many events, and no
    // global budget holds them back (so a flood can fill the ring buffer).
    let settings = "event_log = \"/dev/full\"\n[events]\nper_source = 1000000\nper_second = 0\n";
    let mut agent = start_gateway(&clinic, &dir.0, settings);

    // Disk full for the event log: the denied probe's event cannot be written.
    still_enforcing(&clinic, "event log on a full disk");
    let f = fault(&agent, "event-log", true).expect("an event-log fault");
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("No space left on device"), "{message}");
    assert!(f["count"].as_u64().unwrap() >= 1);
    agent
        .wait_for("event log: No space left on device", Duration::from_secs(5))
        .expect("logged");

    // An unreadable policy file (not UTF-8): refused, the last good policy stays.
    std::fs::write(&file, b"\xff\xfe not a policy").expect("garble the policy");
    agent
        .wait_for(
            "reload refused on policy file change",
            Duration::from_secs(10),
        )
        .expect("the unreadable policy is refused");
    let f = fault(&agent, "policy", true).expect("a policy fault");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("generation 1 stays in force"),
        "{f}"
    );
    still_enforcing(&clinic, "unreadable policy");

    // Repaired: the fault clears (the policy is the one in force: nothing rewritten).
    std::fs::write(&file, &clinic_text).expect("repair the policy");
    assert!(
        fault(&agent, "policy", false).is_none(),
        "the policy fault clears"
    );

    // The policy directory deleted: refused again, enforcement goes on.
    std::fs::remove_dir_all(&dir.0).expect("delete the policy directory");
    agent
        .wait_for("cannot read", Duration::from_secs(10))
        .expect("the missing directory is refused");
    assert!(fault(&agent, "policy", true).is_some(), "a policy fault");
    still_enforcing(&clinic, "policy directory deleted");

    // A full ring buffer: the agent is stopped (SIGSTOP) while a flood of denied
    // datagrams makes more events than the 4 MiB ring holds.
    assert!(fault(&agent, "events-lost", false).is_none());
    signal(agent.pid(), libc::SIGSTOP).expect("SIGSTOP");
    let flood = flood(&clinic, 150_000);
    signal(agent.pid(), libc::SIGCONT).expect("SIGCONT");
    let flood = flood.expect("flood");
    let f = fault(&agent, "events-lost", true)
        .unwrap_or_else(|| panic!("no events-lost fault after {flood}; {}", status(&agent)));
    assert!(f["count"].as_u64().unwrap() > 0, "{f}");
    let lost = status(&agent)["counters"]["events_lost"].as_u64().unwrap();
    assert!(lost > 0, "the kernel counted lost events");
    agent
        .wait_for(
            "events lost: the event ring buffer was full",
            Duration::from_secs(5),
        )
        .expect("logged");
    still_enforcing(&clinic, "after the ring buffer was full");
    let text = agent.cli(&["status"]).expect("ward status");
    let text = String::from_utf8_lossy(&text.stdout);
    for area in ["event-log", "policy", "events-lost"] {
        assert!(
            text.contains(&format!("FAULT       {area} since")),
            "{text}"
        );
    }
}

/// Sends `count` denied datagrams from imaging to billing (at most 30 s); what the
/// probe printed.
fn flood(clinic: &Clinic, count: u64) -> anyhow::Result<String> {
    let (imaging, billing) = (clinic.host("imaging"), clinic.host("billing"));
    ward_tests::flood(&imaging.ns, billing.v4.into(), 9999, count, 30_000)
}
