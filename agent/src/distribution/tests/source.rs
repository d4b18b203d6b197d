//! The source the daemon uses: signatures required or not, anti-rollback across
//! restarts, diagnostics, the records it reports.
use std::path::Path;

use tokio::sync::mpsc;

use super::{files, key, signed, TempDir};
use crate::{
    config::AgentConfig,
    distribution::{Bundle, Source},
    events::FlowRecord,
};

/// An agent configuration reading `policy` with `extra` lines.
fn config(dir: &TempDir, policy: &Path, extra: &str) -> AgentConfig {
    let text = format!(
        "role = \"host\"\ninterfaces = [\"lo\"]\npolicy = {:?}\nstate_dir = {:?}\n{extra}",
        policy.display().to_string(),
        dir.path().join("state").display().to_string(),
    );
    AgentConfig::parse(&dir.path().join("agent.toml"), &text).expect("config")
}

/// Requiring signatures, trusting key 1.
fn signed_only(dir: &TempDir, policy: &Path) -> AgentConfig {
    let line = key(1).public().to_base64();
    config(
        dir,
        policy,
        &format!("require_signature = true\ntrusted_keys = [\"{line}\"]\n"),
    )
}

async fn open(config: &AgentConfig) -> (Source, mpsc::Receiver<FlowRecord>) {
    let (tx, rx) = mpsc::channel(16);
    (Source::open(config, tx).await.expect("open"), rx)
}

fn put(policy: &Path, bundle: &Bundle) {
    std::fs::write(policy.join("policy.bundle"), bundle.to_json()).expect("write bundle");
}

/// The alert actions and reasons received so far.
fn alerts(rx: &mut mpsc::Receiver<FlowRecord>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Ok(r) = rx.try_recv() {
        let a = r.unmapped.ward.alert.expect("an alert record");
        out.push((a.action, a.reason));
    }
    out
}

#[tokio::test]
async fn the_version_applied_survives_a_restart_and_older_ones_are_refused() {
    let dir = TempDir::new("restart");
    let policy = dir.path().join("policy");
    std::fs::create_dir(&policy).unwrap();
    let config = signed_only(&dir, &policy);
    put(&policy, &signed(2, 443, 1));
    let (mut source, mut rx) = open(&config).await;
    let loaded = source.load().expect("v2 loads");
    source.applied(&loaded, 1);
    let records = alerts(&mut rx);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].0, "policy-applied");
    assert!(
        records[0].1.contains("bundle version 2 signed by key"),
        "{records:?}"
    );
    drop(source);

    // A new agent process: the floor comes from state_dir.
    let (mut source, mut rx) = open(&config).await;
    put(&policy, &signed(1, 443, 1));
    let err = source.load().unwrap_err().join("\n");
    assert!(
        err.ends_with("(version 1): version 1 is older than version 2 already applied on this host (anti-rollback)"),
        "{err}"
    );
    assert_eq!(alerts(&mut rx)[0].0, "policy-refused");
    put(&policy, &signed(2, 8443, 1));
    let err = source.load().unwrap_err().join("\n");
    assert!(
        err.contains("already applied on this host with other contents"),
        "{err}"
    );
    put(&policy, &signed(2, 443, 1));
    assert!(source.load().is_ok(), "the bundle in force, again");
    put(&policy, &signed(3, 8443, 1));
    let loaded = source.load().expect("v3");
    source.applied(&loaded, 2);
    put(&policy, &signed(2, 443, 1));
    assert!(source.load().is_err(), "v2 after v3");
}

#[tokio::test]
async fn unsigned_policies_are_refused_only_when_signatures_are_required() {
    let dir = TempDir::new("unsigned");
    let policy = dir.path().join("policy");
    std::fs::create_dir(&policy).unwrap();
    for f in files(443) {
        std::fs::write(policy.join(&f.name), &f.content).unwrap();
    }
    let (mut source, _rx) = open(&signed_only(&dir, &policy)).await;
    let err = source.load().unwrap_err().join("\n");
    assert!(
        err.ends_with(
            "unsigned policy refused (require_signature = true): only a signed bundle is enforced"
        ),
        "{err}"
    );
    let (mut source, mut rx) = open(&config(&dir, &policy, "")).await;
    let loaded = source.load().expect("unsigned allowed");
    source.applied(&loaded, 1);
    assert!(alerts(&mut rx)[0].1.ends_with("unsigned"));

    // A bundle next to the TOML files wins, and is verified even when not required.
    put(&policy, &signed(1, 443, 2));
    let err = source.load().unwrap_err().join("\n");
    assert!(err.contains("trusted_keys lists no key"), "{err}");
    let (mut source, _rx) = open(&signed_only(&dir, &policy)).await;
    let err = source.load().unwrap_err().join("\n");
    assert!(err.contains("which is not in trusted_keys"), "{err}");
}

#[tokio::test]
async fn a_bundle_tampered_with_or_invalid_is_refused_with_its_files_named() {
    let dir = TempDir::new("tamper");
    let policy = dir.path().join("policy");
    std::fs::create_dir(&policy).unwrap();
    let (mut source, _rx) = open(&signed_only(&dir, &policy)).await;
    let json = signed(1, 443, 1).to_json().replace("443", "444");
    std::fs::write(policy.join("policy.bundle"), json).unwrap();
    let err = source.load().unwrap_err().join("\n");
    assert!(err.contains("(version 1): bad signature"), "{err}");

    let mut broken = files(443);
    broken[0].content = broken[0].content.replace("to = \"b\"", "to = \"c\"");
    let bundle = Bundle::sign(2, broken, &key(1)).unwrap();
    put(&policy, &bundle);
    let err = source.load().unwrap_err().join("\n");
    let prefix = format!(
        "{}/policy.bundle (version 2): 10-rules.toml:3:6: error:",
        policy.display()
    );
    assert!(err.starts_with(&prefix), "{err}");
}

#[tokio::test]
async fn the_policy_in_force_signed_anew_moves_the_floor_without_a_publish() {
    let dir = TempDir::new("resigned");
    let policy = dir.path().join("policy");
    std::fs::create_dir(&policy).unwrap();
    let config = signed_only(&dir, &policy);
    put(&policy, &signed(1, 443, 1));
    let (mut source, mut rx) = open(&config).await;
    let loaded = source.load().unwrap();
    source.applied(&loaded, 1);
    put(&policy, &signed(2, 443, 1));
    let again = source.load().unwrap();
    assert_eq!(again.compiled.hash, loaded.compiled.hash);
    let records = alerts(&mut rx);
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records[1].1.contains("bundle version 2"), "{records:?}");
    let (mut source, _rx) = open(&config).await;
    put(&policy, &signed(1, 443, 1));
    assert!(source.load().is_err(), "the floor is version 2 now");
}

#[tokio::test]
async fn only_the_files_that_may_be_applied_again_are_held() {
    let dir = TempDir::new("files-held");
    let policy = dir.path().join("policy.toml");
    let text = |port: u16| {
        format!("[zones.a]\ncidrs = [\"198.18.0.0/24\"]\n[[allow]]\nfrom = \"a\"\nto = \"a\"\ntcp = [{port}]\n")
    };
    let config = config(&dir, &policy, "");
    let (mut source, _rx) = open(&config).await;
    let mut loaded = Vec::new();
    for port in [1, 2, 3] {
        std::fs::write(&policy, text(port)).unwrap();
        loaded.push(source.load().expect("loads"));
    }
    let hash = |i: usize| loaded[i].compiled.hash.as_str();
    source.keep_files_of(&[hash(0), hash(2)]);
    let last_good = || source_last_good(&dir);
    // Kept: applying the first again (a roll-back) keeps it as the last good one.
    source.applied(&loaded[0], 4);
    assert_eq!(
        last_good(),
        None,
        "applied only: kept once it awaits no confirmation"
    );
    source.keep_last_good(&loaded[0]);
    assert_eq!(last_good(), Some(hash(0).to_owned()));
    // Forgotten: the second is not applied again without a load.
    source.keep_last_good(&loaded[1]);
    assert_eq!(last_good(), Some(hash(0).to_owned()));
    source.keep_last_good(&loaded[2]);
    assert_eq!(last_good(), Some(hash(2).to_owned()));
}

/// The hash of the last good policy kept in `dir`'s state directory.
fn source_last_good(dir: &TempDir) -> Option<String> {
    let last_good = crate::distribution::LastGood::in_dir(&dir.path().join("state"));
    last_good
        .load()
        .expect("last good")
        .map(|l| l.compiled.hash)
}
