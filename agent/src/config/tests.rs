//! The agent configuration: parsing, defaults, refusals and the shipped agent.toml.
use super::*;

#[test]
fn parses_a_gateway_config_with_defaults() {
    let text = "role = \"gateway\"\ninterfaces = [\"eth0\", \"eth1\"]\npolicy = \"policy\"\n";
    let c = AgentConfig::parse(Path::new("/etc/ward/agent.toml"), text).unwrap();
    assert_eq!(c.role, Role::Gateway);
    assert_eq!(c.interfaces, ["eth0", "eth1"]);
    assert_eq!(c.policy, Path::new("/etc/ward/policy"));
    assert_eq!(c.pin_dir, Path::new(DEFAULT_PIN_DIR));
    assert_eq!(c.failsafe.tcp_ports, [22]);
    assert!(!c.failsafe.is_active(), "no management prefix: no failsafe");
    assert_eq!(c.conntrack_entries, None);
}

#[test]
fn failsafe_prefixes_and_ports_are_checked() {
    let base = "role = \"host\"\ninterfaces = [\"eth0\"]\npolicy = \"p\"\n[failsafe]\n";
    let text = format!("{base}management = [\"198.18.7.0/24\", \"2001:db8:7::/48\"]\n");
    let c = AgentConfig::parse(Path::new("a.toml"), &text).unwrap();
    assert!(c.failsafe.is_active());
    assert_eq!(c.failsafe.management[1].to_string(), "2001:db8:7::/48");

    let text = format!("{base}management = [\"198.18.7.0/33\"]\n");
    let err = AgentConfig::parse(Path::new("a.toml"), &text)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("a.toml:5:15: "), "{err}");

    let text = format!("{base}tcp_ports = [1, 2, 3, 4, 5, 6, 7, 8, 9]\n");
    let err = AgentConfig::parse(Path::new("a.toml"), &text)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "a.toml:5:13: at most 8 failsafe ports");

    let text = format!("{base}tcp_ports = [22, 0]\n");
    let err = AgentConfig::parse(Path::new("a.toml"), &text)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "a.toml:5:13: port 0 cannot be a failsafe port");
}

#[test]
fn conntrack_entries_is_a_positive_count() {
    let base = "role = \"host\"\ninterfaces = [\"eth0\"]\npolicy = \"p\"\n";
    let c = AgentConfig::parse(
        Path::new("a.toml"),
        &format!("{base}conntrack_entries = 4096\n"),
    )
    .unwrap();
    assert_eq!(
        c.conntrack_entries.map(std::num::NonZeroU32::get),
        Some(4096)
    );
    let err = AgentConfig::parse(
        Path::new("a.toml"),
        &format!("{base}conntrack_entries = 0\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("a.toml:4:21: "), "{err}");
}

#[test]
fn signature_and_url_settings_are_checked_together() {
    let key = crate::distribution::SecretKey::generate()
        .public()
        .to_base64();
    let base = "role = \"host\"\ninterfaces = [\"eth0\"]\n";
    let parse = |text: String| AgentConfig::parse(Path::new("/etc/ward/a.toml"), &text);

    let c = parse(format!(
        "{base}policy_url = \"https://198.18.0.1/p.bundle\"\nrequire_signature = true\n\
         trusted_keys = [\"{key}\"]\nca_file = \"ca.pem\"\npoll_interval = \"5s\"\n"
    ))
    .unwrap();
    assert_eq!(c.policy, Path::new("/var/lib/ward/policy.bundle"));
    assert_eq!(c.ca_file.as_deref(), Some(Path::new("/etc/ward/ca.pem")));
    assert_eq!(c.poll_interval, std::time::Duration::from_secs(5));
    assert_eq!(c.trusted_keys[0].to_base64(), key);

    let c = parse(format!("{base}policy = \"p\"\n")).unwrap();
    assert!(!c.require_signature && c.trusted_keys.is_empty());
    assert_eq!(c.state_dir, Path::new(DEFAULT_STATE_DIR));
    assert_eq!(c.poll_interval, std::time::Duration::from_secs(30));

    let err = |text: String| parse(text).unwrap_err().to_string();
    assert_eq!(
        err(format!(
            "{base}policy = \"p\"\ntrusted_keys = [\"{key}\", \"AAAA\"]\n"
        )),
        "/etc/ward/a.toml:4:16: `AAAA` is not an Ed25519 public key: 3 bytes, not 32"
    );
    assert_eq!(
        err(format!("{base}policy = \"p\"\nrequire_signature = true\n")),
        "/etc/ward/a.toml:4:1: `require_signature = true` needs `trusted_keys`: no bundle \
         could be verified"
    );
    assert_eq!(
        err(base.to_owned()),
        "/etc/ward/a.toml:1:1: `policy` (or `policy_url`) is required"
    );
    assert_eq!(
        err(format!("{base}policy_url = \"http://198.18.0.1/p\"\n")),
        "/etc/ward/a.toml:3:1: `http://198.18.0.1/p` is not an https:// URL"
    );
    assert_eq!(
        err(format!("{base}policy_url = \"https://198.18.0.1/p\"\n")),
        "/etc/ward/a.toml:3:1: `policy_url` serves signed bundles: `trusted_keys` must \
         list the signer's key"
    );
    let keys = format!("trusted_keys = [\"{key}\"]\n");
    assert!(err(format!(
        "{base}{keys}policy = \"p.toml\"\npolicy_url = \"https://198.18.0.1/p\"\n"
    ))
    .starts_with("/etc/ward/a.toml:4:1: with `policy_url`, `policy` is where"));
    assert_eq!(
        err(format!(
            "{base}{keys}policy_url = \"https://198.18.0.1/p\"\npoll_interval = \"0s\"\n"
        )),
        "/etc/ward/a.toml:5:1: must be longer than 0"
    );
}

#[test]
fn errors_name_file_line_and_column() {
    let text = "role = \"host\"\ninterfaces = [\"eth0\"]\npolicy = \"p\"\nmood = \"x\"\n";
    let err = AgentConfig::parse(Path::new("a.toml"), text)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("a.toml:4:1: unknown field `mood`"), "{err}");

    let text = "role = \"router\"\ninterfaces = [\"eth0\"]\npolicy = \"p\"\n";
    let err = AgentConfig::parse(Path::new("a.toml"), text)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("a.toml:1:8: unknown variant `router`"),
        "{err}"
    );

    let text = "role = \"host\"\ninterfaces = []\npolicy = \"p\"\n";
    let err = AgentConfig::parse(Path::new("a.toml"), text)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "a.toml:2:1: `interfaces` lists no interface");

    // Positions come from the parser: a comment or a string naming the key first
    // is not taken for it.
    let text = "# interfaces: the NICs\nrole = \"host\"\npolicy = \"p\"\ninterfaces = []\n";
    let err = AgentConfig::parse(Path::new("a.toml"), text)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "a.toml:4:1: `interfaces` lists no interface");
    let text = "role = \"host\"\ninterfaces = [\"eth0\"]\npolicy = \"p\"\nstate_dir = \"\"\"\nrequire_signature = x\n\"\"\"\nrequire_signature = true\n";
    let err = AgentConfig::parse(Path::new("a.toml"), text)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("a.toml:7:1: `require_signature = true` needs"),
        "{err}"
    );
}

#[test]
fn every_structural_error_is_reported_in_one_run() {
    let text = "role = \"host\"\n# mdoe = 1\ninterfaces = [\"eth0\"]\npolicy = \"p\"\n\
                mdoe = \"audit\"\nconntrack_entries = \"many\"\n[failsafe]\n\
                confirm_within = \"abc\"\ntcp_portz = [22]\n";
    let err = AgentConfig::parse(Path::new("a.toml"), text).unwrap_err();
    let ConfigError::Several(errors) = &err else {
        panic!("one error only: {err}");
    };
    let places: Vec<String> = errors
        .iter()
        .map(|e| match e {
            ConfigError::Invalid {
                line,
                column,
                message,
                ..
            } => format!("{line}:{column}: {}", message.split(',').next().unwrap()),
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(
        places,
        [
            "5:1: unknown field `mdoe` (did you mean `mode`?)",
            "6:21: invalid type: string \"many\"",
            "8:18: invalid value: string \"abc\"",
            "9:1: unknown field `tcp_portz` (did you mean `tcp_ports`?)",
        ]
    );
    // One error stays one error.
    let one = "role = \"host\"\ninterfaces = [\"eth0\"]\npolicy = \"p\"\nmdoe = 1\n";
    let err = AgentConfig::parse(Path::new("a.toml"), one).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                line: 4,
                column: 1,
                ..
            }
        ),
        "{err}"
    );
}

/// What the Debian package installs as /etc/ward/agent.toml.
const SHIPPED: &str = include_str!("../../debian/agent.toml");

/// `text` with every commented-out setting (`#key = …`, `#[table]`) enabled.
fn enable_all(text: &str) -> String {
    let enabled: Vec<&str> = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '[') => rest,
            _ => l,
        })
        .collect();
    enabled.join("\n")
}

/// The keys serde accepts in `table` ("" for the top level), from the list its
/// `unknown field` error gives, so a new field is never missed.
fn accepted_keys(table: &str) -> Vec<String> {
    let base = "role = \"host\"\ninterfaces = [\"eth0\"]\npolicy = \"p\"\n";
    let text = format!("{base}{table}\nnot_a_key = 1\n");
    let err = AgentConfig::parse(Path::new("a.toml"), &text)
        .unwrap_err()
        .to_string();
    let (_, expected) = err
        .split_once("expected one of ")
        .or_else(|| err.split_once("expected "))
        .unwrap_or_else(|| panic!("no list of keys in {err:?}"));
    expected
        .split([',', ' '])
        .filter(|k| !k.is_empty() && *k != "or")
        .map(|k| k.trim().trim_matches('`').to_owned())
        .collect()
}

#[test]
fn the_shipped_config_parses_and_its_commented_values_are_the_defaults() {
    let path = Path::new("/etc/ward/agent.toml");
    let shipped = AgentConfig::parse(path, SHIPPED).unwrap();
    assert_eq!(shipped.role, Role::Host);
    assert_eq!(shipped.interfaces, ["eth0"]);
    assert_eq!(shipped.policy, Path::new("/etc/ward/policy"));
    // Every commented-out setting is valid as written (with `policy_url`, the
    // `policy` line is left out, as the file says it may be)...
    let polled = enable_all(SHIPPED).replace("policy = \"/etc/ward/policy\"\n", "");
    let all = AgentConfig::parse(path, &polled).unwrap();
    // ...and shows the default where there is one,
    assert_eq!(all.mode, shipped.mode);
    assert_eq!(all.watch_policy, shipped.watch_policy);
    assert_eq!(all.log_level, shipped.log_level);
    assert_eq!(all.events.per_source(), shipped.events.per_source());
    assert_eq!(all.events.per_second, shipped.events.per_second);
    assert_eq!(all.limits, shipped.limits);
    assert_eq!(all.control_socket, shipped.control_socket);
    assert_eq!(all.pin_dir, shipped.pin_dir);
    assert_eq!(all.require_signature, shipped.require_signature);
    assert_eq!(all.poll_interval, shipped.poll_interval);
    assert_eq!(all.state_dir, shipped.state_dir);
    assert_eq!(all.response, shipped.response);
    assert_eq!(all.failsafe.management, shipped.failsafe.management);
    assert_eq!(all.failsafe.tcp_ports, shipped.failsafe.tcp_ports);
    assert_eq!(all.breakglass, shipped.breakglass);
    assert_eq!(
        all.conntrack_entries.map(std::num::NonZeroU32::get),
        Some(ward_common::CONNTRACK_CAPACITY)
    );
    // ...or an example where the key is off when absent.
    assert_eq!(shipped.event_log, None);
    assert_eq!(shipped.metrics_listen, None);
    assert_eq!(shipped.failsafe.confirm_within, None);
    assert_eq!(shipped.failsafe.confirm_probe, None);
    assert!(shipped.trusted_keys.is_empty());
    assert_eq!((shipped.policy_url, shipped.ca_file), (None, None));
    assert!(all.trusted_keys.len() == 1 && all.policy_url.is_some() && all.ca_file.is_some());
    assert!(all.event_log.is_some() && all.metrics_listen.is_some());
    assert!(all.failsafe.confirm_within.is_some() && all.failsafe.confirm_probe.is_some());
}

#[test]
fn the_shipped_config_documents_every_key() {
    let all: toml::Table = toml::from_str(&enable_all(SHIPPED)).unwrap();
    for header in [
        "",
        "[response]",
        "[failsafe]",
        "[breakglass]",
        "[limits]",
        "[events]",
    ] {
        let table = match header.trim_matches(['[', ']']) {
            "" => &all,
            name => all[name].as_table().unwrap(),
        };
        let keys = accepted_keys(header);
        assert!(keys.len() >= 2, "{header}: {keys:?}");
        // The earlier name of `[events] per_source` stays accepted, undocumented.
        for key in keys.into_iter().filter(|k| k != "events_per_source") {
            assert!(
                table.contains_key(&key),
                "agent.toml does not document {header} {key}"
            );
        }
    }
}

#[test]
fn limits_and_event_budgets_with_the_earlier_key() {
    let base = "role = \"host\"\ninterfaces = [\"eth0\"]\npolicy = \"p\"\n";
    let parse = |extra: &str| AgentConfig::parse(Path::new("a.toml"), &format!("{base}{extra}"));
    let c = parse("").unwrap();
    assert_eq!(c.limits, LimitsConfig::default());
    assert_eq!(
        (c.limits.new_flows_per_source, c.limits.new_flow_burst),
        (200, 1000)
    );
    assert_eq!((c.events.per_source(), c.events.per_second), (100, 5000));

    let c = parse("events_per_source = 7\n").unwrap();
    assert_eq!(c.events.per_source(), 7, "the earlier key still counts");
    let c = parse("[events]\nper_source = 9\nper_second = 0\n[limits]\nnew_flows_per_source = 0\n")
        .unwrap();
    assert_eq!((c.events.per_source(), c.events.per_second), (9, 0));
    assert_eq!(c.limits.new_flows_per_source, 0);

    let err = parse("events_per_source = 7\n[events]\nper_source = 9\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("a.toml:4:1: `events_per_source` is the earlier name"),
        "{err}"
    );
    let err = parse("[limits]\nnew_flows_per_source = 300\nnew_flow_burst = 10\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("a.toml:6:1: `new_flow_burst` (10) must be at least"),
        "{err}"
    );
    let err = parse("[limits]\nnew_flow_burst = -1\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("a.toml:5:18: "), "{err}");
    let err = parse("[events]\nper_second = \"many\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("a.toml:5:14: "), "{err}");
}

#[test]
fn the_event_sink_is_a_syslog_url_checked_at_load() {
    let base = "role = \"host\"\ninterfaces = [\"eth0\"]\npolicy = \"p\"\n";
    let parse = |extra: &str| AgentConfig::parse(Path::new("a.toml"), &format!("{base}{extra}"));
    let c = parse("event_sink = \"syslog+tls://198.18.0.1:6514\"\nagent_name = \"clinic-1\"\n[events]\nsink_buffer = 5\n").unwrap();
    let url = c.event_sink.unwrap();
    assert_eq!(
        (url.transport, url.host.as_str(), url.port),
        (SinkTransport::Tls, "198.18.0.1", 6514)
    );
    assert_eq!(c.agent_name.as_deref(), Some("clinic-1"));
    assert_eq!(c.events.sink_buffer, 5);
    let c = parse("").unwrap();
    assert_eq!((c.event_sink, c.agent_name), (None, None));
    assert_eq!(c.events.sink_buffer, 10_000);

    let err = |extra: &str| parse(extra).unwrap_err().to_string();
    assert_eq!(
        err("event_sink = \"syslog+udp://198.18.0.1:514\"\n"),
        "a.toml:4:14: `syslog+udp://198.18.0.1:514`: the scheme must be syslog+tcp:// or syslog+tls://"
    );
    assert_eq!(
        err("event_sink = \"syslog+tcp://198.18.0.1:0\"\n"),
        "a.toml:4:14: `syslog+tcp://198.18.0.1:0`: the port must be a number from 1 to 65535"
    );
    assert_eq!(
        err("[events]\nsink_buffer = 0\n"),
        "a.toml:5:1: must hold at least 1 event"
    );
    assert_eq!(
        err("agent_name = \"\"\n"),
        "a.toml:4:1: `agent_name` must be a non-empty name without control characters"
    );
}
