//! Noticing that the policy files changed: an inotify watch (the `notify` crate) on the
//! policy path and the directory holding it, so that a write, an editor's rename into
//! place, a deletion or a new file is seen within milliseconds; the 250 ms poll where
//! a watch cannot be set up, so that a change is never missed.
//!
//! Either way a change is what the poll always took it to be: a new fingerprint (each
//! entry's path, size and modification time) of the policy path. Events only say when
//! to look again, so events about other files, or a burst of them for one write, cost
//! one look and no reload.
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::{sync::Notify, time::Instant};
use tracing::{info, warn};

/// How often the policy files are checked for changes where they cannot be watched.
pub(super) const POLICY_POLL: Duration = Duration::from_millis(250);
/// A change is looked at once its events have stopped for this long (a burst: the
/// temporary file, its writes and the rename of one save)…
const QUIET: Duration = Duration::from_millis(5);
/// …or once this long has passed since the first of them.
const QUIET_AT_MOST: Duration = Duration::from_millis(50);

/// Each entry's path, size and modification time: what identifies the policy files' state.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Why the policy files cannot be watched (the poll takes over).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// inotify refused (no instance or watch left, no directory to watch, …).
    #[error("cannot watch {path}: {source}")]
    Notify {
        /// The path that could not be watched.
        path: PathBuf,
        /// The cause.
        source: notify::Error,
    },
}

/// What tells the daemon that the policy files changed.
pub(super) struct PolicyWatch {
    policy: PathBuf,
    fingerprint: Fingerprint,
    how: How,
}

enum How {
    /// inotify: `events` is notified on every event about the policy path.
    Inotify {
        watcher: RecommendedWatcher,
        events: Arc<Notify>,
        /// An event was taken and the fingerprint not looked at yet (kept across a
        /// cancelled [`PolicyWatch::changed`]).
        pending: bool,
    },
    Poll(tokio::time::Interval),
}

impl PolicyWatch {
    /// Watches `policy` (a file or a directory); polls it when it cannot be watched.
    pub(super) fn new(policy: &Path) -> Self {
        // Events name paths as the watch was given them: absolute, so that they compare
        // with the policy path however the configuration named it.
        let policy = &std::path::absolute(policy).unwrap_or_else(|_| policy.to_owned());
        let fingerprint = fingerprint(policy);
        let how = match watch(policy) {
            Ok((watcher, events)) => {
                info!("watching {} for changes (inotify)", policy.display());
                How::Inotify {
                    watcher,
                    events,
                    pending: false,
                }
            }
            Err(e) => {
                warn!(
                    "{e}; the policy files are polled every {} ms instead",
                    POLICY_POLL.as_millis()
                );
                How::Poll(tokio::time::interval(POLICY_POLL))
            }
        };
        PolicyWatch {
            policy: policy.to_owned(),
            fingerprint,
            how,
        }
    }

    /// Whether changes are seen by inotify (else by the poll).
    #[cfg(test)]
    fn is_inotify(&self) -> bool {
        matches!(self.how, How::Inotify { .. })
    }

    /// Resolves once the policy files changed since the last time it resolved (or
    /// since [`PolicyWatch::new`]). Cancel-safe: an event taken by a cancelled call is
    /// looked at by the next one.
    pub(super) async fn changed(&mut self) {
        loop {
            match &mut self.how {
                How::Inotify {
                    watcher,
                    events,
                    pending,
                } => {
                    if !*pending {
                        events.notified().await;
                        *pending = true;
                    }
                    quiet(events).await;
                    *pending = false;
                    // A policy directory made (or made anew) since is watched too.
                    if self.policy.is_dir() {
                        let _ = watcher.watch(&self.policy, RecursiveMode::Recursive);
                    }
                }
                How::Poll(interval) => {
                    interval.tick().await;
                }
            }
            let now = fingerprint(&self.policy);
            if now != self.fingerprint {
                self.fingerprint = now;
                return;
            }
        }
    }
}

/// Waits until no event came for [`QUIET`], at most [`QUIET_AT_MOST`].
async fn quiet(events: &Notify) {
    let until = Instant::now() + QUIET_AT_MOST;
    loop {
        tokio::select! {
            _ = events.notified() => {
                if Instant::now() >= until {
                    return;
                }
            }
            _ = tokio::time::sleep(QUIET) => return,
        }
    }
}

/// Watches the directory holding `policy` (its entries: renames into place, deletion,
/// creation) and `policy` itself when it is a directory (its files, recursively).
fn watch(policy: &Path) -> Result<(RecommendedWatcher, Arc<Notify>), WatchError> {
    let events = Arc::new(Notify::new());
    let wanted = policy.to_owned();
    let notify = events.clone();
    let handler = move |event: notify::Result<notify::Event>| match event {
        // The agent's own reads are no change.
        Ok(e) if e.kind.is_access() => {}
        Ok(e) if !e.need_rescan() && !e.paths.iter().any(|p| p.starts_with(&wanted)) => {}
        // An error (or a lost event) may hide a change: look.
        _ => notify.notify_one(),
    };
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| WatchError::Notify { path, source }
    };
    let mut watcher = notify::recommended_watcher(handler).map_err(err(policy))?;
    let parent = policy.parent().unwrap_or(Path::new("/"));
    watcher
        .watch(parent, RecursiveMode::NonRecursive)
        .map_err(err(parent))?;
    if policy.is_dir() {
        watcher
            .watch(policy, RecursiveMode::Recursive)
            .map_err(err(policy))?;
    }
    Ok((watcher, events))
}

/// The fingerprint of `path`: of each entry when it is a directory, else of itself.
fn fingerprint(path: &Path) -> Fingerprint {
    let files: Vec<PathBuf> = match std::fs::read_dir(path) {
        Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => vec![path.to_owned()],
    };
    let mut out: Vec<_> = files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let size = meta.as_ref().map_or(0, |m| m.len());
            (f, size, meta.and_then(|m| m.modified().ok()))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests;
