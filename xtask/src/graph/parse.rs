//! Reading a Rust file for the import graph: its tokens (comments and literals
//! skipped), its `mod` declarations, `use` trees and `crate::`/`super::`/`self::` paths,
//! and the absolute module path each stands for.
use std::collections::BTreeSet;

use super::ModPath;

/// A path as written: its segments and how deep in inline modules it was written
/// (`super` first leaves those).
pub(super) struct Raw {
    pub(super) segments: Vec<String>,
    pub(super) inline_depth: usize,
}

/// What one file declares and refers to.
#[derive(Default)]
pub(super) struct Parsed {
    /// `mod name;` at the file's top level.
    pub(super) mods: Vec<String>,
    /// `use` paths, each with the name it brings in (none for `*`).
    pub(super) uses: Vec<(Option<String>, Raw)>,
    /// `crate::…`, `super::…` and `self::…` paths outside `use` items.
    pub(super) paths: Vec<Raw>,
}

/// The absolute path `raw` stands for in module `at` (whose children are `children`);
/// `None` for another crate's.
pub(super) fn absolute(at: &ModPath, children: &BTreeSet<String>, raw: &Raw) -> Option<ModPath> {
    let (mut base, mut inline) = (at.clone(), raw.inline_depth);
    let skip = match raw.segments.first()?.as_str() {
        "crate" => {
            base.clear();
            1
        }
        "self" => 1,
        "super" => {
            let supers = raw.segments.iter().take_while(|s| *s == "super").count();
            for _ in 0..supers {
                match inline.checked_sub(1) {
                    Some(less) => inline = less,
                    None => drop(base.pop()),
                }
            }
            supers
        }
        first if children.contains(first) => 0,
        _ => return None,
    };
    base.extend(
        raw.segments[skip..]
            .iter()
            .filter(|s| *s != "self")
            .cloned(),
    );
    Some(base)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The tokens of Rust source that paths are made of: identifiers, `::` and single
/// punctuation characters; comments, string and character literals are skipped.
fn tokens(text: &str) -> Vec<String> {
    let c: Vec<char> = text.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let (mut out, mut i) = (Vec::new(), 0);
    // Skips a literal from `i` (after its opening quote) to past its closing `quote`.
    let literal = |mut i: usize, quote: char| {
        while i < c.len() && c[i] != quote {
            i += if c[i] == '\\' { 2 } else { 1 };
        }
        i + 1
    };
    while i < c.len() {
        let start = i;
        let raw = at(i + 1) == '"' || (at(i + 1) == '#' && matches!(at(i + 2), '"' | '#'));
        match (c[i], at(i + 1)) {
            ('/', '/') => {
                i = c[i..]
                    .iter()
                    .position(|&ch| ch == '\n')
                    .map_or(c.len(), |n| i + n)
            }
            ('/', '*') => {
                let mut depth = 0;
                while i < c.len() {
                    match (c[i], at(i + 1)) {
                        ('/', '*') => (depth, i) = (depth + 1, i + 2),
                        ('*', '/') if depth == 1 => {
                            i += 2;
                            break;
                        }
                        ('*', '/') => (depth, i) = (depth - 1, i + 2),
                        _ => i += 1,
                    }
                }
            }
            ('r', _) if raw && !is_ident(at(start.wrapping_sub(1))) => {
                let hashes = c[i + 1..].iter().take_while(|&&h| h == '#').count();
                i += hashes + 2;
                while i < c.len() && !(c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#')) {
                    i += 1;
                }
                i += hashes + 1;
            }
            ('"', _) => i = literal(i + 1, '"'),
            // A character literal (`'{'`, `'\n'`); a lifetime (`'a`) has no closing quote.
            ('\'', next) if next == '\\' || at(i + 2) == '\'' => i = literal(i + 1, '\''),
            (ch, _) if is_ident(ch) => {
                while i < c.len() && is_ident(c[i]) {
                    i += 1;
                }
                out.push(c[start..i].iter().collect());
            }
            (':', ':') => {
                out.push("::".into());
                i += 2;
            }
            (ch, _) => {
                if !ch.is_whitespace() {
                    out.push(ch.to_string());
                }
                i += 1;
            }
        }
    }
    out
}

/// The declarations and paths of one file.
pub(super) fn parse(code: &str) -> Parsed {
    let t = tokens(code);
    let mut parsed = Parsed::default();
    // Brace depths at which inline modules opened.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < t.len() {
        let tok = t[i].as_str();
        let prev = i.checked_sub(1).map_or("", |p| t[p].as_str());
        match tok {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            "mod" if i + 2 < t.len() && t[i + 2] == ";" && depth == 0 => {
                parsed.mods.push(t[i + 1].clone());
            }
            "mod" if i + 2 < t.len() && t[i + 2] == "{" => inline.push(depth),
            "use" if prev != "::" && prev != "$" => {
                let end = (i..t.len()).find(|&k| t[k] == ";").unwrap_or(t.len());
                for (alias, segments) in use_tree(&t[i + 1..end], Vec::new()) {
                    let raw = Raw {
                        segments,
                        inline_depth: inline.len(),
                    };
                    parsed.uses.push((alias, raw));
                }
                i = end;
            }
            "crate" | "super" | "self"
                if prev != "::"
                    && prev != "$"
                    && t.get(i + 1).map(String::as_str) == Some("::") =>
            {
                let mut segments = vec![tok.to_owned()];
                let mut k = i + 1;
                while t.get(k).map(String::as_str) == Some("::")
                    && t.get(k + 1).is_some_and(|s| s.chars().all(is_ident))
                {
                    segments.push(t[k + 1].clone());
                    k += 2;
                }
                parsed.paths.push(Raw {
                    segments,
                    inline_depth: inline.len(),
                });
                i = k;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parsed
}

/// The paths of a `use` tree (tokens between `use` and `;`, after `prefix`), each with
/// the name it brings in.
fn use_tree(t: &[String], prefix: Vec<String>) -> Vec<(Option<String>, Vec<String>)> {
    let mut out = Vec::new();
    let mut path = prefix;
    let mut i = 0;
    while i < t.len() {
        match t[i].as_str() {
            "::" => {}
            "{" => {
                let (mut depth, mut from) = (0, i + 1);
                for k in i..t.len() {
                    match t[k].as_str() {
                        "{" => depth += 1,
                        "}" | "," if depth == 1 => {
                            if k > from {
                                out.extend(use_tree(&t[from..k], path.clone()));
                            }
                            from = k + 1;
                            if t[k] == "}" {
                                break;
                            }
                        }
                        "}" => depth -= 1,
                        _ => {}
                    }
                }
                return out;
            }
            "*" => {
                out.push((None, path));
                return out;
            }
            "as" => {
                let alias = t.get(i + 1).filter(|a| *a != "_").cloned();
                out.push((alias, path));
                return out;
            }
            segment => path.push(segment.to_owned()),
        }
        i += 1;
    }
    let name = match path.last().map(String::as_str) {
        Some("self") => path.iter().rev().nth(1).cloned(),
        last => last.map(str::to_owned),
    };
    out.push((name, path));
    out
}
