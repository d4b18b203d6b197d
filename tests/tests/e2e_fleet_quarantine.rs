//! End-to-end fleet quarantine on the simulated clinic (root, namespaces, the kernel):
//! the gateway applies a signed bundle whose `quarantine.toml` lists the imaging host,
//! which is then cut off (checked with traffic) and shown as a fleet entry in `ward
//! quarantine --list` and `ward status`, with an alert naming the bundle and author; a
//! local release of it is refused; the next bundle without it releases it; an entry
//! with a short expiry ends by itself. A `cidr` entry cuts every host of its network,
//! each listed with the network, until a newer bundle without it. Run with
//! `--test-threads=1`.
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
use ward_tests::{reach, Clinic, Proto, WardAgent};

/// How long a bundle change may take to be applied.
const CHANGE: Duration = Duration::from_secs(20);

/// Signs the clinic policy with `quarantine` as `quarantine.toml`, when given.
fn deploy(run: &Run, key: &Path, version: u64, quarantine: Option<&str>, policy_dir: &Path) {
    let reserved: Vec<(&str, &str)> = quarantine
        .map(|q| ("quarantine.toml", q))
        .into_iter()
        .collect();
    sign_and_deploy(run, key, version, &reserved, policy_dir);
}

/// One `[[quarantine]]` entry for `ip` ending `after` from now.
fn entry(ip: IpAddr, reason: &str, after: Duration) -> String {
    listing("address", &ip.to_string(), reason, after)
}

/// One `[[quarantine]]` entry whose `field` (`address` or `cidr`) is `value`.
fn listing(field: &str, value: &str, reason: &str, after: Duration) -> String {
    let expires = humantime::format_rfc3339_seconds(SystemTime::now() + after);
    format!(
        "[[quarantine]]\n{field} = \"{value}\"\nreason = \"{reason}\"\nauthor = \"netsec@clinic\"\nexpires = {expires}\n"
    )
}

/// `ward quarantine --list`, once `ip` is in it (`listed`) or not, or the wait is over.
fn wait_list(agent: &WardAgent, ip: IpAddr, listed: bool, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (ok, list) = agent.cli_outcome(&["quarantine", "--list"]);
        assert!(ok, "ward quarantine --list: {list}");
        let found = list.lines().any(|l| l.starts_with(&format!("{ip} ")));
        if found == listed || Instant::now() > deadline {
            return list;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether imaging reaches PACS's DICOM port (allowed by the clinic policy).
fn imaging_reaches_pacs(clinic: &Clinic) -> bool {
    let pacs: IpAddr = clinic.host("pacs").v4.into();
    reach(&clinic.host("imaging").ns, Proto::Tcp, pacs, 104)
}

/// The same over IPv6.
fn imaging_reaches_pacs_v6(clinic: &Clinic) -> bool {
    let pacs: IpAddr = clinic.host("pacs").v6.into();
    reach(&clinic.host("imaging").ns, Proto::Tcp, pacs, 104)
}

fn status_text(agent: &WardAgent) -> String {
    let out = agent.cli(&["status"]).expect("ward status");
    assert!(out.status.success(), "ward status failed");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn a_signed_fleet_quarantine_cuts_a_host_until_a_newer_bundle_or_its_expiry() {
    prepare("the fleet quarantine end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("fleet-quarantine");
    let (key, public) = keygen(run.dir());
    let dir = run.dir().join("policy");
    std::fs::create_dir(&dir).expect("policy dir");
    let ip: IpAddr = clinic.host("imaging").v4.into();
    let hour = Duration::from_secs(3600);

    // Version 1 quarantines the imaging host fleet-wide.
    deploy(&run, &key, 1, Some(&entry(ip, "beacon to C2", hour)), &dir);
    let settings = requiring(&run, &public);
    let agent = start_gateway(&clinic, &dir, &settings);
    let list = wait_list(&agent, ip, true, CHANGE);
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("{ip} ")))
        .unwrap_or_else(|| panic!("not quarantined:\n{list}\n{}", agent.log()));
    assert!(
        line.starts_with(&format!("{ip} fleet since "))
            && line.ends_with(" by signed bundle version 1 (author netsec@clinic): beacon to C2"),
        "{line}"
    );
    assert!(
        !imaging_reaches_pacs(&clinic),
        "the fleet-quarantined host reached PACS"
    );
    let text = status_text(&agent);
    assert!(text.contains("quarantine  1 hosts now;"), "{text}");
    assert!(
        text.contains("fleet       1 of them from quarantine.toml of signed bundle version 1 (1 set since start); 0 local"),
        "{text}"
    );
    let alert = run
        .wait_alert("quarantine", |r| r.src_endpoint.ip == Some(ip))
        .expect("a quarantine alert");
    let info = alert.unmapped.ward.alert.expect("alert details");
    assert_eq!(info.by, "fleet bundle version 1 (author netsec@clinic)");
    assert_eq!(info.reason, "beacon to C2");

    // A local release (and a local quarantine) of a fleet entry is refused.
    let (ok, said) = agent.cli_outcome(&["release", &ip.to_string()]);
    assert!(!ok, "a local release of a fleet entry went through: {said}");
    assert!(
        said.contains(&format!(
            "{ip} is in the fleet quarantine of signed bundle version 1: only a newer bundle without it, or its expiry, ends it"
        )),
        "{said}"
    );
    let (ok, said) = agent.cli_outcome(&["quarantine", &ip.to_string(), "--reason", "mine"]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("it is set and ended by the signed bundle, not by hand"),
        "{said}"
    );
    assert!(
        !imaging_reaches_pacs(&clinic),
        "still quarantined after the refusals"
    );

    // Version 2, the same policy without the list: the host is released.
    deploy(&run, &key, 2, None, &dir);
    let list = wait_list(&agent, ip, false, CHANGE);
    assert_eq!(list.trim(), "no host is quarantined", "{}", agent.log());
    assert!(imaging_reaches_pacs(&clinic), "released by version 2");
    let text = status_text(&agent);
    assert!(
        text.contains("fleet       0 of them from quarantine.toml of signed bundle version 2"),
        "{text}"
    );

    // Version 3 lists it for a few seconds: it ends by itself.
    let short = Duration::from_secs(8);
    deploy(&run, &key, 3, Some(&entry(ip, "short look", short)), &dir);
    let list = wait_list(&agent, ip, true, CHANGE);
    assert!(
        list.contains(&format!("{ip} fleet ")),
        "{list}\n{}",
        agent.log()
    );
    assert!(!imaging_reaches_pacs(&clinic), "quarantined by version 3");
    let list = wait_list(&agent, ip, false, short + Duration::from_secs(5));
    assert_eq!(list.trim(), "no host is quarantined", "did not expire");
    assert!(
        imaging_reaches_pacs(&clinic),
        "the quarantine of version 3 expired"
    );
}

#[test]
fn a_fleet_cidr_entry_cuts_every_host_of_its_network_until_a_newer_bundle() {
    prepare("the fleet quarantine end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("fleet-quarantine-cidr");
    let (key, public) = keygen(run.dir());
    let dir = run.dir().join("policy");
    std::fs::create_dir(&dir).expect("policy dir");
    let (v4, v6): (IpAddr, IpAddr) = {
        let imaging = clinic.host("imaging");
        (imaging.v4.into(), imaging.v6.into())
    };
    let hour = Duration::from_secs(3600);

    // Version 1: imaging's 198.18.20.10 in a /29 (8 hosts), its 2001:db8:20::10 in a
    // /124 (16 hosts); the gateway's .1 and ::1 are outside both.
    let list = format!(
        "{}{}",
        listing("cidr", "198.18.20.8/29", "lab sweep", hour),
        listing("cidr", "2001:db8:20::10/124", "lab sweep v6", hour)
    );
    deploy(&run, &key, 1, Some(&list), &dir);
    let settings = requiring(&run, &public);
    let agent = start_gateway(&clinic, &dir, &settings);
    let list = wait_list(&agent, v6, true, CHANGE);
    let hosts: Vec<&str> = list.lines().map(|l| l.split(' ').next().unwrap()).collect();
    let mut expected: Vec<String> = (8..16).map(|h| format!("198.18.20.{h}")).collect();
    expected.extend((0x10..0x20).map(|h| format!("2001:db8:20::{h:x}")));
    let mut sorted = hosts.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "{list}\n{}", agent.log());
    for line in list.lines() {
        let v6_line = line
            .split(' ')
            .next()
            .is_some_and(|host| host.contains(':'));
        let suffix = if v6_line {
            " by signed bundle version 1 (author netsec@clinic, in 2001:db8:20::10/124): lab sweep v6"
        } else {
            " by signed bundle version 1 (author netsec@clinic, in 198.18.20.8/29): lab sweep"
        };
        assert!(
            line.contains(" fleet since ") && line.ends_with(suffix),
            "{line}"
        );
    }
    assert!(!imaging_reaches_pacs(&clinic), "imaging (v4) reached PACS");
    assert!(
        !imaging_reaches_pacs_v6(&clinic),
        "imaging (v6) reached PACS"
    );
    let text = status_text(&agent);
    assert!(text.contains("quarantine  24 hosts now;"), "{text}");
    assert!(
        text.contains("fleet       24 of them from quarantine.toml of signed bundle version 1 (24 set since start); 0 local"),
        "{text}"
    );
    let alert = run
        .wait_alert("quarantine", |r| r.src_endpoint.ip == Some(v4))
        .expect("a quarantine alert for imaging");
    let info = alert.unmapped.ward.alert.expect("alert details");
    assert_eq!(
        info.by,
        "fleet bundle version 1 (author netsec@clinic, in 198.18.20.8/29)"
    );

    // Version 2 without the list releases every host of both networks.
    deploy(&run, &key, 2, None, &dir);
    let list = wait_list(&agent, v4, false, CHANGE);
    assert_eq!(list.trim(), "no host is quarantined", "{}", agent.log());
    assert!(imaging_reaches_pacs(&clinic), "v4 released by version 2");
    assert!(imaging_reaches_pacs_v6(&clinic), "v6 released by version 2");
}
