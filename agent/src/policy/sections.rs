//! Reading a large policy file one top-level table at a time: the text is cut before
//! each line that starts a table header (`[zones.NAME]`, `[[allow]]`), each piece is
//! parsed on its own (its spans those of the whole text) and its structure read at once.
//! Only one piece's parsed document and tree exist at a time (the whole file's are many
//! times the size of its text), and the structure and its errors are those of the
//! whole file's tree.
//!
//! This is only done where it cannot differ from parsing the whole file: every piece
//! after the first is one `[zones.NAME]` table (each name once) or one `[[allow]]`
//! table, and the first piece (the keys before any header) names neither `zones` nor
//! `allow`. Anything else (another table, a zone's sub-table, a piece that does not
//! parse on its own: a syntax error, a header-like line inside a multi-line value) gives
//! `None`, and the whole file is parsed as one document, with its exact errors.
use std::collections::HashSet;

use toml::Spanned;
use toml_edit::{ImDocument, Item};

use super::diagnostic::Source;
use super::raw::RawFile;
use super::{tree, Diagnostic};

/// The structure of `source` read piece by piece (each piece's tree is dropped once
/// read), the same as [`super::structure::raw_file`] of the whole file's tree; `None`
/// when the file must be parsed whole.
pub(crate) fn raw_file(source: &Source) -> Option<(RawFile, Vec<Diagnostic>)> {
    let (mut file, mut diags) = (RawFile::default(), Vec::new());
    let mut zone_names = HashSet::new();
    for (i, (base, piece)) in pieces(source).into_iter().enumerate() {
        let (raw, found) = read_piece(source, i == 0, base, piece)?;
        if let Some((name, _)) = raw.zones.first() {
            if !zone_names.insert(name.get_ref().clone()) {
                return None;
            }
        }
        file.zones.extend(raw.zones);
        file.allow.extend(raw.allow);
        diags.extend(found);
    }
    Some((file, diags))
}

/// The structure of one piece (the text at byte `base` of `source`) and its errors;
/// `None` when it does not parse on its own or is not of a piece's shape: the first
/// one names neither `zones` nor `allow`, every other one is one `[zones.NAME]` or one
/// `[[allow]]` table. A zone piece gives one zone, a rule piece at most one rule.
pub(crate) fn read_piece(
    source: &Source,
    first: bool,
    base: usize,
    piece: &str,
) -> Option<(RawFile, Vec<Diagnostic>)> {
    let doc = ImDocument::parse(piece).ok()?;
    let top = doc.as_table();
    if first {
        if top.contains_key("zones") || top.contains_key("allow") {
            return None;
        }
    } else {
        match (top.len(), top.get("zones"), top.get("allow")) {
            (1, Some(Item::Table(t)), None) if t.is_implicit() && t.len() == 1 => {
                let (_, zone) = t.iter().next()?;
                if !matches!(zone, Item::Table(z) if !z.is_implicit()) {
                    return None;
                }
            }
            (1, None, Some(Item::ArrayOfTables(a))) if a.len() == 1 => {}
            _ => return None,
        }
    }
    let tree = Spanned::new(base..base + piece.len(), tree::root(&doc, base));
    drop(doc);
    Some(super::structure::raw_file(source, &tree))
}

/// The pieces of `source`'s text with their byte offsets: the keys before the first
/// header (perhaps nothing), then a new piece at each line whose first character other
/// than a space or tab is `[`.
pub(crate) fn pieces(source: &Source) -> Vec<(usize, &str)> {
    let text = source.text.as_str();
    let mut starts = vec![0];
    for &line in source.line_starts() {
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
