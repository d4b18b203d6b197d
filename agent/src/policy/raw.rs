//! One policy file as written, with the byte span of every value: the part of it whose
//! structure is valid (see `structure.rs`), as the checker takes it.
use toml::Spanned;

use super::tree::Node;

/// One policy file as written, with the byte span of every value: what of it has a
/// valid structure.
#[derive(Debug, Default)]
pub(crate) struct RawFile {
    /// The `[zones.NAME]` tables, by name.
    pub(crate) zones: Vec<(Spanned<String>, RawZone)>,
    /// The `[[allow]]` tables.
    pub(crate) allow: Vec<Spanned<RawRule>>,
}

/// A `[zones.NAME]` table.
#[derive(Debug)]
pub(crate) struct RawZone {
    /// `None` when missing or not an array (a structural error already reported).
    pub(crate) cidrs: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) description: Option<String>,
    /// `enforce` (default) or `audit`.
    pub(crate) mode: super::Mode,
}

/// An `[[allow]]` table; a key is `None` when missing or of the wrong type.
#[derive(Debug, Default)]
pub(crate) struct RawRule {
    pub(crate) from: Option<Spanned<Items>>,
    pub(crate) to: Option<Spanned<Items>>,
    pub(crate) tcp: Option<Spanned<Items>>,
    pub(crate) udp: Option<Spanned<Items>>,
    pub(crate) icmp: Option<Spanned<bool>>,
    /// Catalogue service names.
    pub(crate) services: Option<Spanned<Items>>,
    /// Acknowledgment of a lint finding: why the rule is accepted.
    pub(crate) reviewed: Option<Spanned<String>>,
    pub(crate) description: Option<String>,
    /// The table has structural errors (already reported): it never becomes a rule.
    pub(crate) broken: bool,
}

/// A scalar or an array of values (zone names, ports, services).
#[derive(Debug)]
pub(crate) enum Items {
    /// A single value; its span is the enclosing `Spanned`'s.
    One(toml::Value),
    /// An array, each element with its own span.
    Many(Vec<Spanned<toml::Value>>),
}

impl From<&Node> for Items {
    fn from(node: &Node) -> Self {
        match node {
            Node::Array(items) => Items::Many(
                items
                    .iter()
                    .map(|i| Spanned::new(i.span(), i.get_ref().to_value()))
                    .collect(),
            ),
            other => Items::One(other.to_value()),
        }
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
