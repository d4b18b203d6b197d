//! End-to-end `ward explain --live` on the simulated clinic (root, namespaces, the
//! kernel): the running agent's answer follows the kernel's order with its quarantines
//! and break-glass grants, and the probe's traffic agrees with each verdict. Run with
//! `--test-threads=1`.
use std::net::IpAddr;

mod support;

use support::{
    gateway::{clinic_policy, prepare, start_gateway},
    run::Run,
};
use ward_tests::{reach, Clinic, Proto, WardAgent};

/// `ward explain --live FROM TO SERVICE`: exit code, stdout, stderr.
fn explain(agent: &WardAgent, from: IpAddr, to: IpAddr, service: &str) -> (i32, String, String) {
    let (from, to) = (from.to_string(), to.to_string());
    let out = agent
        .cli(&["explain", "--live", &from, &to, service])
        .expect("run ward explain");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8");
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

#[test]
fn the_live_verdict_follows_quarantines_and_grants_and_matches_traffic() {
    prepare("the explain --live end-to-end test");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("explain-live");
    let settings = "log_level = \"denied\"\n[response]\nquarantine_allow = [\"admin\"]\n";
    let agent = start_gateway(&clinic, &clinic_policy(), &run.settings(settings));
    let (imaging, pacs, billing, admin) = (
        clinic.host("imaging"),
        clinic.host("pacs"),
        clinic.host("billing"),
        clinic.host("admin"),
    );
    let (img, pacs_ip, billing_ip): (IpAddr, IpAddr, IpAddr) =
        (imaging.v4.into(), pacs.v4.into(), billing.v4.into());
    let policy = clinic_policy().canonicalize().expect("the clinic policy");
    let rule0 = format!("{}:34\n", policy.display());

    // The policy alone: allowed, and the flow passes.
    let (code, out, err) = explain(&agent, img, pacs_ip, "tcp/104");
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert_eq!(
        out,
        format!("allow imaging -> pacs tcp/104 by rule #0 at {rule0}")
    );
    assert!(reach(&imaging.ns, Proto::Tcp, pacs_ip, 104));

    // Quarantined: denied, naming the quarantine, and the flow is dropped; a
    // `quarantine_allow` zone still reaches the host under the policy.
    let (ok, text) = agent.cli_outcome(&["quarantine", &img.to_string(), "--reason", "INC-9"]);
    assert!(ok, "ward quarantine: {text}");
    assert_eq!(
        explain(&agent, img, pacs_ip, "tcp/104"),
        (
            1,
            format!("deny imaging -> pacs tcp/104: {img} is quarantined (INC-9)\n"),
            String::new()
        )
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, pacs_ip, 104),
        "the quarantined host reached PACS"
    );
    let (code, out, _) = explain(&agent, admin.v4.into(), img, "tcp/22");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("allow admin -> imaging tcp/22 by rule #3 at "),
        "{out}"
    );
    assert!(
        reach(&admin.ns, Proto::Tcp, img, 22),
        "admin lost its access"
    );
    let (ok, text) = agent.cli_outcome(&["release", &img.to_string()]);
    assert!(ok, "ward release: {text}");

    // No rule: denied and dropped; a break-glass grant: allowed, naming it, and passes.
    assert_eq!(
        explain(&agent, img, billing_ip, "https"),
        (
            1,
            "deny imaging -> billing tcp/443: no rule allows it\n".to_owned(),
            String::new()
        )
    );
    assert!(!reach(&imaging.ns, Proto::Tcp, billing_ip, 443));
    let (ok, text) = agent.cli_outcome(&[
        "breakglass",
        "--from",
        "imaging",
        "--to",
        "billing",
        "--service",
        "https",
        "--for",
        "10m",
        "--reason",
        "INC-10",
    ]);
    assert!(ok, "ward breakglass: {text}");
    let (code, out, err) = explain(&agent, img, billing_ip, "https");
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert!(
        out.starts_with("allow imaging -> billing tcp/443 by break-glass grant 0 (until 20")
            && out.ends_with("Z)\n"),
        "{out}"
    );
    assert!(reach(&imaging.ns, Proto::Tcp, billing_ip, 443));
    // Only what was granted.
    assert_eq!(explain(&agent, img, billing_ip, "tcp/22").0, 1);

    // Bad input: exit 2, the agent's refusal on stderr.
    let (code, out, err) = explain(&agent, img, pacs_ip, "tcp/0");
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.starts_with("ward: error: the ward daemon answered: bad service `tcp/0`"),
        "{err}"
    );
}
