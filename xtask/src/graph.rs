//! The module import graph of a crate's sources, and its cycles (the agent's must have
//! none; a unit test checks it).
//!
//! Nodes are the file modules reached from the crate root through `mod name;`
//! declarations (inline `mod name { … }` blocks belong to their file). Edges:
//! - `mod child;`: the parent depends on the child;
//! - every `use` path and every `crate::…`, `super::…`, `self::…` path in the code goes to
//!   the module that defines what it names, following re-exports (`pub use a::B;`).
//!
//! A module is part of its ancestors: what it takes from one of them (`use super::Agent`
//! in a file that adds `impl Agent` blocks) is containment, not an import edge.
//! Cycles are the strongly connected components of more than one module (Tarjan).
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
            let parsed = parse(&strip(&text));
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
        tarjan(&next)
            .into_iter()
            .filter(|scc| scc.len() > 1)
            .map(|scc| {
                let mut scc: Vec<String> = scc.iter().map(|&i| display(names[i])).collect();
                scc.sort();
                scc
            })
            .collect()
    }

    /// How many modules there are.
    pub fn module_count(&self) -> usize {
        self.modules.len()
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

/// Strongly connected components of a graph given by successor lists.
fn tarjan(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        next: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        counter: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.counter);
        s.low[v] = s.counter;
        s.counter += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.next[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(i) if s.on_stack[w] => s.low[v] = s.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                scc.push(w);
                if w == v {
                    break;
                }
            }
            s.out.push(scc);
        }
    }
    let n = next.len();
    let mut s = State {
        next,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        counter: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
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
    let mut segments = raw.segments.iter().peekable();
    let mut base = at.clone();
    let mut inline = raw.inline_depth;
    match segments.peek().map(|s| s.as_str()) {
        Some("crate") => {
            base.clear();
            segments.next();
        }
        Some("self") => {
            segments.next();
        }
        Some("super") => {
            while segments.peek().map(|s| s.as_str()) == Some("super") {
                segments.next();
                match inline {
                    0 => {
                        base.pop();
                    }
                    _ => inline -= 1,
                }
            }
        }
        Some(first) if children.contains(first) => {}
        _ => return None,
    }
    base.extend(segments.filter(|s| *s != "self").cloned());
    Some(base)
}

/// Blanks comments, string and character literals (keeping line structure), so that
/// braces and paths in them are not taken for code.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < chars.len() {
        let c = chars[i];
        let at = |k: usize| chars.get(i + k).copied().unwrap_or('\0');
        if c == '/' && at(1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at_char(&chars, i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at_char(&chars, i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r'
            && (at(1) == '"' || (at(1) == '#' && (at(2) == '"' || at(2) == '#')))
            && !is_ident(chars.get(i.wrapping_sub(1)).copied().unwrap_or(' '))
        {
            let mut hashes = 0;
            i += 1;
            while chars.get(i) == Some(&'#') {
                hashes += 1;
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| at_char(&chars, i + k) == '#') {
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '"' {
            out.push_str("\"\"");
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            i += 1;
        } else if c == '\'' && (at(2) == '\'' || (at(1) == '\\')) {
            // A character literal (`'{'`, `'\n'`, `'\u{7f}'`); a lifetime has no closing quote.
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn at_char(chars: &[char], i: usize) -> char {
    chars.get(i).copied().unwrap_or('\0')
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Tokens of stripped code: identifiers, `::`, and single punctuation characters.
fn tokens(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_ident(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && at_char(&chars, i + 1) == ':' {
            out.push("::".into());
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

/// The declarations and paths of one stripped file.
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
                let mut depth = 0;
                let mut items = Vec::new();
                let mut item_start = i + 1;
                while i < t.len() {
                    match t[i].as_str() {
                        "{" => depth += 1,
                        "}" => {
                            depth -= 1;
                            if depth == 0 {
                                items.push(&t[item_start..i]);
                                break;
                            }
                        }
                        "," if depth == 1 => {
                            items.push(&t[item_start..i]);
                            item_start = i + 1;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                for item in items.into_iter().filter(|it| !it.is_empty()) {
                    out.extend(use_tree(item, path.clone()));
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
    fn the_agent_has_no_import_cycle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/src/lib.rs");
        let graph = Graph::read(&root).unwrap();
        let cycles = graph.cycles();
        println!(
            "agent/src: {} modules, {} import edges, {} cycles",
            graph.module_count(),
            graph.edges().len(),
            cycles.len()
        );
        for cycle in &cycles {
            println!("cycle: {}", cycle.join(" "));
        }
        assert!(cycles.is_empty(), "import cycles in agent/src: {cycles:#?}");
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
