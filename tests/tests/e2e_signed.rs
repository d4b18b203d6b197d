//! End-to-end signed policy distribution on the simulated clinic (root, namespaces,
//! the kernel): with `require_signature`, the gateway enforces a newer bundle signed
//! by the network team, and refuses a tampered bundle, an older version, a bundle
//! signed by an unknown key and an unsigned policy, each time keeping the policy in
//! force (checked with real traffic) and showing why in `ward status`; the version
//! applied survives a restart. `policy_url` is polled over HTTPS with ETags: a 304
//! changes nothing, a new ETag brings the new bundle. Run with `--test-threads=1`.
use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    time::Duration,
};

mod support;

use support::{
    cli::ward,
    gateway::{clinic_policy, prepare, start_gateway},
    https::{BundleServer, Served},
    run::Run,
};
use ward::events::FlowRecord;
use ward_tests::{matrix, reach, Clinic, Proto, WardAgent};

/// How long a policy change may take to be applied or refused.
const CHANGE: Duration = Duration::from_secs(20);

/// A signer with its key pair (`ward policy keygen`).
struct Team {
    dir: PathBuf,
    name: &'static str,
    key: PathBuf,
    /// The public key line, for `trusted_keys`.
    public: String,
    /// The key id.
    id: String,
}

impl Team {
    fn new(dir: &Path, name: &'static str) -> Team {
        let said = ward(&[
            OsStr::new("policy"),
            OsStr::new("keygen"),
            OsStr::new("--out"),
            dir.join(name).as_os_str(),
        ]);
        let public = std::fs::read_to_string(dir.join(format!("{name}.pub")))
            .expect("public key")
            .trim()
            .to_owned();
        assert!(said.contains(&public), "{said}");
        let id = said
            .strip_prefix("key ")
            .and_then(|rest| rest.split(':').next())
            .expect("key id")
            .to_owned();
        Team {
            dir: dir.to_owned(),
            name,
            key: dir.join(format!("{name}.key")),
            public,
            id,
        }
    }

    /// Signs `policy` (as `clinic.toml`) as `version`; the bundle's path.
    fn sign(&self, version: u64, policy: &str) -> PathBuf {
        let src = self.dir.join(format!("{}-src-{version}", self.name));
        std::fs::create_dir_all(&src).expect("source dir");
        std::fs::write(src.join("clinic.toml"), policy).expect("clinic.toml");
        let out = self.dir.join(format!("{}-v{version}.bundle", self.name));
        let version = version.to_string();
        let said = ward(&[
            OsStr::new("policy"),
            OsStr::new("sign"),
            OsStr::new("--key"),
            self.key.as_os_str(),
            OsStr::new("--version"),
            OsStr::new(&version),
            src.as_os_str(),
            OsStr::new("-o"),
            out.as_os_str(),
        ]);
        assert!(said.starts_with(&format!("signed version {version} with key {}", self.id)));
        let verified = ward(&[
            OsStr::new("policy"),
            OsStr::new("verify"),
            OsStr::new("--trusted-key"),
            OsStr::new(&self.public),
            out.as_os_str(),
        ]);
        assert!(verified.starts_with("bundle OK: "), "{verified}");
        out
    }
}

/// Puts `bundle` in `dir` as `policy.bundle`, atomically (as a deployment tool would).
fn deploy(bundle: &Path, dir: &Path) {
    let incoming = dir.join(".incoming");
    std::fs::copy(bundle, &incoming).expect("copy bundle");
    std::fs::rename(&incoming, dir.join("policy.bundle")).expect("rename bundle");
}

/// A copy of `bundle` with one rule changed after signing.
fn tampered(bundle: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(bundle).expect("bundle");
    let changed = text.replacen("tcp = [8443]", "tcp = [8443, 5432]", 1);
    assert_ne!(changed, text, "the bundle has the billing rule");
    changed.into_bytes()
}

/// The clinic policy without the rules from `from` to `to`.
fn without(policy: &str, from: &str, to: &str) -> String {
    matrix::remove_rules(policy, from, to)
        .expect("edit policy")
        .0
}

/// Real traffic through the gateway: imaging -> pacs:104 is allowed exactly when
/// `pacs` (the clinic policy, not the one without that rule); admin -> ehr:22 is
/// always allowed and imaging -> billing:443 never.
fn enforces(clinic: &Clinic, pacs: bool, when: &str) {
    let (imaging, pacs_host, ehr, admin, billing) = (
        clinic.host("imaging"),
        clinic.host("pacs"),
        clinic.host("ehr"),
        clinic.host("admin"),
        clinic.host("billing"),
    );
    assert_eq!(
        reach(&imaging.ns, Proto::Tcp, pacs_host.v4.into(), 104),
        pacs,
        "{when}: imaging -> pacs:104"
    );
    assert!(
        reach(&admin.ns, Proto::Tcp, ehr.v4.into(), 22),
        "{when}: admin -> ehr:22 is allowed"
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443),
        "{when}: imaging -> billing:443 is denied"
    );
}

/// `ward status` (text or `--json`) of the agent.
fn status(agent: &WardAgent, json: bool) -> String {
    let args: &[&str] = if json {
        &["status", "--json"]
    } else {
        &["status"]
    };
    let out = agent.cli(args).expect("ward status");
    assert!(out.status.success(), "ward status failed");
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn status_json(agent: &WardAgent) -> serde_json::Value {
    serde_json::from_str(&status(agent, true)).expect("status JSON")
}

/// Waits for the refusal saying `why`, then checks that it shows in `ward status` and
/// that the policy without imaging -> pacs is still enforced.
fn refused(agent: &mut WardAgent, clinic: &Clinic, why: &str) {
    agent.wait_for(why, CHANGE).expect("the refusal");
    enforces(clinic, false, why);
    let text = status(agent, false);
    assert!(text.contains("FAULT       policy since"), "{text}");
    assert!(text.contains("last reload refused at"), "{text}");
    assert!(text.contains(why), "`{why}` not in the status:\n{text}");
    let json = status_json(agent);
    assert_eq!(json["status"]["distribution"]["bundle"]["version"], 2);
    assert_eq!(json["status"]["generation"], 2, "nothing was published");
}

/// Waits for `policy_url`'s refusal saying `why`, then checks that it shows as a fetch
/// fault in `ward status` and that version 2 is still enforced.
fn fetch_refused(agent: &WardAgent, clinic: &Clinic, why: &str) {
    // The fault is logged when raised; a later refusal only updates its message.
    let deadline = std::time::Instant::now() + CHANGE;
    let text = loop {
        let text = status(agent, false);
        if text.contains(&format!("is kept: {why}")) || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        text.contains(&format!("is kept: {why}")),
        "no refusal before storing:\n{text}"
    );
    enforces(clinic, false, why);
    assert!(text.contains("FAULT       policy-fetch since"), "{text}");
    assert!(text.contains(why), "`{why}` not in the status:\n{text}");
    let json = status_json(agent);
    assert_eq!(json["status"]["distribution"]["bundle"]["version"], 2);
    assert_eq!(json["status"]["generation"], 2, "nothing was published");
}

/// The `(action, bundle version)` of the policy alerts in the event log.
fn policy_alerts(run: &Run) -> Vec<(String, Option<u64>)> {
    run.records()
        .iter()
        .filter_map(|r: &FlowRecord| r.unmapped.ward.alert.as_ref())
        .filter(|a| a.action.starts_with("policy-"))
        .map(|a| {
            let version = a
                .policy
                .as_ref()
                .and_then(|p| p.bundle.as_ref())
                .map(|b| b.version);
            (a.action.clone(), version)
        })
        .collect()
}

/// Agent settings requiring signatures by `team`, with `extra` lines.
fn signed_settings(run: &Run, team: &Team, extra: &str) -> String {
    run.settings(&format!(
        "require_signature = true\ntrusted_keys = [\"{}\"]\nstate_dir = {:?}\n{extra}",
        team.public,
        run.dir().join("state").display().to_string()
    ))
}

#[test]
fn only_newer_bundles_signed_by_a_trusted_key_are_enforced() {
    prepare("the signed policy end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("signed");
    let team = Team::new(run.dir(), "network");
    let rogue = Team::new(run.dir(), "rogue");
    let original = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    let cut = without(&original, "imaging", "pacs");
    let dir = run.dir().join("policy");
    std::fs::create_dir(&dir).expect("policy dir");
    let v1 = team.sign(1, &original);
    deploy(&v1, &dir);
    let mut agent = start_gateway(&clinic, &dir, &signed_settings(&run, &team, ""));
    enforces(&clinic, true, "version 1");
    let text = status(&agent, false);
    let line = format!("bundle version 1 signed by key {}", team.id);
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("signature required"), "{text}");

    // A newer bundle signed by the team is enforced.
    deploy(&team.sign(2, &cut), &dir);
    agent
        .wait_for("enforcing generation=2", CHANGE)
        .expect("version 2");
    enforces(&clinic, false, "version 2");
    let json = status_json(&agent);
    let d = &json["status"]["distribution"];
    assert_eq!(d["bundle"]["version"], 2, "{d}");
    assert_eq!(d["bundle"]["key_id"], team.id.as_str(), "{d}");
    assert_eq!(d["highest_version"], 2, "{d}");

    // Every refusal keeps version 2 in force and says why.
    let v3 = team.sign(3, &original);
    std::fs::write(dir.join("policy.bundle"), tampered(&v3)).expect("write");
    refused(&mut agent, &clinic, "bad signature (key");
    deploy(&v1, &dir);
    refused(
        &mut agent,
        &clinic,
        "version 1 is older than version 2 already applied on this host",
    );
    deploy(&rogue.sign(3, &original), &dir);
    let unknown = format!("signed by key {}, which is not in trusted_keys", rogue.id);
    refused(&mut agent, &clinic, &unknown);
    std::fs::write(dir.join("clinic.toml"), &original).expect("unsigned policy");
    std::fs::remove_file(dir.join("policy.bundle")).expect("remove the bundle");
    refused(
        &mut agent,
        &clinic,
        "unsigned policy refused (require_signature = true)",
    );

    // The good version 3 goes through and clears the fault.
    deploy(&v3, &dir);
    agent
        .wait_for("enforcing generation=3", CHANGE)
        .expect("version 3");
    enforces(&clinic, true, "version 3");
    let text = status(&agent, false);
    assert!(!text.contains("FAULT"), "{text}");
    assert!(text.contains("bundle version 3 signed by key"), "{text}");
    let alerts = policy_alerts(&run);
    let applied: Vec<Option<u64>> = alerts
        .iter()
        .filter(|(a, _)| a == "policy-applied")
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(applied, [Some(1), Some(2), Some(3)], "{alerts:?}");
    let refusals = alerts.iter().filter(|(a, _)| a == "policy-refused").count();
    assert!(refusals >= 4, "{alerts:?}");

    // The version applied survives a restart: an older bundle is refused at the start,
    // and the agent enforces version 3, the last good policy, saying why.
    agent.stop().expect("stop");
    deploy(&team.sign(2, &cut), &dir);
    agent.respawn().expect("respawn");
    agent
        .wait_for("version 2 is older than version 3 already applied", CHANGE)
        .expect("refused at the start");
    agent
        .wait_for("enforcing generation=", CHANGE)
        .expect("the last good policy in force");
    enforces(&clinic, true, "version 3, the last good policy");
    let text = status(&agent, false);
    assert!(text.contains("FAULT       policy since"), "{text}");
    assert!(text.contains("enforcing the last good policy"), "{text}");
    let exited = agent.stop().expect("the agent exited");
    assert!(exited.success(), "the agent ran on the last good policy");
    enforces(&clinic, true, "version 3 pinned, agent stopped");
    deploy(&team.sign(4, &cut), &dir);
    agent.respawn().expect("respawn");
    agent
        .wait_for("enforcing generation=4", CHANGE)
        .expect("version 4 at the start");
    enforces(&clinic, false, "version 4");
}

#[test]
fn policy_url_is_polled_with_etags_and_a_new_etag_brings_the_new_bundle() {
    prepare("the signed policy end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("url");
    let team = Team::new(run.dir(), "network");
    let original = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    let mut server = BundleServer::start(&clinic.gw, run.dir());
    let etag1 = server.publish(&std::fs::read(team.sign(1, &original)).expect("v1"));
    let download = run.dir().join("download");
    std::fs::create_dir(&download).expect("download dir");
    let url = format!(
        "policy_url = {:?}\npoll_interval = \"1s\"\nca_file = {:?}\n",
        server.url(),
        server.ca_file().display().to_string()
    );
    let mut agent = start_gateway(&clinic, &download, &signed_settings(&run, &team, &url));
    enforces(&clinic, true, "version 1 from the URL");

    // Unchanged: every poll revalidates the ETag, gets 304, and applies nothing.
    std::thread::sleep(Duration::from_millis(3500));
    let served = server.served();
    assert_eq!(
        served[0],
        Served {
            if_none_match: None,
            status: 200
        }
    );
    let revalidated = Served {
        if_none_match: Some(etag1.clone()),
        status: 304,
    };
    assert!(served.len() >= 3, "{served:?}");
    assert!(served[1..].iter().all(|s| *s == revalidated), "{served:?}");
    let log = agent.log();
    assert_eq!(log.matches("policy_url: new bundle").count(), 1, "{log}");
    assert!(
        !log.contains("policy unchanged on"),
        "nothing reloaded: {log}"
    );
    assert_eq!(policy_alerts(&run), [("policy-applied".into(), Some(1))]);
    let json = status_json(&agent);
    let fetch = &json["status"]["distribution"]["fetch"];
    assert_eq!(fetch["etag"], etag1.as_str(), "{fetch}");
    assert_eq!(fetch["last_result"], "304 not modified", "{fetch}");
    assert_eq!(json["status"]["generation"], 1);

    // A new bundle under a new ETag is fetched and applied.
    let cut = without(&original, "imaging", "pacs");
    let etag2 = server.publish(&std::fs::read(team.sign(2, &cut)).expect("v2"));
    agent
        .wait_for("enforcing generation=2", CHANGE)
        .expect("version 2");
    enforces(&clinic, false, "version 2 from the URL");
    assert!(server.served().contains(&Served {
        if_none_match: Some(etag1),
        status: 200
    }));
    let json = status_json(&agent);
    let d = &json["status"]["distribution"];
    assert_eq!(d["bundle"]["version"], 2, "{d}");
    assert_eq!(d["fetch"]["etag"], etag2.as_str(), "{d}");
    assert!(status(&agent, false).contains(&format!("from {}: ", server.url())));

    // A bundle altered on the server, then an older one validly signed, are refused
    // before they are stored: the file on disk stays version 2, and so does
    // enforcement, also across a restart.
    let stored = download.join("policy.bundle");
    let v2 = std::fs::read(&stored).expect("the stored bundle");
    server.publish(&tampered(&team.sign(3, &original)));
    fetch_refused(&agent, &clinic, "bad signature (key");
    assert_eq!(
        std::fs::read(&stored).expect("stored"),
        v2,
        "the tampered bundle was stored"
    );
    server.publish(&std::fs::read(team.sign(1, &original)).expect("v1"));
    fetch_refused(&agent, &clinic, "version 1 is older than version 2");
    assert_eq!(
        std::fs::read(&stored).expect("stored"),
        v2,
        "the older bundle was stored"
    );
    agent.stop().expect("stop");
    agent.respawn().expect("respawn");
    agent
        .wait_for("enforcing generation=2", CHANGE)
        .expect("version 2 at the start, the server still serving version 1");
    enforces(
        &clinic,
        false,
        "restart while the server serves an older bundle",
    );

    // The server gone: a fetch fault, enforcement unchanged.
    server.stop();
    agent
        .wait_for("policy_url https://127.0.0.1", CHANGE)
        .expect("the fetch fails");
    let text = status(&agent, false);
    assert!(text.contains("FAULT       policy-fetch since"), "{text}");
    enforces(&clinic, false, "server gone");
}
