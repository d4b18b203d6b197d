//! Reading a file table by table (`sections.rs`) gives the structure and structural
//! errors of the whole file's tree, spans included, or declines: then the whole file is
//! parsed, with its exact errors.
use super::super::diagnostic::Source;
use super::super::{sections, structure, tree};

fn source(text: &str) -> Source {
    Source::new("p.toml".into(), text.to_owned())
}

/// Read by pieces, the same structure (with the same spans) and the same errors as
/// read from the whole file's tree.
fn same(text: &str) {
    let source = source(text);
    let whole = tree::parse(text).expect("the text parses");
    let whole = format!("{:?}", structure::raw_file(&source, &whole));
    let by_pieces = sections::raw_file(&source).expect("read by pieces");
    assert_eq!(format!("{by_pieces:?}"), whole, "text:\n{text}");
}

#[test]
fn pieces_give_the_whole_files_tree() {
    same(include_str!("../../../../policies/clinic.toml"));
    same("");
    same("allow_empty = true\n");
    same("# only a comment\n\n[zones.a]\ncidrs = [\"198.18.0.0/24\"]\n");
    same(
        "allow_empty = false # why\n  [zones.b] # indented\ncidrs = [\n  \"198.18.1.0/24\",\n  \"2001:db8::/64\",\n]\n\
         description = \"\"\"two\nlines\"\"\"\nmode = \"audit\"\n[[allow]]\nfrom = \"b\"\nto = [\"a\", \"b\"]\n\
         tcp = [22, \"80-81\"]\nicmp = true\nx.y = 1\n\t[zones.a]\ncidrs = [\"198.18.0.0/24\"]\n[[allow]]\n\
         from = \"a\"\nto = \"b\"\nudp = [53]\n\r\n",
    );
    // Structural errors are the checker's: parsed by pieces all the same.
    same("[[allow]]\nfrom = 1\nbogus = { a = [1, 2] }\n[zones.c]\ncidrs = 7\n");
}

#[test]
fn pieces_decline_what_could_parse_otherwise() {
    for text in [
        // A zone defined twice, a zone's sub-table, a table named twice (all
        // TOML errors or merges only the whole document judges).
        "[zones.a]\ncidrs = []\n[zones.a]\ncidrs = []\n",
        "[zones.a]\ncidrs = []\n[zones.a.b]\nx = 1\n",
        "[zones.a.b]\nx = 1\n[zones.a.c]\nx = 1\n",
        "[other]\nx = 1\n[other]\ny = 1\n",
        // `zones` or `allow` before the first header, or as a table of its own.
        "zones.a.cidrs = []\n[zones.b]\ncidrs = []\n",
        "allow = []\n[[allow]]\nfrom = \"a\"\n",
        "[zones]\n[zones.a]\ncidrs = []\n",
        "[allow]\nfrom = \"a\"\n",
        // A header-like line inside a multi-line array or string.
        "[zones.a]\ncidrs = [\n[\"198.18.0.0/24\"]]\n",
        "[zones.a]\ndescription = \"\"\"\n[zones.b]\n\"\"\"\ncidrs = []\n",
        // A syntax error.
        "[zones.a]\ncidrs = [\n",
    ] {
        assert!(
            sections::raw_file(&source(text)).is_none(),
            "read by pieces:\n{text}"
        );
    }
}

/// The checker's quick read of a plain prefix gives what the general parser gives, and
/// leaves every other form to it.
#[test]
fn quick_prefixes_read_as_the_general_parser_does() {
    use super::super::check::quick_cidr;
    for text in [
        "198.18.0.0/15",
        "198.18.20.1/32",
        "0.0.0.0/0",
        "2001:db8::/32",
        "2001:db8:1:2::/64",
        "::ffff:198.18.0.1/128",
        "198.18.0.0/33",
        "2001:db8::/129",
    ] {
        assert_eq!(quick_cidr(text), text.parse().ok(), "{text}");
    }
    for text in [
        "198.18.0.0/08",
        "198.18.0.0/+8",
        "198.18.0.0/",
        "198.18.0.0",
        "x/8",
        "198.18.0.0/0008",
    ] {
        assert_eq!(quick_cidr(text), None, "{text}");
    }
}

/// A generated policy of many zones and rules (the shape of the benchmark's) reads the
/// same by pieces.
#[test]
fn a_large_policy_reads_the_same_by_pieces() {
    let mut text = String::from("# generated\n");
    for z in 0..40 {
        text.push_str(&format!(
            "[zones.z{z:02}]\ncidrs = [\"198.18.{z}.0/24\", \"2001:db8:{z}::/64\"]\n"
        ));
    }
    for r in 0..200 {
        let (a, b) = (r % 40, (r * 7 + 1) % 40);
        text.push_str(&format!(
            "[[allow]]\nfrom = \"z{a:02}\"\nto = \"z{b:02}\"\ntcp = [{}, \"2000-2010\"]\n",
            1024 + r
        ));
    }
    same(&text);
}
