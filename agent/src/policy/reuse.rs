//! Loading a policy again when only a few of its tables changed (the daemon's reloads):
//! each file is cut into the pieces `sections.rs` reads one at a time, and a piece
//! whose text (its SHA-256) was a piece of the policy last loaded is not parsed or
//! checked again: its zone or rule is taken from that policy, only its place (file,
//! line, column) worked out anew. The other pieces are read and checked as the cold
//! load does; the prefixes of the zones read anew are checked against every other
//! zone's, and nothing is checked again across zones when none was.
//!
//! Only a policy that loads is remembered, and only while the caller holds it (a
//! [`Weak`] reference: the cache keeps no copy of it). A load that is not a clean
//! success this way (any error, any file `sections.rs` declines) is done again by the
//! cold path, whose verdict and diagnostics are the ones returned.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use sha2::{Digest, Sha256};
use toml::Spanned;

use super::diagnostic::Source;
use super::raw::RawRule;
use super::{check, sections, Diagnostic, Loaded, Policy, Zone, ZoneSet};

/// A piece's text, by its SHA-256.
type Key = [u8; 32];

/// What one piece of a file became in the policy last loaded.
#[derive(Debug)]
struct Piece {
    /// Where in the piece what it became is placed (the zone's name, the rule's header).
    at: usize,
    became: Became,
}

#[derive(Debug)]
enum Became {
    /// The zone of this name.
    Zone(Box<str>),
    /// The rule of this index.
    Rule(usize),
}

/// The pieces of the policy last loaded, to load the next one without reading again
/// what did not change. [`LoadCache::load_texts`] gives what [`super::load_texts`]
/// gives: the same policy, warnings and errors.
#[derive(Debug, Default)]
pub struct LoadCache {
    /// The policy last loaded, while the caller holds it.
    last: Weak<Loaded>,
    /// What each piece of its files became in it.
    pieces: HashMap<Key, Piece>,
    /// The tables of the last load read anew, and all its tables.
    read: (usize, usize),
}

impl LoadCache {
    /// Loads a policy from in-memory files `(name, text)`, merged in the given order,
    /// as [`super::load_texts`] does, reusing what did not change since the last policy
    /// this cache loaded (if it is still held). A policy equal to that one is returned
    /// as that one.
    pub fn load_texts<N: AsRef<str>, T: AsRef<str>>(
        &mut self,
        files: &[(N, T)],
    ) -> Result<Arc<Loaded>, Vec<Diagnostic>> {
        if files.is_empty() {
            return super::load_texts(files).map(Arc::new);
        }
        let sources: Vec<Source> = files
            .iter()
            .map(|(name, text)| Source::new(name.as_ref().into(), text.as_ref().to_owned()))
            .collect();
        let last = self.last.upgrade();
        let empty = HashMap::new();
        let known = last.as_ref().map_or(&empty, |_| &self.pieces);
        // Each file cut once: its pieces, the first of which (the keys before any
        // header) is no table.
        let cut: Vec<Vec<(usize, &str)>> = sources.iter().map(sections::pieces).collect();
        let tables = cut.iter().map(|p| p.len() - 1).sum();
        let warmed = warm(&sources, &cut, last.as_deref(), known);
        drop(cut);
        let (loaded, pieces, read) = match warmed {
            Some((loaded, pieces, read)) => (loaded, pieces, read),
            None => {
                let loaded = super::load_sources(&sources, Vec::new())?;
                (loaded, HashMap::new(), tables)
            }
        };
        let loaded = match last {
            Some(last) if last.compiled.hash == loaded.compiled.hash && *last == loaded => last,
            _ => Arc::new(loaded),
        };
        self.last = Arc::downgrade(&loaded);
        self.pieces = pieces;
        self.read = (read, tables);
        Ok(loaded)
    }

    /// How many tables (`[zones.NAME]`, `[[allow]]`, any other) the last policy
    /// loaded had, and how many of them were read anew: all of them when it was
    /// loaded cold.
    pub fn tables_read(&self) -> (usize, usize) {
        self.read
    }
}

/// A rule of the policy being loaded, before the zones are all known.
enum Pending<'a> {
    /// Read anew from `source`.
    Read(&'a Source, Box<Spanned<RawRule>>),
    /// The rule of this index in the last policy, placed at this byte of `source`.
    Kept(&'a Source, usize, usize),
}

/// The policy of `sources` (cut into pieces by [`sections::pieces`]: `cut`, file by
/// file) loaded with the pieces `known` from `last`, and what each of its pieces
/// became; `None` when that cannot be told apart from the cold load's success (an
/// error, a piece of another shape): the cold load says. Also gives how many pieces
/// were read anew.
fn warm(
    sources: &[Source],
    cut: &[Vec<(usize, &str)>],
    last: Option<&Loaded>,
    known: &HashMap<Key, Piece>,
) -> Option<(Loaded, HashMap<Key, Piece>, usize)> {
    let mut pieces = HashMap::with_capacity(known.len());
    let mut read = 0;
    let (mut zones, mut read_zones) = (Vec::new(), Vec::new());
    let mut rules = Vec::new();
    for (source, pieces_of) in sources.iter().zip(cut) {
        for (i, &(base, text)) in pieces_of.iter().enumerate() {
            if i == 0 {
                let (_, diags) = sections::read_piece(source, true, base, text)?;
                if !diags.is_empty() {
                    return None;
                }
                continue;
            }
            let key: Key = Sha256::digest(text.as_bytes()).into();
            let piece = match (known.get(&key), last) {
                (Some(piece), Some(last)) => {
                    let place = base + piece.at;
                    let became = match &piece.became {
                        Became::Zone(name) => {
                            let id = last.policy.zone_id(name)?.checked_sub(1)?;
                            let mut zone = last.policy.zones.get(id as usize)?.clone();
                            zone.origin = source.origin(place);
                            zones.push(zone);
                            Became::Zone(name.clone())
                        }
                        Became::Rule(index) => {
                            rules.push(Pending::Kept(source, *index, place));
                            Became::Rule(rules.len() - 1)
                        }
                    };
                    Piece {
                        at: piece.at,
                        became,
                    }
                }
                _ => {
                    read += 1;
                    let (raw, diags) = sections::read_piece(source, false, base, text)?;
                    if !diags.is_empty() {
                        return None;
                    }
                    if let Some((name, zone)) = raw.zones.first() {
                        read_zones.push(zones.len());
                        zones.push(check::lone_zone(source, name, zone)?);
                        let became = Became::Zone(name.get_ref().as_str().into());
                        let at = name.span().start - base;
                        Piece { at, became }
                    } else {
                        let rule = raw.allow.into_iter().next()?;
                        let at = rule.span().start - base;
                        rules.push(Pending::Read(source, Box::new(rule)));
                        let became = Became::Rule(rules.len() - 1);
                        Piece { at, became }
                    }
                }
            };
            pieces.insert(key, piece);
        }
    }
    let policy = checked_zones(zones, &read_zones)?;
    let (policy, mentioned) = checked_rules(policy, rules, last)?;
    let diags = check::policy_warnings(&policy, &mentioned, true);
    let loaded = super::placed(sources, super::finish(sources, policy, diags, last)).ok()?;
    Some((loaded, pieces, read))
}

/// The zones, sorted by name, as a policy without rules; `None` when a name or a
/// prefix is in two of them. The zones not at `read` (taken from the last policy)
/// have no prefix in common: only those read anew are checked against the others.
fn checked_zones(mut zones: Vec<Zone>, read: &[usize]) -> Option<Policy> {
    let mut names = HashSet::with_capacity(zones.len());
    if !zones.iter().all(|z| names.insert(z.name.as_str())) {
        return None;
    }
    drop(names);
    if !read.is_empty() {
        let count = read.iter().map(|&i| zones[i].cidrs.len()).sum();
        let mut new =
            HashSet::with_capacity_and_hasher(count, foldhash::fast::RandomState::default());
        let all_new = read.iter().flat_map(|&i| zones[i].cidrs.iter());
        if !all_new.into_iter().all(|net| new.insert(*net)) {
            return None;
        }
        let kept = zones
            .iter()
            .enumerate()
            .filter(|(i, _)| read.binary_search(i).is_err());
        if kept
            .flat_map(|(_, z)| z.cidrs.iter())
            .any(|net| new.contains(net))
        {
            return None;
        }
    }
    zones.sort_by(|a, b| a.name.cmp(&b.name));
    Some(Policy {
        zones,
        rules: Vec::new(),
    })
}

/// `policy` with its rules checked against its zones, and the zone names they
/// mention; `None` when one has an error (an unknown zone among them).
fn checked_rules(
    mut policy: Policy,
    rules: Vec<Pending>,
    last: Option<&Loaded>,
) -> Option<(Policy, HashSet<String>)> {
    let mut mentioned = HashSet::new();
    policy.rules.reserve(rules.len());
    for pending in rules {
        let rule = match pending {
            Pending::Read(source, raw) => check::lone_rule(source, &policy, &mut mentioned, &raw)?,
            Pending::Kept(source, index, place) => {
                let old = last?;
                let mut rule = old.policy.rules.get(index)?.clone();
                rule.from = renamed(&rule.from, &old.policy, &policy, &mut mentioned)?;
                rule.to = renamed(&rule.to, &old.policy, &policy, &mut mentioned)?;
                rule.origin = source.origin(place);
                rule
            }
        };
        policy.rules.push(rule);
    }
    Some((policy, mentioned))
}

/// The zone set `set` of policy `old` with the ids its zones have in `new`, their
/// names added to `mentioned`; `None` when one is not in `new`.
fn renamed(
    set: &ZoneSet,
    old: &Policy,
    new: &Policy,
    mentioned: &mut HashSet<String>,
) -> Option<ZoneSet> {
    let ZoneSet::Zones(ids) = set else {
        return Some(ZoneSet::Any);
    };
    let mut renamed = Vec::with_capacity(ids.len());
    for &id in ids {
        let name = old.zone_name(id);
        if !mentioned.contains(name) {
            mentioned.insert(name.to_owned());
        }
        renamed.push(new.zone_id(name)?);
    }
    renamed.sort_unstable();
    Some(ZoneSet::Zones(renamed))
}
