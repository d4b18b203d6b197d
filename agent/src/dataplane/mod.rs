//! The kernel side as the agent sees it: load the programs with their pinned maps,
//! write policies into the maps, attach to interfaces, detach.
mod attach;
mod batch;
mod bpffs;
mod breakglass;
mod counters;
mod coverage;
mod failsafe;
mod host;
mod layout;
mod netlink;
mod policy_maps;
mod quarantine;
mod slot_entries;
mod slots;
#[cfg(feature = "test-run")]
mod test_run;
mod uninstall;
mod watch;

use std::path::{Path, PathBuf};

use aya::{
    maps::{Array, MapData, MapError, RingBuf},
    programs::ProgramError,
    Ebpf, EbpfError, EbpfLoader,
};
use ward_common::{
    log_level, map_names, program_names, Config, OwnFilter, CONNTRACK_CAPACITY, FLAG_AUDIT,
    FLAG_BREAKGLASS, FLAG_GATEWAY,
};

use attach::Attachment;
pub use counters::{CounterSnapshot, Counters, SharedCounters, TableFill, ZonePairTotals};
pub use coverage::Coverage;
pub use host::Synced;
pub use layout::Mismatch;
pub use quarantine::{FleetOrigin, QuarantineEntry, FLEET_BY};
pub use slots::NextSlot;
use tracing::{info, warn};
pub use uninstall::{uninstall, Removed};
pub use watch::{check_interfaces, Change, Hook};

use crate::{
    config::{AgentConfig, LogLevel, Role},
    policy::Mode,
};

/// The compiled kernel programs (built by `build.rs` from `agent-ebpf`).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ward"));

/// Why the dataplane could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// bpffs could not be mounted or the pin directory created.
    #[error("pin directory {path}")]
    PinDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The object could not be loaded (maps created or adopted).
    #[error("loading the kernel programs")]
    Load(#[from] EbpfError),
    /// The pinned connection table has another capacity than the one asked for.
    /// A program was refused by the verifier or could not be attached.
    #[error("program {name}")]
    Program {
        /// The program.
        name: &'static str,
        /// The cause.
        source: ProgramError,
    },
    /// A map could not be read or written.
    #[error("map {name}")]
    Map {
        /// The map.
        name: &'static str,
        /// The cause.
        source: MapError,
    },
    /// Entries of a map could not be written or removed (by batch or one by one).
    #[error("map {name}")]
    Batch {
        /// The map.
        name: &'static str,
        /// The cause.
        source: batch::BatchError,
    },
    /// `[response] quarantine_allow` names a zone the policy does not have.
    #[error("[response] quarantine_allow names zone `{0}`, which the policy does not define")]
    UnknownZone(String),
    /// A quarantine request that cannot be carried out.
    #[error("{0}")]
    Quarantine(String),
    /// The object lacks a map or program it should have.
    #[error("the kernel object has no {0}")]
    Missing(&'static str),
    /// The kernel object could not be compared with the pinned maps.
    #[error("{0}")]
    Layout(String),
    /// Maps pinned by an earlier build have another layout than this build's.
    #[error(
        "maps pinned in {pin_dir} by an earlier agent have another layout: {}. Nothing was \
         changed: the programs already attached keep enforcing with their maps. To go on, \
         start with `ward run --reset-state` (the maps listed start afresh, e.g. tracked \
         connections are judged again by the policy; no enforcement gap), or configure \
         what is pinned (`conntrack_entries`), or run the earlier build again",
        list_mismatches(.mismatches)
    )]
    Incompatible {
        /// The pin directory.
        pin_dir: PathBuf,
        /// The maps that differ.
        mismatches: Vec<Mismatch>,
    },
    /// An interface could not be enforced on.
    #[error("interface {interface}: {message}")]
    Interface {
        /// The interface.
        interface: String,
        /// What went wrong.
        message: String,
    },
}

fn list_mismatches(m: &[Mismatch]) -> String {
    m.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How [`Dataplane::load_with`] sizes the maps and treats what an earlier agent left
/// pinned; the default is the agent's.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// Capacity of each connection table (IPv4, IPv6); `CONNTRACK_CAPACITY` when `None`.
    pub conntrack_entries: Option<u32>,
    /// Unpin maps whose layout differs from this build's, so that fresh ones are made
    /// (the old programs keep theirs until their links are updated); else refuse.
    pub reset_incompatible: bool,
}

/// Loaded kernel programs and their pinned maps.
pub struct Dataplane {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    attachments: Vec<Attachment>,
    /// Zones quarantined hosts may still reach (names, resolved per policy).
    quarantine_allow: Vec<String>,
    /// The configured interfaces and what the watch found among them.
    watch: watch::Watch,
    /// What each slot of the zone and rule maps holds, when this dataplane wrote it
    /// (unknown after a load, or a write that failed): a reload writes the difference.
    held: [Option<std::sync::Arc<slot_entries::SlotEntries>>; 2],
}

impl Dataplane {
    /// Loads the programs; maps already pinned in `pin_dir` are adopted with their
    /// contents (policy in force, tracked connections), missing ones are created and pinned.
    pub fn load(pin_dir: &Path) -> Result<Self, DataplaneError> {
        Self::load_with(pin_dir, &LoadOptions::default())
    }

    /// [`Dataplane::load`] with `options`. Pinned maps whose layout (or capacity)
    /// differs from what this build and `options` ask for are refused, or with
    /// `reset_incompatible` replaced by fresh ones.
    pub fn load_with(pin_dir: &Path, options: &LoadOptions) -> Result<Self, DataplaneError> {
        let pin_error = |source| DataplaneError::PinDir {
            path: pin_dir.to_owned(),
            source,
        };
        bpffs::ensure_pin_dir(pin_dir).map_err(pin_error)?;
        let conntrack_entries = options.conntrack_entries.unwrap_or(CONNTRACK_CAPACITY);
        let sizes = [
            (map_names::CONNTRACK_V4, conntrack_entries),
            (map_names::CONNTRACK_V6, conntrack_entries),
        ];
        let mismatches = layout::mismatches(pin_dir, OBJECT, &sizes)?;
        if !mismatches.is_empty() {
            if !options.reset_incompatible {
                return Err(DataplaneError::Incompatible {
                    pin_dir: pin_dir.to_owned(),
                    mismatches,
                });
            }
            for m in &mismatches {
                warn!("--reset-state: replacing pinned map {m}");
                std::fs::remove_file(pin_dir.join(&m.name)).map_err(pin_error)?;
            }
        }
        // A fresh policy map (zone trie or hash, rule table) is empty whatever the kept
        // configuration's digests say: they must not spare the policy its rewrite.
        let policy_replaced = mismatches
            .iter()
            .any(|m| policy_maps::POLICY_MAPS.contains(&m.name.as_str()));
        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(pin_dir)
            .map_max_entries(map_names::CONNTRACK_V4, conntrack_entries)
            .map_max_entries(map_names::CONNTRACK_V6, conntrack_entries)
            .load(OBJECT)?;
        load_programs(&mut ebpf)?;
        for name in layout::unpin_retired(pin_dir).map_err(pin_error)? {
            info!("unpinned {name}: an earlier build's map, which this build does not use");
        }
        let mut dataplane = Self {
            ebpf,
            pin_dir: pin_dir.to_owned(),
            attachments: Vec::new(),
            quarantine_allow: Vec::new(),
            watch: Default::default(),
            held: [None, None],
        };
        let mut config = dataplane.config()?;
        // An earlier build (or an older one since) may have written the slots without
        // keeping these bits: until this agent writes or vouches for a slot, its zone
        // lookup consults every place.
        config.zone_skip = [0; 2];
        if policy_replaced {
            config.slot_digest = [0; 2];
            warn!("--reset-state replaced a policy map: the policy will be written again");
        }
        dataplane.set_config(config)?;
        // Nor may a filter an earlier build kept (or did not keep) in front of the
        // own addresses spare them their lookup before this agent writes them.
        dataplane.set_own_filter(OwnFilter::default())?;
        Ok(dataplane)
    }

    /// The agent settings the programs read.
    pub fn config(&self) -> Result<Config, DataplaneError> {
        let map = self
            .ebpf
            .map(map_names::CONFIG)
            .ok_or(DataplaneError::Missing(map_names::CONFIG))?;
        let array: Array<_, Config> = Array::try_from(map).map_err(map_err(map_names::CONFIG))?;
        array.get(&0, 0).map_err(map_err(map_names::CONFIG))
    }

    fn set_config(&mut self, config: Config) -> Result<(), DataplaneError> {
        let map = self
            .ebpf
            .map_mut(map_names::CONFIG)
            .ok_or(DataplaneError::Missing(map_names::CONFIG))?;
        let mut array: Array<_, Config> =
            Array::try_from(map).map_err(map_err(map_names::CONFIG))?;
        array.set(0, config, 0).map_err(map_err(map_names::CONFIG))
    }

    /// Sets what the programs read besides the policy: role, mode, event settings.
    pub fn configure(&mut self, agent: &AgentConfig) -> Result<(), DataplaneError> {
        let mut config = self.config()?;
        // Break-glass grants in force stay in force.
        config.flags &= FLAG_BREAKGLASS;
        if agent.role == Role::Gateway {
            config.flags |= FLAG_GATEWAY;
        }
        if agent.mode == Mode::Audit {
            config.flags |= FLAG_AUDIT;
        }
        config.log_level = match agent.log_level {
            LogLevel::Off => log_level::OFF,
            LogLevel::Denied => log_level::DENIED,
            LogLevel::DeniedAndNewAllowed => log_level::DENIED_AND_NEW_ALLOWED,
        };
        config.events_per_source = agent.events.per_source();
        config.events_per_cpu = agent.events.per_cpu(possible_cpus());
        config.flows_per_source = agent.limits.new_flows_per_source;
        config.flow_burst = agent.limits.new_flow_burst;
        self.quarantine_allow = agent.response.quarantine_allow.clone();
        failsafe::write(&mut self.ebpf, &agent.failsafe, &mut config)?;
        self.set_config(config)
    }

    /// Takes the event ring buffer out of the loader, for the event reader.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, DataplaneError> {
        let name = map_names::EVENTS;
        let map = self
            .ebpf
            .take_map(name)
            .ok_or(DataplaneError::Missing(name))?;
        RingBuf::try_from(map).map_err(map_err(name))
    }

    /// Attaches to every named interface there is; on failure, what was attached is
    /// detached. Named interfaces that do not exist yet and those matching the
    /// patterns among `interfaces` are attached by [`Dataplane::reconcile`], which
    /// also keeps the named ones attached.
    pub fn attach(&mut self, interfaces: &[String]) -> Result<(), DataplaneError> {
        self.watch.wanted = watch::Wanted::new(interfaces)?;
        for interface in self.watch.wanted.names().to_vec() {
            if nix::net::if_::if_nametoindex(interface.as_str()).is_err() {
                continue;
            }
            match attach::attach(&mut self.ebpf, &self.pin_dir, &interface) {
                Ok(a) => self.attachments.push(a),
                Err(e) => {
                    self.detach();
                    return Err(e);
                }
            }
        }
        self.sync_attached().map(drop)
    }

    /// Detaches from every interface and removes the link pins; enforcement stops.
    pub fn detach(&mut self) {
        for a in self.attachments.drain(..) {
            a.detach();
        }
        if let Err(e) = self.sync_attached() {
            warn!("{:#}", anyhow::Error::from(e));
        }
    }

    /// The underlying maps and programs, for counters and tests.
    pub fn ebpf(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }
}

/// The number of CPUs the kernel may run the programs on (each has its event budget).
fn possible_cpus() -> usize {
    aya::util::nr_cpus().unwrap_or_else(|(path, e)| {
        warn!("{path}: {e}; the event budget is not split between CPUs");
        1
    })
}

fn map_err(name: &'static str) -> impl Fn(MapError) -> DataplaneError {
    move |source| DataplaneError::Map { name, source }
}

/// Loads (verifies) the XDP and TC programs, each in a thread of its own: the
/// kernel's verifier runs in the loading thread, and the two programs share no state
/// while it does, so a machine with two CPUs verifies both in the time of one.
fn load_programs(ebpf: &mut aya::Ebpf) -> Result<(), DataplaneError> {
    let names = [program_names::XDP_INGRESS, program_names::TC_EGRESS];
    let programs: Vec<(&'static str, _)> = (ebpf.programs_mut())
        .filter_map(|(name, program)| Some((*names.iter().find(|n| **n == name)?, program)))
        .collect();
    for name in names {
        if !programs.iter().any(|(n, _)| *n == name) {
            return Err(DataplaneError::Missing(name));
        }
    }
    std::thread::scope(|s| {
        let loads: Vec<_> = (programs.into_iter())
            .map(|(name, program)| {
                s.spawn(move || {
                    let loaded = match program {
                        aya::programs::Program::Xdp(p) => p.load(),
                        aya::programs::Program::SchedClassifier(p) => p.load(),
                        _ => return Err(DataplaneError::Missing(name)),
                    };
                    loaded.map_err(|source| DataplaneError::Program { name, source })
                })
            })
            .collect();
        for load in loads {
            match load.join() {
                Ok(result) => result?,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(())
    })
}
