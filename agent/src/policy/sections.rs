//! Parsing a large policy file one top-level table at a time: the text is cut before
//! each line that starts a table header (`[zones.NAME]`, `[[allow]]`), each piece is
//! parsed on its own and the pieces' trees are joined. Only the parser's document of one
//! piece exists at a time (the whole file's is many times the size of its text), and the
//! tree is the one the whole file parses to, spans included.
//!
//! Joining is only done where it cannot differ from parsing the whole file: every piece
//! after the first is one `[zones.NAME]` table (each name once) or one `[[allow]]`
//! table, and the first piece (the keys before any header) names neither `zones` nor
//! `allow`. Anything else (another table, a zone's sub-table, a piece that does not
//! parse on its own: a syntax error, a header-like line inside a multi-line value) gives
//! `None`, and the whole file is parsed as one document, with its exact errors.
use std::collections::HashSet;

use toml::Spanned;
use toml_edit::{ImDocument, Item};

use super::tree::{self, Node};

/// The tree of `text` parsed piece by piece, or `None` when it must be parsed whole.
pub(crate) fn parse(text: &str) -> Option<Spanned<Node>> {
    let mut entries: Vec<(Spanned<String>, Spanned<Node>)> = Vec::new();
    // Where the joined `zones` table and `allow` array are in `entries`.
    let (mut zones, mut allow) = (None, None);
    let mut zone_names = HashSet::new();
    for (i, (base, piece)) in pieces(text).into_iter().enumerate() {
        let doc = ImDocument::parse(piece).ok()?;
        let top = doc.as_table();
        if i == 0 {
            if top.contains_key("zones") || top.contains_key("allow") {
                return None;
            }
        } else {
            match (top.len(), top.get("zones"), top.get("allow")) {
                (1, Some(Item::Table(t)), None) if t.is_implicit() && t.len() == 1 => {
                    let (name, zone) = t.iter().next()?;
                    if !matches!(zone, Item::Table(z) if !z.is_implicit())
                        || !zone_names.insert(name.to_owned())
                    {
                        return None;
                    }
                }
                (1, None, Some(Item::ArrayOfTables(a))) if a.len() == 1 => {}
                _ => return None,
            }
        }
        let Node::Table(found) = tree::root(&doc, base) else {
            return None;
        };
        drop(doc);
        for (key, node) in found {
            let joined = match key.get_ref().as_str() {
                "zones" => &mut zones,
                "allow" => &mut allow,
                _ => {
                    entries.push((key, node));
                    continue;
                }
            };
            match joined {
                None => {
                    *joined = Some(entries.len());
                    entries.push((key, node));
                }
                Some(at) => {
                    let end = node.span().end;
                    let (key_span, all) = (entries[*at].1.span(), entries[*at].1.get_mut());
                    match (all, node.into_inner()) {
                        // An implicit table keeps its key's span.
                        (Node::Table(all), Node::Table(more)) => all.extend(more),
                        // An array of tables spans its first to its last table.
                        (Node::Array(all), Node::Array(more)) => {
                            all.extend(more);
                            let joined = std::mem::replace(all, Vec::new());
                            entries[*at].1 = Spanned::new(key_span.start..end, Node::Array(joined));
                        }
                        _ => return None,
                    }
                }
            }
        }
    }
    Some(Spanned::new(0..text.len(), Node::Table(entries)))
}

/// The pieces of `text` with their byte offsets: the keys before the first header
/// (perhaps nothing), then a new piece at each line whose first character other than a
/// space or tab is `[`.
fn pieces(text: &str) -> Vec<(usize, &str)> {
    let mut starts = vec![0];
    let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1));
    for line in line_starts {
        if text[line..]
            .trim_start_matches([' ', '\t'])
            .starts_with('[')
        {
            starts.push(line);
        }
    }
    starts.push(text.len());
    starts
        .windows(2)
        .map(|w| (w[0], &text[w[0]..w[1]]))
        .collect()
}
