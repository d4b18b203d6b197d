//! Policy diffs: the fixture pair's exact text and JSON, port set arithmetic, renamed and
//! removed zones, ICMP, changes that allow nothing new.
use super::*;

const OLD: &str = include_str!("../../../../tests/fixtures/policy-diff/old.toml");
const NEW: &str = include_str!("../../../../tests/fixtures/policy-diff/new.toml");
const TEXT: &str = include_str!("../../../../tests/fixtures/policy-diff/diff.txt");
const JSON: &str = include_str!("../../../../tests/fixtures/policy-diff/diff.json");

fn loaded(name: &str, text: &str) -> Loaded {
    load_str(name, text).unwrap_or_else(|e| panic!("{e:?}"))
}

fn diff_of(old: &str, new: &str) -> PolicyDiff {
    diff(&loaded("old.toml", old), &loaded("new.toml", new))
}

/// The plain lines of the `Flows` section.
fn flow_lines(d: &PolicyDiff) -> Vec<String> {
    d.flows.iter().map(ToString::to_string).collect()
}

#[test]
fn fixture_pair_gives_the_expected_text_and_json() {
    let d = diff_of(OLD, NEW);
    assert!(d.changed);
    assert_eq!(d.to_string(), TEXT);
    let expected: serde_json::Value = serde_json::from_str(JSON).expect("fixture JSON");
    assert_eq!(serde_json::to_value(&d).unwrap(), expected);
}

#[test]
fn same_policy_written_differently_has_no_difference() {
    let clinic = clinic();
    // Rules reordered and split, ports as services and ranges, `any` spelled out.
    let rewritten = CLINIC.split("# Modalities send").next().unwrap().to_owned()
        + "[[allow]]\nfrom = \"admin\"\nto = [\"world\", \"admin\", \"billing\", \"clinicians\", \"ehr\", \"imaging\", \"pacs\"]\nservices = [\"ssh\"]\nicmp = true\n"
        + "[[allow]]\nfrom = [\"imaging\", \"pacs\", \"ehr\", \"billing\", \"clinicians\"]\nto = \"admin\"\nservices = [\"syslog\"]\n"
        + "[[allow]]\nfrom = \"billing\"\nto = \"ehr\"\ntcp = [\"8443-8443\"]\n"
        + "[[allow]]\nfrom = \"clinicians\"\nto = \"ehr\"\nservices = [\"https\"]\n"
        + "[[allow]]\nfrom = \"imaging\"\nto = \"pacs\"\ntcp = [11112]\n"
        + "[[allow]]\nfrom = \"imaging\"\nto = \"pacs\"\nservices = [\"dicom\"]\nicmp = true\n";
    let d = diff(&clinic, &loaded("rewritten.toml", &rewritten));
    assert_eq!(flow_lines(&d), Vec::<String>::new());
    assert_eq!(d.zones, ZoneChanges::default());
    assert!(!d.changed);
    assert_eq!(d.to_string(), "No difference in what the policies allow.\n");
}

#[test]
fn port_sets_merge_overlapping_and_adjacent_ranges() {
    let r = |first, last| PortRange { first, last };
    let set = PortSet::from_ranges([
        r(300, 310),
        r(1, 5),
        r(6, 6),
        r(4, 9),
        r(65535, 65535),
        r(311, 400),
        r(402, 402),
    ]);
    assert_eq!(
        set.ranges(),
        [r(1, 9), r(300, 400), r(402, 402), r(65535, 65535)]
    );
    assert_eq!(set.to_string(), "1-9,300-400,402,65535");
    assert_eq!(
        PortSet::from_ranges([r(0, 65535), r(7, 7)]).ranges(),
        [r(0, 65535)]
    );
    assert!(PortSet::from_ranges([]).is_empty());

    let all = PortSet::from_ranges([r(0, 65535)]);
    let holes = PortSet::from_ranges([r(0, 0), r(80, 80), r(100, 200), r(65535, 65535)]);
    assert_eq!(all.minus(&holes).to_string(), "1-79,81-99,201-65534");
    assert!(holes.minus(&all).is_empty());
    assert_eq!(holes.minus(&PortSet::default()), holes);
    let a = PortSet::from_ranges([r(10, 20), r(30, 40)]);
    let b = PortSet::from_ranges([r(15, 35)]);
    assert_eq!(a.minus(&b).to_string(), "10-14,36-40");
    assert_eq!(b.minus(&a).to_string(), "21-29");
}

#[test]
fn port_set_difference_matches_a_bitmap_on_random_sets() {
    let mut rng = Rng(0x9e37);
    for _ in 0..300 {
        let random = |rng: &mut Rng| {
            let ranges: Vec<PortRange> = (0..rng.below(6))
                .map(|_| {
                    let first = rng.below(600) as u16 + if rng.below(5) == 0 { 64_900 } else { 0 };
                    let last = first.saturating_add(rng.below(80) as u16);
                    PortRange { first, last }
                })
                .collect();
            let mut bits = vec![false; 65536];
            ranges
                .iter()
                .for_each(|r| (r.first..=r.last).for_each(|p| bits[p as usize] = true));
            (PortSet::from_ranges(ranges), bits)
        };
        let ((a, abits), (b, bbits)) = (random(&mut rng), random(&mut rng));
        let diff = a.minus(&b);
        for (w, pair) in diff.ranges().windows(2).enumerate() {
            assert!(
                u32::from(pair[0].last) + 1 < u32::from(pair[1].first),
                "range {w} touches the next"
            );
        }
        for port in 0..=u16::MAX {
            let expected = abits[port as usize] && !bbits[port as usize];
            assert_eq!(
                diff.ranges().iter().any(|r| r.contains(port)),
                expected,
                "port {port}"
            );
        }
    }
}

const TWO_ZONES: &str =
    "[zones.imaging]\ncidrs = [\"198.18.20.0/24\"]\n[zones.pacs]\ncidrs = [\"198.18.21.0/24\"]\n";

#[test]
fn renamed_zone_moves_its_prefixes_and_flows_by_name() {
    let old = format!("{TWO_ZONES}[[allow]]\nfrom = \"imaging\"\nto = \"pacs\"\ntcp = [104]\n");
    let new = old.replace("imaging", "modalities");
    let d = diff_of(&old, &new);
    assert_eq!(
        flow_lines(&d),
        [
            "- deny  imaging -> pacs tcp/104  [was allowed by old.toml:5]",
            "+ allow modalities -> pacs tcp/104  [by new.toml:5]",
        ]
    );
    assert_eq!(d.zones.added, ["modalities"]);
    assert_eq!(d.zones.removed, ["imaging"]);
    let [moved] = &d.zones.prefixes[..] else {
        panic!("one prefix change: {:?}", d.zones.prefixes)
    };
    assert_eq!(moved.prefix.to_string(), "198.18.20.0/24");
    assert_eq!(moved.change, PrefixChangeKind::Moved);
    assert_eq!(
        (moved.old_zone.as_str(), moved.new_zone.as_str()),
        ("imaging", "modalities")
    );
    assert_eq!(moved.access, [], "the renamed zone may do what it did");
    assert!(d.changed);
    assert!(d.to_string().contains(
        "  ~ 198.18.20.0/24 moved from imaging to modalities\n      (no change in what its addresses may do)\n"
    ));
}

#[test]
fn removed_zone_falls_to_world_and_loses_its_access() {
    let old = format!("{TWO_ZONES}[[allow]]\nfrom = \"imaging\"\nto = \"pacs\"\ntcp = [104]\n[[allow]]\nfrom = \"world\"\nto = \"pacs\"\ntcp = [443]\n");
    let new = "[zones.pacs]\ncidrs = [\"198.18.21.0/24\"]\n[[allow]]\nfrom = \"world\"\nto = \"pacs\"\ntcp = [443]\n";
    let d = diff_of(&old, new);
    assert_eq!(
        flow_lines(&d),
        ["- deny  imaging -> pacs tcp/104  [was allowed by old.toml:5]"]
    );
    assert_eq!(d.zones.removed, ["imaging"]);
    let text = d.to_string();
    assert!(
        text.contains(concat!(
            "  - 198.18.20.0/24 removed from imaging (its addresses are now in world)\n",
            "      + can now open tcp/443 to pacs\n",
            "      - can no longer open tcp/104 to pacs\n",
        )),
        "{text}"
    );
}

#[test]
fn icmp_changes_have_no_ports() {
    let old = format!(
        "{TWO_ZONES}[[allow]]\nfrom = \"imaging\"\nto = \"pacs\"\ntcp = [104]\nicmp = true\n"
    );
    let new = format!("{TWO_ZONES}[[allow]]\nfrom = \"imaging\"\nto = \"pacs\"\ntcp = [104]\n[[allow]]\nfrom = \"pacs\"\nto = \"imaging\"\nicmp = true\n");
    let d = diff_of(&old, &new);
    assert_eq!(
        flow_lines(&d),
        [
            "- deny  imaging -> pacs icmp  [was allowed by old.toml:5]",
            "+ allow pacs -> imaging icmp  [by new.toml:9]",
        ]
    );
    let json = serde_json::to_value(&d.flows[0]).unwrap();
    assert_eq!(json["protocol"], "icmp");
    assert_eq!(json["ports"], serde_json::json!([]));
}

#[test]
fn ranges_owned_by_several_rules_cite_each() {
    let old = format!("{TWO_ZONES}[[allow]]\nfrom = \"imaging\"\nto = \"pacs\"\ntcp = [7]\n");
    let new = format!("{TWO_ZONES}[[allow]]\nfrom = \"imaging\"\nto = \"pacs\"\ntcp = [\"100-104\"]\n[[allow]]\nfrom = \"any\"\nto = \"pacs\"\ntcp = [\"105-110\", 200]\nservices = [\"http\"]\n");
    let d = diff_of(&old, &new);
    assert_eq!(
        flow_lines(&d),
        [
            "+ allow imaging -> pacs tcp/80,200 (http)  [by new.toml:9]",
            "+ allow imaging -> pacs tcp/100-110  [by new.toml:5, new.toml:9]",
            "- deny  imaging -> pacs tcp/7  [was allowed by old.toml:5]",
            "+ allow pacs -> pacs tcp/80,105-110,200 (http)  [by new.toml:9]",
            "+ allow world -> pacs tcp/80,105-110,200 (http)  [by new.toml:9]",
        ]
    );
}

#[test]
fn mode_changes_count_and_redundant_prefixes_do_not() {
    let base = format!("{TWO_ZONES}[[allow]]\nfrom = \"imaging\"\nto = \"pacs\"\ntcp = [104]\n");
    let audit = base.replace("[zones.pacs]\n", "[zones.pacs]\nmode = \"audit\"\n");
    let d = diff_of(&base, &audit);
    assert!(d.changed && d.flows.is_empty());
    assert_eq!(d.zones.modes.len(), 1);
    assert!(d
        .to_string()
        .contains("  ~ zone pacs: mode enforce -> audit"));

    let inner = base.replace(
        "\"198.18.20.0/24\"]",
        "\"198.18.20.0/24\", \"198.18.20.64/26\"]",
    );
    let d = diff_of(&base, &inner);
    assert_eq!(d.zones.prefixes.len(), 1);
    assert_eq!(d.zones.prefixes[0].old_zone, "imaging");
    assert!(!d.changed, "its addresses were in imaging already");
}
