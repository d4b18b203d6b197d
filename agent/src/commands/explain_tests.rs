//! `ward explain`: exact output and exit code for addresses, prefixes, zone names and
//! service names, audit, the failsafe, and bad input.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{explain, ExplainArgs};

const CLINIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/clinic.toml");

/// Runs `ward explain` with `policy` and `config`: exit code, stdout, stderr.
fn run(
    policy: Option<&Path>,
    config: Option<&Path>,
    flow: [&str; 3],
) -> (ExitCode, String, String) {
    let args = ExplainArgs {
        policy,
        config,
        trusted_keys: &[],
        live: None,
        from: flow[0],
        to: flow[1],
        service: flow[2],
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = explain(&args, &mut out, &mut err);
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8");
    (code, text(out), text(err))
}

fn clinic(flow: [&str; 3]) -> (ExitCode, String, String) {
    run(Some(Path::new(CLINIC)), None, flow)
}

/// A scratch directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-explain-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn exit_code_says_the_verdict() {
    assert_eq!(
        clinic(["198.18.20.5", "198.18.21.1", "tcp/104"]),
        (
            ExitCode::from(0),
            format!("allow imaging -> pacs tcp/104 by rule #0 at {CLINIC}:34\n"),
            String::new()
        )
    );
    assert_eq!(
        clinic(["198.18.20.5", "198.18.23.1", "tcp/443"]),
        (
            ExitCode::from(1),
            "deny imaging -> billing tcp/443: no rule allows it\n".to_owned(),
            String::new()
        )
    );
}

#[test]
fn zone_names_prefixes_and_service_names() {
    assert_eq!(
        clinic(["imaging", "pacs", "dicom"]),
        (
            ExitCode::from(0),
            format!(
                "allow imaging -> pacs tcp/104 by rule #0 at {CLINIC}:34\n\
                 allow imaging -> pacs tcp/11112 by rule #0 at {CLINIC}:34\n"
            ),
            String::new()
        )
    );
    let (code, out, _) = clinic(["imaging", "billing", "dicom"]);
    assert_eq!(code, ExitCode::from(1));
    assert_eq!(
        out,
        "deny imaging -> billing tcp/104: no rule allows it\n\
         deny imaging -> billing tcp/11112: no rule allows it\n"
    );
    assert_eq!(
        clinic(["198.18.24.0/25", "198.18.99.0/24", "ssh"]).1,
        format!("allow admin -> world tcp/22 by rule #3 at {CLINIC}:56\n")
    );
    assert_eq!(
        clinic(["world", "ehr", "icmp"]).1,
        "deny world -> ehr icmp: no rule allows it\n"
    );
}

#[test]
fn bad_input_exits_2_and_says_why() {
    let bad = |flow: [&str; 3]| {
        let (code, out, err) = clinic(flow);
        assert_eq!((code, out.as_str()), (ExitCode::from(2), ""), "{flow:?}");
        err
    };
    assert_eq!(
        bad(["198.18.20.500", "pacs", "tcp/104"]),
        "ward: error: `198.18.20.500` is not an address, a CIDR prefix or a zone of the policy\n"
    );
    assert_eq!(
        bad(["imagin", "pacs", "tcp/104"]),
        "ward: error: `imagin` is not an address, a CIDR prefix or a zone of the policy (did you mean `imaging`?)\n"
    );
    assert_eq!(
        bad(["198.18.20.5", "pacs", "dicon"]),
        "ward: error: unknown service `dicon` (did you mean `dicom`?): expected a name `ward policy services` lists, tcp/PORT, udp/PORT or icmp\n"
    );
    assert_eq!(
        bad(["198.18.20.5", "pacs", "tcp/http"]),
        "ward: error: bad service `tcp/http`: expected tcp/PORT, udp/PORT or icmp (PORT 1-65535)\n"
    );
    assert_eq!(
        bad(["198.18.20.5", "2001:db8::1", "tcp/104"]),
        "ward: error: 198.18.20.5 and 2001:db8::1 are not of the same address family\n"
    );
    assert_eq!(
        bad(["198.18.0.0/16", "pacs", "tcp/104"]),
        "ward: error: 198.18.0.0/16 spans several zones (world, admin, billing, clinicians, ehr, imaging, pacs): name an address, a narrower prefix or a zone\n"
    );
    assert_eq!(
        bad(["198.18.20.1/24", "pacs", "tcp/104"]),
        "ward: error: 198.18.20.1/24 has host bits set: the network is 198.18.20.0/24\n"
    );
    let missing = Path::new(CLINIC).with_file_name("does-not-exist.toml");
    let (code, _, err) = run(Some(&missing), None, ["imaging", "pacs", "dicom"]);
    assert_eq!(code, ExitCode::from(2));
    assert!(
        err.ends_with(&format!(
            "ward: error: policy {} is invalid\n",
            missing.display()
        )),
        "{err}"
    );
}

#[test]
fn audited_zones_pass_as_audit() {
    let dir = scratch("audit");
    let text = std::fs::read_to_string(CLINIC)
        .unwrap()
        .replace("[zones.billing]\n", "[zones.billing]\nmode = \"audit\"\n");
    let policy = dir.join("audit.toml");
    std::fs::write(&policy, text).unwrap();
    let (code, out, _) = run(Some(&policy), None, ["imaging", "billing", "tcp/443"]);
    assert_eq!(
        (code, out.as_str()),
        (
            ExitCode::from(0),
            "audit imaging -> billing tcp/443: no rule allows it; passes, logged: zone billing is in audit mode\n"
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_config_brings_the_failsafe_and_the_agent_mode() {
    let dir = scratch("config");
    let config = dir.join("agent.toml");
    let head = format!("role = \"host\"\ninterfaces = [\"eth0\"]\npolicy = \"{CLINIC}\"\n");
    let failsafe = "[failsafe]\nmanagement = [\"198.18.25.0/28\"]\n";
    std::fs::write(&config, format!("{head}{failsafe}")).unwrap();
    assert_eq!(
        run(None, Some(&config), ["198.18.25.1", "pacs", "ssh"]),
        (
            ExitCode::from(0),
            "allow clinicians -> pacs tcp/22 by the failsafe (management prefix 198.18.25.0/28)\n"
                .to_owned(),
            String::new()
        )
    );
    // Not the whole zone, nor another port: the rules decide.
    assert_eq!(
        run(None, Some(&config), ["clinicians", "pacs", "ssh"]).1,
        "deny clinicians -> pacs tcp/22: no rule allows it\n"
    );
    std::fs::write(&config, format!("mode = \"audit\"\n{head}")).unwrap();
    assert_eq!(
        run(None, Some(&config), ["clinicians", "pacs", "https"]),
        (
            ExitCode::from(0),
            "audit clinicians -> pacs tcp/443: no rule allows it; passes, logged: the agent is in audit mode\n".to_owned(),
            String::new()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--live`: the daemon decides (here the control tests' fake: the clinic policy with
/// 198.18.20.5 quarantined); the command prints its lines with the same exit codes.
#[tokio::test]
async fn live_prints_the_agents_decision() {
    use crate::control::tests::{blocking, Harness};
    let h = Harness::start(16, vec![]);
    let path = h.socket.clone();
    let ask = |flow: [&'static str; 3]| {
        let socket = path.clone();
        blocking(move || {
            let args = ExplainArgs {
                policy: None,
                config: None,
                trusted_keys: &[],
                live: Some(&socket),
                from: flow[0],
                to: flow[1],
                service: flow[2],
            };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = explain(&args, &mut out, &mut err);
            let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8");
            (code, text(out), text(err))
        })
    };
    assert_eq!(
        ask(["198.18.20.6", "pacs", "dicom"]).await,
        (
            ExitCode::from(0),
            format!(
                "allow imaging -> pacs tcp/104 by rule #0 at {CLINIC}:34\n\
                 allow imaging -> pacs tcp/11112 by rule #0 at {CLINIC}:34\n"
            ),
            String::new()
        )
    );
    assert_eq!(
        ask(["198.18.20.5", "pacs", "tcp/104"]).await,
        (
            ExitCode::from(1),
            "deny imaging -> pacs tcp/104: 198.18.20.5 is quarantined (scan)\n".to_owned(),
            String::new()
        )
    );
    assert_eq!(
        ask(["198.18.20.5", "pacs", "tcp/99999"]).await,
        (
            ExitCode::from(2),
            String::new(),
            "ward: error: the ward daemon answered: bad service `tcp/99999`: expected tcp/PORT, \
             udp/PORT or icmp (PORT 1-65535)\n"
                .to_owned()
        )
    );
    drop(h);
    let gone = ask(["imaging", "pacs", "tcp/104"]).await;
    assert_eq!(gone.0, ExitCode::from(2));
    assert!(
        gone.2
            .starts_with("ward: error: cannot reach the ward daemon at "),
        "{gone:?}"
    );
}
