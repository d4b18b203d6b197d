//! The module import graph of a crate's sources, and its cycles (the agent's, the
//! kernel programs' and ward-common's must have none; a unit test checks them).
//!
//! Nodes are the file modules reached from the crate root through `mod name;`
//! declarations (inline `mod name { … }` blocks belong to their file). Edges:
//! - `mod child;`: the parent depends on the child;
//! - every `use` path and every `crate::…`, `super::…`, `self::…` path in the code goes to
//!   the module that defines what it names, following re-exports (`pub use a::B;`).
//!
//! A module is part of its ancestors: what it takes from one of them (`use super::Agent`
//! in a file that adds `impl Agent` blocks) is containment, not an import edge.
//! Cycles are the strongly connected components of more than one module (depth-first
//! search).
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// A module by its path from the crate root (`[]` is the root, `["policy", "load"]`).
type ModPath = Vec<String>;

/// One file module: its children and the names its `use` items bring in.
#[derive(Default)]
struct Module {
    /// Child modules declared in the file, by name.
    children: BTreeSet<String>,
    /// Names brought in by `use`, to the absolute path they stand for (`None`: another crate).
    aliases: BTreeMap<String, Option<ModPath>>,
    /// Absolute paths the file refers to (`use` items and paths in the code).
    references: Vec<ModPath>,
}

/// The import graph of one crate.
pub struct Graph {
    modules: BTreeMap<ModPath, Module>,
}

impl Graph {
    /// Reads the crate whose root file is `root` (`src/lib.rs`) and every file module
    /// it declares; `read` gives a file's text (`None`: no such file).
    pub fn build(root: &Path, read: &dyn Fn(&Path) -> Option<String>) -> Result<Self, String> {
        let mut graph = Graph {
            modules: BTreeMap::new(),
        };
        let mut files = vec![(Vec::new(), root.to_path_buf())];
        while let Some((path, file)) = files.pop() {
            let text = read(&file).ok_or_else(|| format!("cannot read {}", file.display()))?;
            let parsed = parse(&text);
            let dir = child_dir(&file);
            let mut module = Module::default();
            for name in parsed.mods {
                let found = [
                    dir.join(format!("{name}.rs")),
                    dir.join(&name).join("mod.rs"),
                ]
                .into_iter()
                .find(|f| read(f).is_some())
                .ok_or_else(|| format!("{}: no file for `mod {name};`", file.display()))?;
                let mut child = path.clone();
                child.push(name.clone());
                files.push((child, found));
                module.children.insert(name);
            }
            let locate = |r: &Raw| absolute(&path, &module.children, r);
            let aliases = parsed
                .uses
                .iter()
                .filter_map(|(alias, raw)| Some((alias.clone()?, locate(raw))))
                .collect();
            module.references = (parsed.uses.iter().map(|(_, raw)| raw))
                .chain(&parsed.paths)
                .filter_map(locate)
                .collect();
            module.aliases = aliases;
            graph.modules.insert(path, module);
        }
        Ok(graph)
    }

    /// Reads a crate from the file system.
    pub fn read(root: &Path) -> Result<Self, String> {
        Self::build(root, &|f: &Path| std::fs::read_to_string(f).ok())
    }

    /// The edges, as `from → to` module paths.
    pub fn edges(&self) -> BTreeSet<(ModPath, ModPath)> {
        let mut out = BTreeSet::new();
        for (from, module) in &self.modules {
            for child in &module.children {
                let mut to = from.clone();
                to.push(child.clone());
                out.insert((from.clone(), to));
            }
            for reference in &module.references {
                let to = self.resolve(reference, 0);
                // Self and ancestors (`to` a prefix of `from`) are containment.
                if !from.starts_with(&to) {
                    out.insert((from.clone(), to));
                }
            }
        }
        out
    }

    /// The module defining what `path` names: as deep as modules go, through re-exports.
    fn resolve(&self, path: &[String], depth: usize) -> ModPath {
        let mut at: ModPath = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let Some(module) = self.modules.get(&at) else {
                break;
            };
            if module.children.contains(segment) {
                at.push(segment.clone());
                continue;
            }
            match module.aliases.get(segment) {
                Some(Some(target)) if depth < 16 && target.as_slice() != &path[..=i] => {
                    let mut next = target.clone();
                    next.extend_from_slice(&path[i + 1..]);
                    return self.resolve(&next, depth + 1);
                }
                _ => break,
            }
        }
        at
    }

    /// The cycles: each a set of modules (`a::b` names) that all reach one another.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let edges = self.edges();
        let names: Vec<&ModPath> = self.modules.keys().collect();
        let index = |p: &ModPath| names.iter().position(|n| *n == p);
        let mut next = vec![Vec::new(); names.len()];
        for (from, to) in &edges {
            if let (Some(f), Some(t)) = (index(from), index(to)) {
                next[f].push(t);
            }
        }
        components(&next)
            .into_iter()
            .filter(|scc| scc.len() > 1)
            .map(|scc| {
                let mut scc: Vec<String> = scc.iter().map(|&i| display(names[i])).collect();
                scc.sort();
                scc
            })
            .collect()
    }
}

/// `crate`, or the module path joined with `::`.
fn display(path: &ModPath) -> String {
    match path.is_empty() {
        true => "crate".into(),
        false => path.join("::"),
    }
}

/// Where the children of the module in `file` live: beside `lib.rs`, `main.rs` and
/// `mod.rs`, else in the directory named after the file.
fn child_dir(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    match file.file_stem().and_then(|s| s.to_str()) {
        Some("lib" | "main" | "mod") | None => dir,
        Some(stem) => dir.join(stem),
    }
}

/// The strongly connected components of a graph given by successor lists: nodes that
/// reach each other, found by a depth-first search from every node.
fn components(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let reach: Vec<Vec<bool>> = (0..next.len())
        .map(|start| {
            let (mut seen, mut stack) = (vec![false; next.len()], vec![start]);
            while let Some(v) = stack.pop() {
                for &w in &next[v] {
                    if !std::mem::replace(&mut seen[w], true) {
                        stack.push(w);
                    }
                }
            }
            seen
        })
        .collect();
    let mut placed = vec![false; next.len()];
    let mut out = Vec::new();
    for v in 0..next.len() {
        if !placed[v] {
            let scc: Vec<usize> = (v..next.len())
                .filter(|&w| w == v || (reach[v][w] && reach[w][v]))
                .collect();
            scc.iter().for_each(|&w| placed[w] = true);
            out.push(scc);
        }
    }
    out
}

/// A path as written: its segments and how deep in inline modules it was written
/// (`super` first leaves those).
struct Raw {
    segments: Vec<String>,
    inline_depth: usize,
}

/// What one file declares and refers to.
#[derive(Default)]
struct Parsed {
    /// `mod name;` at the file's top level.
    mods: Vec<String>,
    /// `use` paths, each with the name it brings in (none for `*`).
    uses: Vec<(Option<String>, Raw)>,
    /// `crate::…`, `super::…` and `self::…` paths outside `use` items.
    paths: Vec<Raw>,
}

/// The absolute path `raw` stands for in module `at` (whose children are `children`);
/// `None` for another crate's.
fn absolute(at: &ModPath, children: &BTreeSet<String>, raw: &Raw) -> Option<ModPath> {
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
fn parse(code: &str) -> Parsed {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A crate made of `(file, text)` pairs.
    fn synthetic(files: &[(&str, &str)]) -> Graph {
        let files: BTreeMap<PathBuf, String> = files
            .iter()
            .map(|(f, t)| (PathBuf::from(f), t.to_string()))
            .collect();
        Graph::build(Path::new("lib.rs"), &|f: &Path| files.get(f).cloned()).unwrap()
    }

    #[test]
    fn the_crates_have_no_import_cycle() {
        for root in [
            "agent/src/lib.rs",
            "agent-ebpf/src/main.rs",
            "agent-common/src/lib.rs",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(root);
            let graph = Graph::read(&path).unwrap();
            let cycles = graph.cycles();
            println!(
                "{root}: {} modules, {} import edges, {} cycles",
                graph.modules.len(),
                graph.edges().len(),
                cycles.len()
            );
            for cycle in &cycles {
                println!("cycle: {}", cycle.join(" "));
            }
            assert!(cycles.is_empty(), "import cycles in {root}: {cycles:#?}");
        }
    }

    #[test]
    fn a_cycle_through_a_re_export_is_found() {
        let graph = synthetic(&[
            ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
            ("a.rs", "use crate::b::Thing;\n"),
            // `b` re-exports from its child, which needs `c`, which needs `a`.
            ("b/mod.rs", "mod inner;\npub use inner::Thing;\n"),
            ("b/inner.rs", "pub struct Thing(crate::c::Other);\n"),
            (
                "c.rs",
                "pub struct Other;\nfn f() { let _ = crate::a::g(); /* crate::b */ }\n",
            ),
        ]);
        assert_eq!(graph.cycles(), vec![vec!["a", "b::inner", "c"]]);
    }

    #[test]
    fn a_child_using_its_parent_and_strings_are_no_cycle() {
        let graph = synthetic(&[
            ("lib.rs", "pub mod a;\npub mod b;\n"),
            (
                "a/mod.rs",
                "mod part;\npub struct Agent;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::b;\n}\n",
            ),
            (
                "a/part.rs",
                "use super::Agent;\nimpl Agent { fn f(&self) { let _ = '{'; } }\n",
            ),
            ("b.rs", "fn f() { let _ = \"crate::a::Agent {\"; let _ = r#\"}\"#; }\n"),
        ]);
        assert!(graph.cycles().is_empty());
        let edges: Vec<_> = graph.edges().into_iter().collect();
        assert_eq!(edges.len(), 4, "{edges:?}");
    }
}
