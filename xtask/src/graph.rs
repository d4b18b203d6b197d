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
mod parse;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use parse::{absolute, parse, Raw};

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

#[cfg(test)]
mod tests;
