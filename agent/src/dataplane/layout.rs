//! Whether the maps an earlier build pinned can be adopted by this build's programs.
//!
//! aya adopts a pinned map by name without looking at it; a map whose key or value
//! layout changed between builds would be read as garbage. Each pinned map is compared
//! with this build's definition of it before anything is loaded.
use std::{fmt, path::Path};

use aya::maps::MapInfo;
use aya_obj::maps::PinningType;

use super::DataplaneError;

/// Maps an earlier build pinned that this build no longer defines: the rule trie
/// (`WARD_RULES`), which the rule pair hash and the range array replaced.
pub const RETIRED: [&str; 1] = ["WARD_RULES"];

/// Unpins the [`RETIRED`] maps found in `pin_dir` and returns their names. Called once
/// this build's maps are in place: a program of the earlier build still attached holds
/// its own reference to such a map until it is swapped out, so nothing it reads goes
/// away under it, and the map's memory is freed with its last user.
pub fn unpin_retired(pin_dir: &Path) -> std::io::Result<Vec<&'static str>> {
    let mut unpinned = Vec::new();
    for name in RETIRED {
        match std::fs::remove_file(pin_dir.join(name)) {
            Ok(()) => unpinned.push(name),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(unpinned)
}

/// The shape of a map: what must match for its contents to mean the same thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity (bytes for a ring buffer).
    pub max_entries: u32,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "type {}, key {} B, value {} B, {} entries",
            self.map_type, self.key_size, self.value_size, self.max_entries
        )
    }
}

/// A pinned map this build cannot adopt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The map (its pin's file name).
    pub name: String,
    /// What is pinned.
    pub pinned: Shape,
    /// What this build defines.
    pub expected: Shape,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (pinned: {}; this build: {})",
            self.name, self.pinned, self.expected
        )
    }
}

/// The pinned maps in `pin_dir` whose shape differs from their definition in `object`;
/// `max_entries` overrides the object's capacities as the loader will.
pub fn mismatches(
    pin_dir: &Path,
    object: &[u8],
    max_entries: &[(&str, u32)],
) -> Result<Vec<Mismatch>, DataplaneError> {
    let object = aya_obj::Object::parse(object)
        .map_err(|e| DataplaneError::Layout(format!("parsing the kernel object: {e}")))?;
    let mut out = Vec::new();
    for (name, map) in &object.maps {
        if map.pinning() != PinningType::ByName {
            continue;
        }
        let pin = pin_dir.join(name);
        if !pin.exists() {
            continue;
        }
        let info = MapInfo::from_pin(&pin)
            .map_err(|e| DataplaneError::Layout(format!("reading {}: {e}", pin.display())))?;
        let expected = Shape {
            map_type: map.map_type(),
            key_size: map.key_size(),
            value_size: map.value_size(),
            max_entries: max_entries
                .iter()
                .find(|(n, _)| n == name)
                .map_or(map.max_entries(), |(_, n)| *n),
        };
        let pinned = Shape {
            map_type: info.map_type().map_or(u32::MAX, |t| t as u32),
            key_size: info.key_size(),
            value_size: info.value_size(),
            max_entries: info.max_entries(),
        };
        if pinned != expected {
            out.push(Mismatch {
                name: name.clone(),
                pinned,
                expected,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
