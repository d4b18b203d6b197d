//! The policy watch (root, namespaces): `ward run` watches its policy directory with
//! inotify, so a file saved by renaming it into place, a new file and a deleted one
//! are each enforced without a signal, once per save, reading again only the tables
//! that changed. Run with `--test-threads=1`.
use std::{path::PathBuf, time::Duration};

mod support;

use support::gateway::{clinic_policy, prepare, start_gateway};
use ward_tests::{matrix, reach, Clinic, Proto, WardAgent};

/// Well above a reload of the clinic policy; a change that is not seen never comes.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A policy directory of the test's own (deleted on drop).
struct PolicyDir(PathBuf);

impl Drop for PolicyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `path` as editors do: a temporary file renamed into place.
fn save(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).expect("write the temporary file");
    std::fs::rename(&tmp, path).expect("rename it into place");
}

/// Waits for generation `g`, reloaded on a policy file change (no signal is sent).
fn enforced(agent: &mut WardAgent, g: u64) {
    agent
        .wait_for(&format!("enforcing generation={g} "), RELOAD_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let reloads = agent
        .log()
        .matches("(reloaded on policy file change)")
        .count();
    assert_eq!(
        reloads as u64,
        g - 1,
        "one reload per save:\n{}",
        agent.log()
    );
}

/// How many tables (`[…]` and `[[…]]` headers) `text` has.
fn tables(text: &str) -> usize {
    let headers = text.lines().map(|l| l.trim_start_matches([' ', '\t']));
    headers.filter(|l| l.starts_with('[')).count()
}

/// Checks that a policy loaded after generation `g` was in force read `what` anew
/// (`N of its M tables`).
fn read_anew(agent: &WardAgent, g: u64, what: &str) {
    let log = agent.log();
    let since = format!("enforcing generation={g} ");
    let after = log.split_once(&since).map_or("", |(_, after)| after);
    assert!(
        after.contains(&format!("policy loaded: {what} read anew")),
        "a load after generation {g} should read {what} anew; log:\n{log}"
    );
}

#[test]
fn saves_new_files_and_deletions_are_enforced_without_a_signal() {
    prepare("the policy watch end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let dir = PolicyDir(
        std::env::temp_dir().join(format!("ward-test-{}-watch-policy", std::process::id())),
    );
    std::fs::create_dir_all(&dir.0).expect("policy dir");
    let file = dir.0.join("clinic.toml");
    let original = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    std::fs::write(&file, &original).expect("policy");
    let mut agent = start_gateway(&clinic, &dir.0, "");
    agent
        .wait_for(
            &format!("watching {} for changes (inotify)", dir.0.display()),
            RELOAD_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (imaging, pacs) = (clinic.host("imaging"), clinic.host("pacs"));
    let dicom = || reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104);
    assert!(dicom(), "generation 1 allows imaging -> pacs:104");

    // Saved by rename: the imaging -> pacs rules are gone.
    let (revoked, removed) = matrix::remove_rules(&original, "imaging", "pacs").expect("edit");
    assert!(removed > 0, "clinic.toml has imaging -> pacs rules");
    save(&file, &revoked);
    enforced(&mut agent, 2);
    assert!(!dicom(), "generation 2 denies imaging -> pacs:104");

    // A new file of the directory gives them back.
    let extra = dir.0.join("extra.toml");
    std::fs::write(
        &extra,
        "[[allow]]\nfrom = \"imaging\"\nto = \"pacs\"\ntcp = [104]\n",
    )
    .expect("extra.toml");
    enforced(&mut agent, 3);
    assert!(dicom(), "generation 3 allows imaging -> pacs:104 again");
    // Only the new file's table was read: clinic.toml's were those of the policy in force.
    let tables = tables(&revoked);
    read_anew(&agent, 2, &format!("1 of its {} tables", tables + 1));

    // Deleted: back to generation 2's policy, as a new generation.
    std::fs::remove_file(&extra).expect("delete extra.toml");
    enforced(&mut agent, 4);
    assert!(!dicom(), "generation 4 denies imaging -> pacs:104");
    read_anew(&agent, 3, &format!("0 of its {tables} tables"));

    // A file that is not a policy file is no change.
    std::fs::write(dir.0.join("README"), "notes").expect("README");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!agent.log().contains("enforcing generation=5 "));
    let st = agent.stop().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(st.success(), "ward exited with {st}; log:\n{}", agent.log());
}
