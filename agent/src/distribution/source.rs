//! What the daemon calls instead of reading policy files itself: the policy (a TOML
//! file or directory, a bundle, or a directory holding `policy.bundle`) verified and
//! checked against rollback; once the daemon has applied it, the record of it (the
//! anti-rollback floor, `ward status`, a `policy-applied` event), and the fleet
//! lists of its bundle for the daemon to put in force.
use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use tokio::{
    sync::{mpsc, Notify},
    task::JoinHandle,
};
use tracing::{error, info, warn};

use super::{
    fleet::policy_texts,
    http::{self, Fetched, Gate},
    Bundle, BundleInfo, DistributionError, Fetcher, FleetLists, Floor, FloorFile, LastGood,
    TrustedKey, BUNDLE_FILE,
};
use crate::{
    config::AgentConfig,
    events::FlowRecord,
    policy::{self, Loaded},
    response::alert,
    state::SharedStatus,
};

/// A policy's files, `(name, text)`, in merge order.
type PolicyFiles = Vec<(String, String)>;

/// A policy read: itself, its bundle, its files, the bundle's fleet lists.
type Read = (Arc<Loaded>, Option<BundleInfo>, PolicyFiles, FleetLists);

/// A policy loaded: compiled hash, bundle, files (until they cannot be applied again
/// without a load: see [`Source::keep_files_of`]), the bundle's fleet lists.
type Remembered = (String, Option<BundleInfo>, Option<PolicyFiles>, FleetLists);

/// How many loaded policies are remembered, to name the bundle of the one applied.
const REMEMBERED: usize = 8;

/// The bundle `policy` names: itself when it ends in `.bundle`, its `policy.bundle`
/// when it is a directory holding one; `None` for an unsigned TOML policy.
pub fn bundle_path(policy: &Path) -> Option<PathBuf> {
    if policy.is_dir() {
        let bundle = policy.join(BUNDLE_FILE);
        return bundle.exists().then_some(bundle);
    }
    (policy.extension().is_some_and(|e| e == "bundle")).then(|| policy.to_owned())
}

/// Where `policy_url` stores the bundle it fetches: `policy` itself, or its
/// `policy.bundle` when `policy` is a directory.
fn download_path(policy: &Path) -> PathBuf {
    match policy.is_dir() {
        true => policy.join(BUNDLE_FILE),
        false => policy.to_owned(),
    }
}

/// `policy_url` until the poller starts: the fetcher, its interval, the first outcome.
type FirstFetch = (Fetcher, Duration, Result<Fetched, DistributionError>);

/// Fetches `url` once, off the runtime thread; a failure is fatal only when no
/// bundle is stored yet.
async fn first_fetch(
    config: &AgentConfig,
    url: &str,
    floor_file: Option<FloorFile>,
) -> anyhow::Result<FirstFetch> {
    let dest = download_path(&config.policy);
    let gate = Gate {
        trusted: config.trusted_keys.clone(),
        floor: floor_file,
    };
    let mut fetcher = Fetcher::new(
        url,
        config.ca_file.as_deref(),
        dest.clone(),
        config.poll_interval,
        gate,
    )?;
    let (fetcher, outcome) = tokio::task::spawn_blocking(move || {
        let outcome = fetcher.fetch();
        (fetcher, outcome)
    })
    .await?;
    match &outcome {
        Err(e) if dest.exists() => {
            warn!("{e}; starting with the bundle stored in {}", dest.display())
        }
        Err(e) => anyhow::bail!("{e}; and no bundle is stored in {} yet", dest.display()),
        Ok(_) => {}
    }
    Ok((fetcher, config.poll_interval, outcome))
}

/// The agent's policy source and what it knows of the policies it gave.
pub struct Source {
    policy: PathBuf,
    require_signature: bool,
    trusted: Vec<TrustedKey>,
    /// Where the floor is kept; none without `trusted_keys` (no bundle can be applied).
    floor_file: Option<FloorFile>,
    /// The highest bundle version applied on this host.
    floor: Option<Floor>,
    /// Policies loaded lately, newest last.
    loaded: VecDeque<Remembered>,
    /// Where the policy last put in force is kept for a start that cannot load one.
    last_good: LastGood,
    /// What the last policy loaded is made of, to load the next one quickly.
    cache: policy::LoadCache,
    /// The policy in force: compiled hash, bundle, generation.
    current: Option<(String, Option<BundleInfo>, u64)>,
    /// The fleet lists of the policy last recorded in force, until the
    /// daemon takes it ([`Source::take_fleet`]).
    fleet_due: Option<FleetLists>,
    /// `policy_url` until [`Source::attach`] starts polling it.
    first_fetch: Option<FirstFetch>,
    /// The `policy_url` poller, stopped on drop.
    poller: Option<JoinHandle<()>>,
    /// Where the bundle in force and the polling are shown, once attached.
    status: Option<SharedStatus>,
    /// Where `policy-applied` and `policy-refused` records go.
    alerts: mpsc::Sender<FlowRecord>,
}

impl Source {
    /// Opens the anti-rollback state and, with `policy_url`, fetches the bundle once
    /// (a stored bundle is used when the URL does not answer). `alerts` takes the
    /// `policy-applied` and `policy-refused` records.
    pub async fn open(
        config: &AgentConfig,
        alerts: mpsc::Sender<FlowRecord>,
    ) -> anyhow::Result<Source> {
        let mut floor = None;
        let floor_file = match config.trusted_keys.is_empty() {
            true => None,
            false => {
                let file = FloorFile::open(&config.state_dir)?;
                floor = file.load()?;
                file.check_writable()
                    .context("state_dir must be writable: the anti-rollback floor is kept there")?;
                Some(file)
            }
        };
        let first_fetch = match &config.policy_url {
            None => None,
            Some(url) => Some(first_fetch(config, url, floor_file.clone()).await?),
        };
        Ok(Source {
            policy: config.policy.clone(),
            require_signature: config.require_signature,
            trusted: config.trusted_keys.clone(),
            floor_file,
            floor,
            loaded: VecDeque::new(),
            last_good: LastGood::in_dir(&config.state_dir),
            cache: policy::LoadCache::default(),
            current: None,
            fleet_due: None,
            first_fetch,
            poller: None,
            status: None,
            alerts,
        })
    }

    /// Reports to `status` from now on, and starts polling `policy_url`; each new
    /// bundle the poll stores is notified to `stored`, when given (the daemon reloads
    /// on it unless its policy file watch sees the file change).
    pub fn attach(&mut self, status: &SharedStatus, stored: Option<Arc<Notify>>) {
        if let Ok(mut s) = status.write() {
            let d = &mut s.distribution;
            d.require_signature = self.require_signature;
            d.trusted_keys = self.trusted.iter().map(TrustedKey::id).collect();
            d.highest_version = self.floor.as_ref().map(|f| f.version);
        }
        if let Some((fetcher, interval, first)) = self.first_fetch.take() {
            http::report(&fetcher, &first, status);
            let poll = http::poll(fetcher, interval, status.clone(), stored);
            self.poller = Some(tokio::spawn(poll));
        }
        self.status = Some(status.clone());
    }

    /// Reads, verifies and checks the policy; its warnings are logged. On refusal,
    /// returns why, one message a line (and reports a `policy-refused` event). Only
    /// what changed since the last policy loaded (while it is held) is read again
    /// ([`policy::LoadCache`]).
    pub fn load(&mut self) -> Result<Arc<Loaded>, Vec<String>> {
        let (loaded, bundle, files, fleet) = match self.read() {
            Ok(read) => read,
            Err(messages) => {
                let generation = self.current.as_ref().map_or(0, |c| c.2);
                let reason = messages.join("\n");
                let _ = self
                    .alerts
                    .try_send(alert::policy_refused(reason, generation));
                return Err(messages);
            }
        };
        for w in &loaded.warnings {
            warn!("{w}");
        }
        let (read, tables) = self.cache.tables_read();
        info!("policy loaded: {read} of its {tables} tables read anew");
        let hash = loaded.compiled.hash.clone();
        self.loaded.retain(|(h, ..)| *h != hash);
        if self.loaded.len() == REMEMBERED {
            self.loaded.pop_front();
        }
        self.loaded
            .push_back((hash.clone(), bundle.clone(), Some(files), fleet.clone()));
        // The policy in force again, in another bundle (signed anew as a newer
        // version): nothing is published, but that bundle is what vouches for it now.
        if let Some((current, current_bundle, generation)) = self.current.clone() {
            if current == hash && current_bundle != bundle {
                self.record(hash, bundle, generation, Some(fleet));
            }
        }
        Ok(loaded)
    }

    /// Records that `loaded` is in force as `generation`: raises the anti-rollback
    /// floor to its bundle's version, shows it in the status, reports `policy-applied`.
    pub fn applied(&mut self, loaded: &Loaded, generation: u64) {
        let hash = loaded.compiled.hash.clone();
        let remembered = self.loaded.iter().find(|(h, ..)| *h == hash);
        let bundle = remembered.and_then(|(_, b, ..)| b.clone());
        let fleet = remembered.map(|(.., f)| f.clone());
        self.record(hash, bundle, generation, fleet);
    }

    /// The fleet lists of the policy recorded in force since the last call,
    /// if any: the daemon puts them in force. `None` when no policy was recorded since,
    /// or the one recorded was not loaded by this source (a fallback).
    pub fn take_fleet(&mut self) -> Option<FleetLists> {
        self.fleet_due.take()
    }

    /// Keeps `loaded`, in force and awaiting no confirmation, as the last good policy
    /// (the next start's fallback, and what a commit-confirmed start returns to), if
    /// this source gave it (not a fallback, whose file already holds it).
    pub fn keep_last_good(&self, loaded: &Loaded) {
        let hash = &loaded.compiled.hash;
        match self.loaded.iter().find(|(h, ..)| h == hash) {
            Some((_, _, Some(files), _)) => {
                if let Err(e) = self.last_good.store(hash, files) {
                    error!(
                        "{e}: the policy in force is not kept as the last good one for the next start"
                    );
                }
            }
            Some((_, _, None, _)) => warn!(
                "the files of policy {hash} are no longer held: it is not kept as the last good one"
            ),
            None => {}
        }
    }

    /// Forgets the files of the policies remembered but those hashed in `keep`: only
    /// a policy that may be applied again without a load (the policy in force, the
    /// one a commit-confirmed roll-back returns to) needs them, to be kept as the last
    /// good one; each is as large as the policy text.
    pub fn keep_files_of(&mut self, keep: &[&str]) {
        for (hash, _, files, _) in &mut self.loaded {
            if !keep.contains(&hash.as_str()) {
                *files = None;
            }
        }
    }

    /// Where the last good policy is kept.
    pub fn last_good(&self) -> &LastGood {
        &self.last_good
    }

    fn record(
        &mut self,
        hash: String,
        bundle: Option<BundleInfo>,
        generation: u64,
        fleet: Option<FleetLists>,
    ) {
        if fleet.is_some() {
            self.fleet_due = fleet;
        }
        if let Some(b) = &bundle {
            if self.floor.as_ref().is_none_or(|f| b.version > f.version) {
                let floor = Floor::of(b);
                let stored = self.floor_file.as_ref().map(|f| f.store(&floor));
                if let Some(Err(e)) = stored {
                    error!("{e}: version {} is not saved as the anti-rollback floor; it holds until the agent stops", b.version);
                }
                self.floor = Some(floor);
            }
        }
        match &bundle {
            Some(b) => info!(
                "policy-applied: generation={generation} policy={hash} bundle version={} key={} sha256={}",
                b.version, b.key_id, b.digest
            ),
            None => info!("policy-applied: generation={generation} policy={hash} unsigned"),
        }
        if let Some(status) = &self.status {
            if let Ok(mut s) = status.write() {
                s.distribution.bundle = bundle.clone();
                s.distribution.highest_version = self.floor.as_ref().map(|f| f.version);
            }
        }
        let record = alert::policy_applied(&hash, generation, bundle.clone());
        let _ = self.alerts.try_send(record);
        self.current = Some((hash, bundle, generation));
    }

    /// The policy, the bundle it came from, and that bundle's fleet lists
    /// (empty for an unsigned policy: only a signed bundle carries one).
    fn read(&mut self) -> Result<Read, Vec<String>> {
        let Some(path) = bundle_path(&self.policy) else {
            if self.require_signature {
                return Err(vec![
                    DistributionError::Unsigned(self.policy.clone()).to_string()
                ]);
            }
            let messages = |diags: Vec<policy::Diagnostic>| -> Vec<String> {
                diags.iter().map(ToString::to_string).collect()
            };
            let files = policy::read_texts(std::slice::from_ref(&self.policy)).map_err(messages)?;
            return self
                .cache
                .load_texts(&files)
                .map(|loaded| (loaded, None, files, FleetLists::default()))
                .map_err(messages);
        };
        let bundle = Bundle::read(&path).map_err(|e| vec![e.to_string()])?;
        let refused = |e: &dyn std::fmt::Display| {
            format!("{} (version {}): {e}", path.display(), bundle.version)
        };
        let info = bundle
            .verify(&self.trusted)
            .map_err(|e| vec![refused(&e)])?;
        if let Some(floor) = &self.floor {
            floor.admits(&info).map_err(|e| vec![refused(&e)])?;
        }
        let files: PolicyFiles = policy_texts(&bundle.files)
            .into_iter()
            .map(|(name, text)| (name.to_owned(), text.to_owned()))
            .collect();
        let loaded = self
            .cache
            .load_texts(&files)
            .map_err(|diags| diags.iter().map(|d| refused(d)).collect::<Vec<_>>())?;
        let (fleet, warnings) =
            FleetLists::of_bundle(&bundle, &loaded.policy, SystemTime::now())
                .map_err(|diags| diags.iter().map(|d| refused(d)).collect::<Vec<_>>())?;
        for w in &warnings {
            warn!("{}", refused(w));
        }
        Ok((loaded, Some(info), files, fleet))
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Some(poller) = self.poller.take() {
            poller.abort();
        }
    }
}
