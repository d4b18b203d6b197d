//! The policy watch: inotify sees a change within milliseconds (rename into place,
//! deletion, a new file of a policy directory), one save makes one change, unrelated
//! files make none, and a path that cannot be watched is polled.
use std::{path::PathBuf, time::Duration};

use super::PolicyWatch;

/// Well under the 250 ms poll: only the watch is this fast.
const FAST: Duration = Duration::from_millis(150);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-watch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `path` as editors and the benchmark do: a temporary file renamed into place.
fn save(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn seen(w: &mut PolicyWatch, within: Duration) -> bool {
    tokio::time::timeout(within, w.changed()).await.is_ok()
}

#[tokio::test]
async fn a_rename_into_place_is_seen_at_once_and_once() {
    let dir = scratch("rename");
    let policy = dir.join("policy.toml");
    save(&policy, "# v1\n");
    let mut w = PolicyWatch::new(&policy);
    assert!(w.is_inotify());
    save(&policy, "# version 2\n");
    assert!(seen(&mut w, FAST).await, "the rename was not seen");
    // The burst of that save (create, write, rename) is one change.
    assert!(!seen(&mut w, Duration::from_millis(300)).await);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn deletion_is_seen_and_other_files_are_not_a_change() {
    let dir = scratch("delete");
    let policy = dir.join("policy.toml");
    save(&policy, "# v1\n");
    let mut w = PolicyWatch::new(&policy);
    std::fs::write(dir.join("notes.txt"), "not the policy").unwrap();
    assert!(!seen(&mut w, Duration::from_millis(300)).await);
    std::fs::remove_file(&policy).unwrap();
    assert!(seen(&mut w, FAST).await, "the deletion was not seen");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_policy_directory_is_watched_with_its_files() {
    let dir = scratch("dir");
    let policy = dir.join("policy.d");
    std::fs::create_dir_all(policy.join("sub")).unwrap();
    std::fs::write(policy.join("a.toml"), "# a\n").unwrap();
    let mut w = PolicyWatch::new(&policy);
    assert!(w.is_inotify());
    std::fs::write(policy.join("b.toml"), "# b\n").unwrap();
    assert!(seen(&mut w, FAST).await, "a new file was not seen");
    std::fs::write(policy.join("a.toml"), "# a, longer\n").unwrap();
    assert!(seen(&mut w, FAST).await, "a write in place was not seen");
    // A subdirectory's new entry changes its modification time, as the poll saw.
    std::fs::write(policy.join("sub").join("c.toml"), "# c\n").unwrap();
    assert!(
        seen(&mut w, FAST).await,
        "a change in a subdirectory was not seen"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_path_that_cannot_be_watched_is_polled() {
    let dir = scratch("poll");
    let policy = dir.join("missing").join("policy.toml");
    let mut w = PolicyWatch::new(&policy);
    assert!(!w.is_inotify());
    std::fs::create_dir_all(policy.parent().unwrap()).unwrap();
    save(&policy, "# v1\n");
    assert!(seen(&mut w, Duration::from_secs(2)).await);
    std::fs::remove_dir_all(&dir).unwrap();
}
