//! The import graph on synthetic crates and on Ward's own.
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
