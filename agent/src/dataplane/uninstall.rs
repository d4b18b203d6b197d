//! Removing enforcement: the pinned links (and netlink classifiers below 6.6), then
//! the pinned maps. `ward uninstall` is the only caller besides
//! `ward run --detach-on-exit`.
use std::path::Path;

use aya::programs::{links::PinnedLink, tc, TcAttachType};
use ward_common::program_names;

use super::DataplaneError;

/// Prefix of the pinned XDP links' file names; the interface follows.
pub const XDP_LINK_PREFIX: &str = "link_xdp_";
/// Prefix of the pinned TC links' file names; the interface follows.
pub const TC_LINK_PREFIX: &str = "link_tc_";

/// What [`uninstall`] removed.
#[derive(Debug, Default)]
pub struct Removed {
    /// Interfaces that had a Ward program, sorted.
    pub interfaces: Vec<String>,
    /// Whether the pin directory (maps: policy, connections, counters) was removed.
    pub maps: bool,
}

/// Detaches Ward from every interface it is pinned on (and from `interfaces`, for
/// classifiers attached through netlink, which have no link to pin; patterns there
/// match nothing), then removes
/// `pin_dir` with the maps in it. Traffic is no longer filtered afterwards.
pub fn uninstall(pin_dir: &Path, interfaces: &[String]) -> Result<Removed, DataplaneError> {
    let mut removed = Removed::default();
    let entries = match std::fs::read_dir(pin_dir) {
        Ok(entries) => entries.flatten().collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(DataplaneError::PinDir {
                path: pin_dir.to_owned(),
                source,
            })
        }
    };
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let interface = name
            .strip_prefix(XDP_LINK_PREFIX)
            .or_else(|| name.strip_prefix(TC_LINK_PREFIX));
        if let Some(interface) = interface {
            unpin_link(&entry.path());
            removed.interfaces.push(interface.to_owned());
        }
    }
    // Below 6.6 the classifier has no link: it goes by name, from the interfaces
    // named in the configuration and those that had a pinned XDP link.
    let mut named: Vec<String> = interfaces.to_vec();
    named.extend(removed.interfaces.iter().cloned());
    named.sort();
    named.dedup();
    for interface in named {
        if detach_classifier(&interface) {
            removed.interfaces.push(interface);
        }
    }
    removed.interfaces.sort();
    removed.interfaces.dedup();
    if pin_dir.exists() {
        std::fs::remove_dir_all(pin_dir).map_err(|source| DataplaneError::PinDir {
            path: pin_dir.to_owned(),
            source,
        })?;
        removed.maps = true;
    }
    Ok(removed)
}

/// Removes a pinned link; as its last reference, that detaches its program.
pub fn unpin_link(pin: &Path) {
    if let Ok(link) = PinnedLink::from_pin(pin) {
        if let Ok(fd_link) = link.unpin() {
            drop(fd_link);
        }
    }
    let _ = std::fs::remove_file(pin);
}

/// Removes Ward's netlink-attached egress classifier from `interface` (kernels below
/// 6.6); whether there was one.
pub fn detach_classifier(interface: &str) -> bool {
    tc::qdisc_detach_program(interface, TcAttachType::Egress, program_names::TC_EGRESS).is_ok()
}
