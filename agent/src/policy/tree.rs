//! A TOML document as a tree that keeps the byte span of every key and value, so that
//! each table can be checked on its own and every error placed. Parsed by `toml_edit`,
//! the parser under `toml`: the spans are the ones `toml::Spanned` gives.
use std::ops::Range;

use toml::Spanned;
use toml_edit::{ImDocument, Item, Key, TomlError, Value};

/// A TOML value with the spans of everything inside it.
#[derive(Debug)]
pub(crate) enum Node {
    /// A table: its keys in document order, each with its span.
    Table(Vec<(Spanned<String>, Spanned<Node>)>),
    /// An array, each element with its span.
    Array(Vec<Spanned<Node>>),
    /// A string, integer, float, boolean or date-time.
    Scalar(toml::Value),
}

/// Parses `text`; a syntax error is returned as it is.
pub(crate) fn parse(text: &str) -> Result<Spanned<Node>, TomlError> {
    let doc = ImDocument::parse(text)?;
    Ok(Spanned::new(0..text.len(), root(&doc, 0)))
}

/// The root table of `doc`, a document parsed from the text at byte `base` of a
/// larger one: every span is moved by `base`, so that it is the larger one's.
pub(crate) fn root(doc: &ImDocument<&str>, base: usize) -> Node {
    let at = At(base);
    at.table(doc.as_table().iter().map(|(k, item)| {
        let key = doc.as_table().key(k);
        (k, key, item)
    }))
}

impl Node {
    /// How the value is named in a message: `a table`, `an array` or the value itself.
    pub(crate) fn describe(&self) -> String {
        match self {
            Node::Table(_) => "a table".to_owned(),
            Node::Array(_) => "an array".to_owned(),
            Node::Scalar(toml::Value::Datetime(d)) => d.to_string(),
            Node::Scalar(v) => v.to_string(),
        }
    }

    /// The plain value, without spans.
    pub(crate) fn to_value(&self) -> toml::Value {
        match self {
            Node::Table(entries) => toml::Value::Table(
                entries
                    .iter()
                    .map(|(k, v)| (k.get_ref().clone(), v.get_ref().to_value()))
                    .collect(),
            ),
            Node::Array(items) => {
                toml::Value::Array(items.iter().map(|i| i.get_ref().to_value()).collect())
            }
            Node::Scalar(v) => v.clone(),
        }
    }
}

/// Where the parsed text starts in the whole text: added to every span the parser gives.
#[derive(Clone, Copy)]
struct At(usize);

impl At {
    /// `span` in the whole text.
    fn shift(self, span: Option<Range<usize>>) -> Option<Range<usize>> {
        span.map(|s| s.start + self.0..s.end + self.0)
    }

    /// A table from its entries (name, key, item).
    fn table<'a>(
        self,
        entries: impl Iterator<Item = (&'a str, Option<&'a Key>, &'a Item)>,
    ) -> Node {
        Node::Table(
            entries
                .map(|(name, key, item)| {
                    let at = self.shift(key.and_then(Key::span)).unwrap_or(0..0);
                    let name = Spanned::new(at.clone(), name.to_owned());
                    (name, self.item_node(item, at))
                })
                .collect(),
        )
    }

    /// The node of `item`; `fallback` is its key's span, for an implicit table (one that
    /// only exists because of a `[a.b]` header or a dotted key).
    fn item_node(self, item: &Item, fallback: Range<usize>) -> Spanned<Node> {
        let at = self.shift(item.span()).unwrap_or(fallback);
        match item {
            Item::Value(value) => self.value_node(value, at),
            Item::Table(t) => {
                let node = self.table(t.iter().map(|(k, item)| (k, t.key(k), item)));
                Spanned::new(at, node)
            }
            Item::ArrayOfTables(tables) => {
                let items = tables.iter().map(|t| {
                    let node = self.table(t.iter().map(|(k, item)| (k, t.key(k), item)));
                    Spanned::new(self.shift(t.span()).unwrap_or(at.clone()), node)
                });
                Spanned::new(at.clone(), Node::Array(items.collect()))
            }
            Item::None => Spanned::new(at, Node::Table(Vec::new())),
        }
    }

    fn value_node(self, value: &Value, fallback: Range<usize>) -> Spanned<Node> {
        let at = self.shift(value.span()).unwrap_or(fallback);
        let node = match value {
            Value::String(s) => Node::Scalar(toml::Value::String(s.value().clone())),
            Value::Integer(i) => Node::Scalar(toml::Value::Integer(*i.value())),
            Value::Float(f) => Node::Scalar(toml::Value::Float(*f.value())),
            Value::Boolean(b) => Node::Scalar(toml::Value::Boolean(*b.value())),
            Value::Datetime(d) => Node::Scalar(toml::Value::Datetime(*d.value())),
            Value::Array(items) => Node::Array(
                items
                    .iter()
                    .map(|v| self.value_node(v, at.clone()))
                    .collect(),
            ),
            Value::InlineTable(t) => Node::Table(
                t.iter()
                    .map(|(k, v)| {
                        let key_at = self
                            .shift(t.key(k).and_then(Key::span))
                            .unwrap_or(at.clone());
                        (
                            Spanned::new(key_at.clone(), k.to_owned()),
                            self.value_node(v, key_at),
                        )
                    })
                    .collect(),
            ),
        };
        Spanned::new(at, node)
    }
}
