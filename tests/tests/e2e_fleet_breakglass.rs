//! End-to-end fleet break-glass on the simulated clinic (root, namespaces, the kernel):
//! a signed bundle whose `breakglass.toml` grants imaging -> billing https lets imaging
//! reach billing (denied before, checked with traffic); the grant is shown as a fleet
//! grant in `ward breakglass --list` and `ward status`, with alerts naming the bundle
//! and author; a local `--end` of it is refused; a restarted agent keeps it as it is; a
//! grant for other hosts is not put in force; the next bundle without it cuts it again; a grant with a short expiry ends by
//! itself; a host with break-glass disabled refuses the grant and says so, the rest of
//! the bundle applying. Run with `--test-threads=1`.
use std::{
    net::IpAddr,
    path::Path,
    time::{Duration, Instant, SystemTime},
};

mod support;

use support::{
    gateway::{prepare, start_gateway},
    run::Run,
    signed::{keygen, requiring, sign_and_deploy},
};
use ward::events::FlowRecord;
use ward_tests::{reach, Clinic, Proto, WardAgent};

/// How long a bundle change may take to be applied.
const CHANGE: Duration = Duration::from_secs(20);

/// This agent's name, which a grant's `hosts` may give.
const AGENT: &str = "gw-clinic";

/// One `[[breakglass]]` grant from imaging to `to` over https, ending `after` from now,
/// with a `hosts` line when given.
fn grant(to: &str, reason: &str, after: Duration, hosts: Option<&str>) -> String {
    let expires = humantime::format_rfc3339_seconds(SystemTime::now() + after);
    let hosts = hosts.map_or(String::new(), |h| format!("hosts = [\"{h}\"]\n"));
    format!(
        "[[breakglass]]\nfrom = \"imaging\"\nto = \"{to}\"\nservice = \"https\"\nreason = \"{reason}\"\nauthor = \"netsec@clinic\"\nexpires = {expires}\n{hosts}"
    )
}

/// Signs the clinic policy with `grants` as `breakglass.toml`, when given.
fn deploy(run: &Run, key: &Path, version: u64, grants: Option<&str>, policy_dir: &Path) {
    let reserved: Vec<(&str, &str)> = grants.map(|g| ("breakglass.toml", g)).into_iter().collect();
    sign_and_deploy(run, key, version, &reserved, policy_dir);
}

/// `ward breakglass --list`, once a line starts with `prefix` (`listed`) or none
/// does, or the wait is over.
fn wait_list(agent: &WardAgent, prefix: &str, listed: bool, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (ok, list) = agent.cli_outcome(&["breakglass", "--list"]);
        assert!(ok, "ward breakglass --list: {list}");
        if list.lines().any(|l| l.starts_with(prefix)) == listed || Instant::now() > deadline {
            return list;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether imaging reaches `host`'s https port.
fn imaging_reaches(clinic: &Clinic, host: &str) -> bool {
    let to: IpAddr = clinic.host(host).v4.into();
    reach(&clinic.host("imaging").ns, Proto::Tcp, to, 443)
}

fn status_text(agent: &WardAgent) -> String {
    let out = agent.cli(&["status"]).expect("ward status");
    assert!(out.status.success(), "ward status failed");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The agent settings: signed bundles of `public` required, named [`AGENT`].
fn settings(run: &Run, public: &str, extra: &str) -> String {
    format!(
        "{}agent_name = \"{AGENT}\"\n{extra}",
        requiring(run, public)
    )
}

const FLEET_GRANT: &str = "fleet grant 0: imaging -> billing https";

#[test]
fn a_signed_fleet_grant_opens_a_service_until_a_newer_bundle_or_its_expiry() {
    prepare("the fleet break-glass end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("fleet-breakglass");
    let (key, public) = keygen(run.dir());
    let dir = run.dir().join("policy");
    std::fs::create_dir(&dir).expect("policy dir");
    let hour = Duration::from_secs(3600);

    // Version 1: no grant; the policy denies imaging -> billing https.
    deploy(&run, &key, 1, None, &dir);
    let mut agent = start_gateway(&clinic, &dir, &settings(&run, &public, ""));
    assert!(!imaging_reaches(&clinic, "billing"), "denied by the policy");

    // Version 2 grants it to this agent (and imaging -> ehr to another agent only).
    let grants = format!(
        "{}{}",
        grant("billing", "INC-77 vendor", hour, Some(AGENT)),
        grant("ehr", "elsewhere only", hour, Some("gw-other"))
    );
    deploy(&run, &key, 2, Some(&grants), &dir);
    let list = wait_list(&agent, FLEET_GRANT, true, CHANGE);
    let line = list.lines().next().unwrap_or_default();
    assert!(
        line.starts_with(&format!("{FLEET_GRANT} until "))
            && line.ends_with(" by signed bundle version 2 (author netsec@clinic): INC-77 vendor"),
        "{list}\n{}",
        agent.log()
    );
    assert_eq!(
        list.lines().count(),
        1,
        "the grant for gw-other is in force: {list}"
    );
    assert!(
        imaging_reaches(&clinic, "billing"),
        "the fleet grant allows it"
    );
    assert!(
        !imaging_reaches(&clinic, "ehr"),
        "a grant for another agent"
    );
    let text = status_text(&agent);
    assert!(
        text.contains(&format!("BREAK-GLASS {FLEET_GRANT} until ")),
        "{text}"
    );
    let start = run
        .wait_alert("breakglass-start", |_| true)
        .expect("a breakglass-start alert");
    let info = start.unmapped.ward.alert.expect("alert details");
    assert_eq!(info.by, "fleet bundle version 2 (author netsec@clinic)");
    assert_eq!(info.reason, "INC-77 vendor");

    // A local end of a fleet grant is refused.
    let (ok, said) = agent.cli_outcome(&["breakglass", "--end", "0"]);
    assert!(!ok, "a local end of a fleet grant went through: {said}");
    assert!(
        said.contains("grant 0 is a fleet grant of signed bundle version 2: only a newer bundle without it, or its expiry, ends it"),
        "{said}"
    );
    assert!(
        imaging_reaches(&clinic, "billing"),
        "still granted after the refusal"
    );

    // A restarted agent recognises the fleet grant: kept as it is, not started again.
    agent.restart().expect("restart");
    agent
        .wait_for(
            "break-glass grant 0: imaging -> billing https stays in force",
            Duration::from_secs(30),
        )
        .expect("the restarted agent takes the grant over");
    let after = wait_list(&agent, FLEET_GRANT, true, CHANGE);
    assert_eq!(after.lines().next(), Some(line), "after the restart");
    let is_start =
        |r: &FlowRecord| r.verdict() == "alert" && r.unmapped.ward.reason == "breakglass-start";
    let starts = run.records().iter().filter(|r| is_start(r)).count();
    assert_eq!(starts, 1, "the grant was started again");
    assert!(
        imaging_reaches(&clinic, "billing"),
        "granted after the restart"
    );

    // Version 3 without it cuts it again.
    deploy(&run, &key, 3, None, &dir);
    let list = wait_list(&agent, FLEET_GRANT, false, CHANGE);
    assert_eq!(
        list.trim(),
        "no break-glass grant is in force",
        "{}",
        agent.log()
    );
    assert!(!imaging_reaches(&clinic, "billing"), "ended by version 3");
    let end = run
        .wait_alert("breakglass-end", |_| true)
        .expect("a breakglass-end alert");
    let info = end.unmapped.ward.alert.expect("alert details");
    assert_eq!(info.by, "fleet bundle version 3 (no longer listed)");

    // Version 4 grants it for a few seconds: it ends by itself.
    let short = Duration::from_secs(10);
    deploy(
        &run,
        &key,
        4,
        Some(&grant("billing", "short", short, None)),
        &dir,
    );
    let list = wait_list(&agent, FLEET_GRANT, true, CHANGE);
    assert!(
        list.contains(" by signed bundle version 4 "),
        "{list}\n{}",
        agent.log()
    );
    assert!(imaging_reaches(&clinic, "billing"), "granted by version 4");
    let list = wait_list(&agent, FLEET_GRANT, false, short + Duration::from_secs(5));
    assert_eq!(
        list.trim(),
        "no break-glass grant is in force",
        "did not expire"
    );
    assert!(
        !imaging_reaches(&clinic, "billing"),
        "the grant of version 4 expired"
    );
}

#[test]
fn a_host_with_break_glass_disabled_refuses_the_fleet_grant_and_says_so() {
    prepare("the fleet break-glass end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("fleet-breakglass-disabled");
    let (key, public) = keygen(run.dir());
    let dir = run.dir().join("policy");
    std::fs::create_dir(&dir).expect("policy dir");
    let hour = Duration::from_secs(3600);
    deploy(
        &run,
        &key,
        1,
        Some(&grant("billing", "INC-78", hour, None)),
        &dir,
    );
    let disabled = "[breakglass]\nenabled = false\n";
    let agent = start_gateway(&clinic, &dir, &settings(&run, &public, disabled));
    let text = status_text(&agent);
    assert!(
        text.contains("BREAK-GLASS fleet imaging -> billing https of fleet bundle version 1 refused: break-glass is disabled on this host (`[breakglass] enabled = false`)"),
        "{text}\n{}",
        agent.log()
    );
    assert!(text.contains("bundle version 1 signed by key"), "{text}");
    let (_, list) = agent.cli_outcome(&["breakglass", "--list"]);
    assert_eq!(list.trim(), "no break-glass grant is in force");
    assert!(
        !imaging_reaches(&clinic, "billing"),
        "refused, so still denied"
    );
}
