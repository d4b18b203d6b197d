//! Named services: the catalogue's ports, their compilation, unknown names.
use super::*;

const ZONES: &str = "[zones.a]\ncidrs = [\"10.0.1.0/24\"]\n[zones.b]\ncidrs = [\"10.0.2.0/24\"]\n";

fn rule(body: &str) -> String {
    format!("{ZONES}[[allow]]\nfrom = \"a\"\nto = \"b\"\n{body}")
}

#[test]
fn catalogue_has_the_registered_ports() {
    let ports = |name: &str| {
        let s = catalogue::lookup(name).unwrap_or_else(|| panic!("{name} is catalogued"));
        (s.tcp.to_vec(), s.udp.to_vec())
    };
    let expected: &[(&str, &[u16], &[u16])] = &[
        ("dicom", &[104, 11112], &[]),
        ("hl7-mllp", &[2575], &[]),
        ("fhir", &[443], &[]),
        ("https", &[443], &[]),
        ("http", &[80], &[]),
        ("ssh", &[22], &[]),
        ("dns", &[53], &[53]),
        ("ntp", &[], &[123]),
        ("kerberos", &[88], &[88]),
        ("ldap", &[389], &[]),
        ("ldaps", &[636], &[]),
        ("smb", &[445], &[]),
        ("syslog", &[], &[514]),
        ("rdp", &[3389], &[]),
    ];
    for &(name, tcp, udp) in expected {
        assert_eq!(ports(name), (tcp.to_vec(), udp.to_vec()), "{name}");
    }
    let names: Vec<&str> = catalogue::CATALOGUE.iter().map(|s| s.name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted, "sorted and unique, for lookup");
    assert!(catalogue::CATALOGUE
        .iter()
        .all(|s| !(s.tcp.is_empty() && s.udp.is_empty())));
}

#[test]
fn services_compile_to_the_same_entries_as_their_ports() {
    for service in catalogue::CATALOGUE {
        let list = |ports: &[u16]| {
            ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let named = load_str(
            "p.toml",
            &rule(&format!("services = [\"{}\"]\n", service.name)),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let explicit = load_str(
            "p.toml",
            &rule(&format!(
                "tcp = [{}]\nudp = [{}]\n",
                list(service.tcp),
                list(service.udp)
            )),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(named.compiled, explicit.compiled, "{}", service.name);
        assert_eq!(named.policy.rules[0].services, [service.name]);
    }
}

#[test]
fn services_add_to_explicit_ports_and_explain_names_the_rule() {
    let loaded = load_str(
        "p.toml",
        &rule("tcp = [8443]\nservices = [\"dicom\", \"ntp\", \"dicom\"]\n"),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let r = &loaded.policy.rules[0];
    assert_eq!(r.services, ["dicom", "ntp"]);
    let single = |p| PortRange { first: p, last: p };
    assert_eq!(
        r.allowed[&Protocol::Tcp],
        [
            single(8443),
            single(104),
            single(11112),
            single(104),
            single(11112)
        ]
    );
    assert_eq!(r.allowed[&Protocol::Udp], [single(123)]);
    assert!(!r.allowed.contains_key(&Protocol::Icmp));
    let explain = |svc: &str| {
        let service: Service = svc.parse().unwrap();
        let (a, b) = ("10.0.1.1".parse().unwrap(), "10.0.2.1".parse().unwrap());
        loaded.policy.explain(a, b, &service).unwrap().to_string()
    };
    assert_eq!(
        explain("tcp/11112"),
        "allow a -> b tcp/11112 by rule #0 at p.toml:5"
    );
    assert_eq!(
        explain("udp/123"),
        "allow a -> b udp/123 by rule #0 at p.toml:5"
    );
    assert_eq!(explain("tcp/123"), "deny a -> b tcp/123: no rule allows it");
}

#[test]
fn unknown_services_are_errors_with_a_suggestion() {
    let errs: Vec<String> = load_str(
        "p.toml",
        &rule("services = [\"https\", \"dicm\", \"DICOM\", \"telnet\", 22]\n"),
    )
    .expect_err("unknown services")
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        errs,
        [
            "p.toml:8:22: error: unknown service `dicm` (did you mean `dicom`?); `ward policy services` lists them",
            "p.toml:8:30: error: unknown service `DICOM` (did you mean `dicom`?); `ward policy services` lists them",
            "p.toml:8:39: error: unknown service `telnet`; `ward policy services` lists them",
            "p.toml:8:49: error: `services` takes service names (strings), not 22",
        ]
    );
    let errs: Vec<String> = load_str("p.toml", &rule("services = []\n"))
        .expect_err("allows nothing")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        ["p.toml:5:1: error: rule allows nothing: give `tcp`, `udp`, `services` or `icmp = true`"]
    );
    assert_eq!(catalogue::suggest("syslgo"), Some("syslog"));
    assert_eq!(catalogue::suggest("ldpas"), Some("ldaps"));
    assert_eq!(catalogue::suggest("x"), None);
}
