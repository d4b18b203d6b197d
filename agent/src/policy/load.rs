//! Reading policy files and directories and parsing them into raw, spanned TOML.
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::Source;
use super::Diagnostic;

/// One policy file as written, with the byte span of every value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    #[serde(default)]
    pub(crate) zones: BTreeMap<Spanned<String>, RawZone>,
    #[serde(default)]
    pub(crate) allow: Vec<Spanned<RawRule>>,
}

/// A `[zones.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawZone {
    pub(crate) cidrs: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// `enforce` (default) or `audit`.
    #[serde(default)]
    pub(crate) mode: super::Mode,
}

/// An `[[allow]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) from: Spanned<Items>,
    pub(crate) to: Spanned<Items>,
    #[serde(default)]
    pub(crate) tcp: Option<Spanned<Items>>,
    #[serde(default)]
    pub(crate) udp: Option<Spanned<Items>>,
    #[serde(default)]
    pub(crate) icmp: Option<Spanned<bool>>,
    /// Catalogue service names.
    #[serde(default)]
    pub(crate) services: Option<Spanned<Items>>,
    /// Acknowledgment of a lint finding: why the rule is accepted.
    #[serde(default)]
    pub(crate) reviewed: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) description: Option<String>,
}

/// A scalar or an array of scalars (zone names, ports).
#[derive(Debug)]
pub(crate) enum Items {
    /// A single value; its span is the enclosing `Spanned`'s.
    One(toml::Value),
    /// An array, each element with its own span.
    Many(Vec<Spanned<toml::Value>>),
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemsVisitor)
    }
}

struct ItemsVisitor;

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = Items;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an integer or an array of them")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Items, E> {
        Ok(Items::One(toml::Value::Integer(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Items, E> {
        i64::try_from(v)
            .map(|v| Items::One(toml::Value::Integer(v)))
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Items, E> {
        Ok(Items::One(toml::Value::String(v.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Items::Many(items))
    }
}

impl Items {
    /// Each value with its byte span; a single value takes the span `whole`.
    pub(crate) fn spanned(&self, whole: std::ops::Range<usize>) -> Vec<(&toml::Value, usize)> {
        match self {
            Items::One(v) => vec![(v, whole.start)],
            Items::Many(items) => items
                .iter()
                .map(|i| (i.get_ref(), i.span().start))
                .collect(),
        }
    }
}

/// Reads every policy file named by `paths` (files, or directories of `*.toml` files
/// taken in file-name order), in merged order.
pub(crate) fn read_sources(paths: &[PathBuf]) -> (Vec<Source>, Vec<Diagnostic>) {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            match toml_files(path) {
                Ok(files) if files.is_empty() => errors.push(Diagnostic::error(
                    super::Origin::file(path),
                    "directory has no *.toml file",
                )),
                Ok(files) => files
                    .into_iter()
                    .for_each(|f| read_one(f, &mut sources, &mut errors)),
                Err(e) => errors.push(Diagnostic::error(
                    super::Origin::file(path),
                    format!("cannot read directory: {e}"),
                )),
            }
        } else {
            read_one(path.clone(), &mut sources, &mut errors);
        }
    }
    (sources, errors)
}

fn toml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

fn read_one(path: PathBuf, sources: &mut Vec<Source>, errors: &mut Vec<Diagnostic>) {
    match std::fs::read_to_string(&path) {
        Ok(text) => sources.push(Source::new(path, text)),
        Err(e) => errors.push(Diagnostic::error(
            super::Origin::file(&path),
            format!("cannot read file: {e}"),
        )),
    }
}

/// Parses one source; a syntax or structure error stops the parse of that file.
pub(crate) fn parse(source: &Source) -> Result<RawFile, Diagnostic> {
    toml::from_str(&source.text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim().replace('\n', " ");
        Diagnostic::error(source.origin(offset), message)
    })
}
