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
    let table = table(doc.as_table().iter().map(|(k, item)| {
        let key = doc.as_table().key(k);
        (k, key, item)
    }));
    Ok(Spanned::new(0..text.len(), table))
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

/// A table from its entries (name, key, item).
fn table<'a>(entries: impl Iterator<Item = (&'a str, Option<&'a Key>, &'a Item)>) -> Node {
    Node::Table(
        entries
            .map(|(name, key, item)| {
                let at = key.and_then(Key::span).unwrap_or(0..0);
                let name = Spanned::new(at.clone(), name.to_owned());
                (name, item_node(item, at))
            })
            .collect(),
    )
}

/// The node of `item`; `fallback` is its key's span, for an implicit table (one that
/// only exists because of a `[a.b]` header or a dotted key).
fn item_node(item: &Item, fallback: Range<usize>) -> Spanned<Node> {
    let at = item.span().unwrap_or(fallback);
    match item {
        Item::Value(value) => value_node(value, at),
        Item::Table(t) => {
            let node = table(t.iter().map(|(k, item)| (k, t.key(k), item)));
            Spanned::new(at, node)
        }
        Item::ArrayOfTables(tables) => {
            let items = tables.iter().map(|t| {
                let node = table(t.iter().map(|(k, item)| (k, t.key(k), item)));
                Spanned::new(t.span().unwrap_or(at.clone()), node)
            });
            Spanned::new(at.clone(), Node::Array(items.collect()))
        }
        Item::None => Spanned::new(at, Node::Table(Vec::new())),
    }
}

fn value_node(value: &Value, fallback: Range<usize>) -> Spanned<Node> {
    let at = value.span().unwrap_or(fallback);
    let node = match value {
        Value::String(s) => Node::Scalar(toml::Value::String(s.value().clone())),
        Value::Integer(i) => Node::Scalar(toml::Value::Integer(*i.value())),
        Value::Float(f) => Node::Scalar(toml::Value::Float(*f.value())),
        Value::Boolean(b) => Node::Scalar(toml::Value::Boolean(*b.value())),
        Value::Datetime(d) => Node::Scalar(toml::Value::Datetime(*d.value())),
        Value::Array(items) => {
            Node::Array(items.iter().map(|v| value_node(v, at.clone())).collect())
        }
        Value::InlineTable(t) => Node::Table(
            t.iter()
                .map(|(k, v)| {
                    let key_at = t.key(k).and_then(Key::span).unwrap_or(at.clone());
                    (
                        Spanned::new(key_at.clone(), k.to_owned()),
                        value_node(v, key_at),
                    )
                })
                .collect(),
        ),
    };
    Spanned::new(at, node)
}
