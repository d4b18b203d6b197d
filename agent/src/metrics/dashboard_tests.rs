//! The Grafana dashboards in `deploy/grafana/` and the alerting rules in
//! `deploy/prometheus/` ask only for series the exporter writes: every `ward_…` name
//! in them is a sample name of [`encode`]'s output.
use std::{collections::BTreeSet, path::Path};

use super::{
    encode,
    encode_tests::parse,
    fixtures::{snapshot, status},
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

/// The files of `dir` (relative to the workspace) ending in `.ext`, with their text.
fn files(dir: &str, ext: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == ext) {
            let text = std::fs::read_to_string(&path).unwrap();
            found.push((path.display().to_string(), text));
        }
    }
    found.sort();
    found
}

#[test]
fn every_metric_of_the_dashboards_is_exported() {
    let dashboards = files("deploy/grafana", "json");
    for (path, text) in &dashboards {
        assert!(metric_names(text).len() >= 20, "{path}");
        assert_eq!(unknown(text), Vec::<String>::new(), "{path}");
    }
    let names: Vec<&str> = dashboards
        .iter()
        .filter_map(|(p, _)| p.rsplit('/').next())
        .collect();
    assert_eq!(names, ["ward-dashboard.json", "ward-fleet-dashboard.json"]);
}

/// The alerting rules (`deploy/prometheus/ward-rules.yml`) and their tests' input
/// series name only series the exporter writes.
#[test]
fn every_metric_of_the_alerting_rules_is_exported() {
    let rules = files("deploy/prometheus", "yml");
    assert_eq!(rules.len(), 2, "{rules:?}");
    for (path, text) in &rules {
        assert!(metric_names(text).len() >= 10, "{path}");
        assert_eq!(unknown(text), Vec::<String>::new(), "{path}");
    }
}

#[test]
fn a_misspelt_or_family_name_is_found() {
    let panel = r#"{"expr": "increase(ward_tamper_total[1h]) + ward_tamper + ward_quarantined_host{instance=\"a\"} + my_ward_x"}"#;
    assert_eq!(unknown(panel), ["ward_quarantined_host", "ward_tamper"]);
}
