//! The Grafana dashboards in `deploy/grafana/` ask only for series the exporter
//! writes: every `ward_…` name in a dashboard is a sample name of [`encode`]'s output.
use std::{collections::BTreeSet, path::Path};

use super::{
    encode,
    encode_tests::{parse, snapshot, status},
};

/// The `ward_…` names in `text` (a name is letters, digits and underscores).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("ward_") {
        let word_start = at == 0 || {
            let before = rest.as_bytes()[at - 1];
            !(before.is_ascii_alphanumeric() || before == b'_')
        };
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if word_start {
            names.insert(tail[..len].to_owned());
        }
        rest = &tail[len..];
    }
    names
}

/// The names in `dashboard` that the exporter does not write.
fn unknown(dashboard: &str) -> Vec<String> {
    let written: BTreeSet<String> = parse(&encode(&status(), &snapshot()))
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    metric_names(dashboard)
        .into_iter()
        .filter(|n| !written.contains(n))
        .collect()
}

#[test]
fn every_metric_of_the_dashboards_is_exported() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(metric_names(&text).len() >= 20, "{}", path.display());
            assert_eq!(unknown(&text), Vec::<String>::new(), "{}", path.display());
            seen += 1;
        }
    }
    assert_eq!(seen, 1, "dashboards in {}", dir.display());
}

#[test]
fn a_misspelt_or_family_name_is_found() {
    let panel = r#"{"expr": "increase(ward_tamper_total[1h]) + ward_tamper + ward_quarantined_host{instance=\"a\"} + my_ward_x"}"#;
    assert_eq!(unknown(panel), ["ward_quarantined_host", "ward_tamper"]);
}
