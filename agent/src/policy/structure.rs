//! The structure of one policy file, checked table by table: every unknown key, missing
//! key and value of the wrong type is reported, and one bad table does not hide the
//! others. What survives is handed to the checker as a [`RawFile`].
use toml::Spanned;

use super::diagnostic::{did_you_mean, suggest, Source};
use super::raw::{Items, RawFile, RawRule, RawZone};
use super::settings::ALLOW_EMPTY;
use super::tree::Node;
use super::{Diagnostic, Mode};

/// Keys of the file itself.
const FILE_KEYS: &[&str] = &["zones", "allow", ALLOW_EMPTY];
/// Keys of a `[zones.NAME]` table.
const ZONE_KEYS: &[&str] = &["cidrs", "description", "mode"];
/// Keys of an `[[allow]]` table.
const RULE_KEYS: &[&str] = &[
    "from",
    "to",
    "tcp",
    "udp",
    "icmp",
    "services",
    "reviewed",
    "description",
];

/// The checked structure of a parsed file, with every structural error in it.
pub(crate) fn raw_file(source: &Source, doc: &Spanned<Node>) -> (RawFile, Vec<Diagnostic>) {
    let mut tables = Tables {
        source,
        diags: Vec::new(),
    };
    let mut file = RawFile::default();
    for (key, value) in tables.entries(doc, FILE_KEYS, &[], 0) {
        if key.get_ref() == "zones" {
            file.zones = tables.zones(value);
        } else if key.get_ref() == ALLOW_EMPTY {
            // Read again by `settings.rs` when the policy has no rule.
            tables.boolean(ALLOW_EMPTY, value);
        } else {
            file.allow = tables.rules(value);
        }
    }
    (file, tables.diags)
}

/// Collects the errors of one file while its tables are read.
struct Tables<'a> {
    source: &'a Source,
    diags: Vec<Diagnostic>,
}

type Entry<'n> = (&'n Spanned<String>, &'n Spanned<Node>);

impl Tables<'_> {
    fn error(&mut self, at: usize, message: String) {
        self.diags
            .push(Diagnostic::error(self.source.origin(at), message));
    }

    /// The entries of a table whose keys are all in `known`; the others are errors.
    /// Each key of `required` that is missing is an error too, unless an unknown key
    /// looks like a misspelling of it (that error says so already).
    fn entries<'n>(
        &mut self,
        table: &'n Spanned<Node>,
        known: &[&str],
        required: &[&str],
        at: usize,
    ) -> Vec<Entry<'n>> {
        let Node::Table(entries) = table.get_ref() else {
            return Vec::new();
        };
        for key in required {
            let present = entries.iter().any(|(k, _)| k.get_ref() == key);
            let misspelt = || {
                let unknown = entries
                    .iter()
                    .filter(|(k, _)| !known.contains(&k.get_ref().as_str()));
                unknown
                    .into_iter()
                    .any(|(k, _)| suggest(k.get_ref(), known.iter().copied()) == Some(key))
            };
            if !present && !misspelt() {
                self.error(at, format!("missing field `{key}`"));
            }
        }
        let mut found = Vec::new();
        for (key, value) in entries {
            if known.contains(&key.get_ref().as_str()) {
                found.push((key, value));
            } else {
                let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
                let hint = did_you_mean(key.get_ref(), known.iter().copied());
                self.error(
                    key.span().start,
                    format!(
                        "unknown field `{}`{hint}, expected one of {}",
                        key.get_ref(),
                        expected.join(", ")
                    ),
                );
            }
        }
        found
    }

    /// The `zones` table: one `[zones.NAME]` table per zone.
    fn zones(&mut self, value: &Spanned<Node>) -> Vec<(Spanned<String>, RawZone)> {
        let Node::Table(entries) = value.get_ref() else {
            let found = value.get_ref().describe();
            self.error(
                value.span().start,
                format!("`zones` takes zone tables ([zones.NAME]), not {found}"),
            );
            return Vec::new();
        };
        let mut zones = Vec::with_capacity(entries.len());
        for (name, table) in entries {
            let mut zone = RawZone {
                cidrs: None,
                description: None,
                mode: Mode::default(),
            };
            if !matches!(table.get_ref(), Node::Table(_)) {
                let found = table.get_ref().describe();
                self.error(
                    table.span().start,
                    format!("zone `{}` must be a table, not {found}", name.get_ref()),
                );
            }
            for (key, value) in self.entries(table, ZONE_KEYS, &["cidrs"], name.span().start) {
                match key.get_ref().as_str() {
                    "cidrs" => zone.cidrs = self.cidrs(value),
                    "mode" => zone.mode = self.mode(value).unwrap_or_default(),
                    _ => zone.description = self.string("description", value),
                }
            }
            zones.push((name.clone(), zone));
        }
        zones
    }

    /// The `[[allow]]` tables.
    fn rules(&mut self, value: &Spanned<Node>) -> Vec<Spanned<RawRule>> {
        let Node::Array(items) = value.get_ref() else {
            let found = value.get_ref().describe();
            self.error(
                value.span().start,
                format!("`allow` takes rule tables ([[allow]]), not {found}"),
            );
            return Vec::new();
        };
        let mut rules = Vec::with_capacity(items.len());
        for table in items {
            if !matches!(table.get_ref(), Node::Table(_)) {
                let found = table.get_ref().describe();
                self.error(
                    table.span().start,
                    format!("a rule must be a table ([[allow]]), not {found}"),
                );
                continue;
            }
            rules.push(Spanned::new(table.span(), self.rule(table)));
        }
        rules
    }

    fn rule(&mut self, table: &Spanned<Node>) -> RawRule {
        let errors_before = self.diags.len();
        let mut rule = RawRule::default();
        let required = ["from", "to"];
        for (key, value) in self.entries(table, RULE_KEYS, &required, table.span().start) {
            let items = || Some(Spanned::new(value.span(), Items::from(value.get_ref())));
            match key.get_ref().as_str() {
                "from" => rule.from = items(),
                "to" => rule.to = items(),
                "tcp" => rule.tcp = items(),
                "udp" => rule.udp = items(),
                "services" => rule.services = items(),
                "icmp" => rule.icmp = self.boolean("icmp", value),
                "reviewed" => {
                    rule.reviewed = self
                        .string("reviewed", value)
                        .map(|s| Spanned::new(value.span(), s));
                }
                _ => rule.description = self.string("description", value),
            }
        }
        rule.broken = self.diags.len() > errors_before;
        rule
    }

    fn cidrs(&mut self, value: &Spanned<Node>) -> Option<Spanned<Vec<Spanned<String>>>> {
        let Node::Array(items) = value.get_ref() else {
            let found = value.get_ref().describe();
            self.error(
                value.span().start,
                format!("`cidrs` takes an array of CIDR prefixes (strings), not {found}"),
            );
            return None;
        };
        let mut cidrs = Vec::with_capacity(items.len());
        for item in items {
            match item.get_ref() {
                Node::Scalar(toml::Value::String(s)) => {
                    cidrs.push(Spanned::new(item.span(), s.clone()));
                }
                other => self.error(
                    item.span().start,
                    format!(
                        "`cidrs` takes CIDR prefixes (strings), not {}",
                        other.describe()
                    ),
                ),
            }
        }
        Some(Spanned::new(value.span(), cidrs))
    }

    fn mode(&mut self, value: &Spanned<Node>) -> Option<Mode> {
        match value.get_ref() {
            Node::Scalar(toml::Value::String(s)) if s == "enforce" => Some(Mode::Enforce),
            Node::Scalar(toml::Value::String(s)) if s == "audit" => Some(Mode::Audit),
            other => {
                let found = other.describe();
                self.error(
                    value.span().start,
                    format!("`mode` is \"enforce\" or \"audit\", not {found}"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, value: &Spanned<Node>) -> Option<Spanned<bool>> {
        if let Node::Scalar(toml::Value::Boolean(b)) = value.get_ref() {
            return Some(Spanned::new(value.span(), *b));
        }
        let found = value.get_ref().describe();
        self.error(
            value.span().start,
            format!("`{key}` takes true or false, not {found}"),
        );
        None
    }

    fn string(&mut self, key: &str, value: &Spanned<Node>) -> Option<String> {
        if let Node::Scalar(toml::Value::String(s)) = value.get_ref() {
            return Some(s.clone());
        }
        let found = value.get_ref().describe();
        self.error(
            value.span().start,
            format!("`{key}` takes a string, not {found}"),
        );
        None
    }
}
