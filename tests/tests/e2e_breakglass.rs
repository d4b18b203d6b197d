//! End-to-end break-glass on the simulated clinic (root, namespaces, the kernel): a
//! grant opens exactly one zone pair and service, both ends are alerts in the event
//! log, the kernel ends it on time even while the agent is stopped (cutting the
//! connection it allowed), and a grant survives an agent restart until it is ended by
//! hand. Run with `--test-threads=1`.
use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

mod support;

use support::{
    gateway::{clinic_policy, prepare, start_gateway},
    run::Run,
};
use ward_tests::{reach, util::signal, Clinic, Hold, Proto, WardAgent};

/// How long the expiring grant lasts.
/// Long enough for the checks made before its expiry, also under TCG on a loaded
/// machine (the 6.1 matrix once needed more than 5 s for them).
const GRANT_SECS: u64 = 15;

fn start(clinic: &Clinic, run: &Run) -> WardAgent {
    prepare("the break-glass end-to-end tests");
    start_gateway(
        clinic,
        &clinic_policy(),
        &run.settings("log_level = \"denied\"\n"),
    )
}

/// `ward breakglass imaging -> billing https` for `for_`.
fn grant_https(agent: &WardAgent, for_: &str) -> String {
    let (ok, text) = agent.cli_outcome(&[
        "breakglass",
        "--from",
        "imaging",
        "--to",
        "billing",
        "--service",
        "https",
        "--for",
        for_,
        "--reason",
        "INC-4711 vendor support",
    ]);
    assert!(ok, "ward breakglass: {text}\n{}", agent.log());
    text
}

#[test]
fn a_grant_allows_one_service_one_way_then_the_kernel_ends_it_on_time() {
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("breakglass-expiry");
    let agent = start(&clinic, &run);
    let (imaging, billing, pacs) = (
        clinic.host("imaging"),
        clinic.host("billing"),
        clinic.host("pacs"),
    );
    let to_billing: IpAddr = billing.v4.into();
    assert!(
        !reach(&imaging.ns, Proto::Tcp, to_billing, 443),
        "the policy denies imaging -> billing https"
    );

    let granted_at = Instant::now();
    let text = grant_https(&agent, &format!("{GRANT_SECS}s"));
    assert!(
        text.starts_with("granted grant 0: imaging -> billing https until "),
        "{text}"
    );
    // Exactly what was granted: that service, that direction, that zone pair.
    assert!(reach(&imaging.ns, Proto::Tcp, to_billing, 443));
    assert!(reach(&imaging.ns, Proto::Tcp, billing.v6.into(), 443));
    assert!(!reach(&imaging.ns, Proto::Tcp, to_billing, 22));
    assert!(!reach(&billing.ns, Proto::Tcp, imaging.v4.into(), 443));
    assert!(!reach(&pacs.ns, Proto::Tcp, to_billing, 443));
    let mut held = Hold::start(&imaging.ns, to_billing, 443, 100, 30_000).expect("hold");

    let start = run
        .wait_alert("breakglass-start", |_| true)
        .expect("a breakglass-start alert");
    assert_eq!(start.src_endpoint.zone, "imaging");
    assert_eq!(start.dst_endpoint.zone, "billing");
    assert_eq!(start.dst_endpoint.port, Some(443));
    let info = start.unmapped.ward.alert.as_ref().expect("alert details");
    assert_eq!(info.reason, "INC-4711 vendor support");
    assert!(
        info.by.ends_with("(uid 0)") || info.by == "uid 0",
        "{info:?}"
    );
    let grant = info.breakglass.as_ref().expect("the grant in the alert");
    assert_eq!(
        grant.expires.duration_since(grant.since).unwrap(),
        Duration::from_secs(GRANT_SECS)
    );
    let (_, status) = agent.cli_outcome(&["status"]);
    assert!(
        granted_at.elapsed() < Duration::from_secs(GRANT_SECS),
        "the checks before the expiry took {:?}, past the grant's {GRANT_SECS} s",
        granted_at.elapsed()
    );
    assert!(
        status.contains("BREAK-GLASS local grant 0: imaging -> billing https until "),
        "{status}"
    );
    let (_, list) = agent.cli_outcome(&["breakglass", "--list"]);
    assert!(
        list.starts_with("local grant 0: imaging -> billing https"),
        "{list}"
    );
    assert!(held.running(), "the granted connection works");

    // The agent cannot act: the kernel alone ends the grant at its expiry.
    signal(agent.pid(), libc::SIGSTOP).expect("SIGSTOP");
    let expiry = granted_at + Duration::from_secs(GRANT_SECS);
    std::thread::sleep(expiry.saturating_duration_since(Instant::now()) + Duration::from_secs(1));
    let denied_again = !reach(&imaging.ns, Proto::Tcp, to_billing, 443);
    let deadline = Instant::now() + Duration::from_secs(3);
    while held.running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let cut = !held.running();
    signal(agent.pid(), libc::SIGCONT).expect("SIGCONT");
    assert!(
        denied_again,
        "imaging -> billing https passes after the grant expired"
    );
    assert!(cut, "the connection the grant allowed outlived it");
    assert!(held.finish(Duration::from_secs(1)).is_err());

    // Back, the agent removes the grant and says so.
    let end = run
        .wait_alert("breakglass-end", |_| true)
        .expect("a breakglass-end alert");
    let info = end.unmapped.ward.alert.as_ref().expect("alert details");
    assert_eq!(
        (info.reason.as_str(), info.by.as_str()),
        ("expired", "expiry")
    );
    let (_, list) = agent.cli_outcome(&["breakglass", "--list"]);
    assert_eq!(list, "no break-glass grant is in force\n");
    let (_, status) = agent.cli_outcome(&["status"]);
    assert!(!status.contains("BREAK-GLASS"), "{status}");
}

#[test]
fn a_grant_survives_a_restart_until_ended_and_bad_requests_are_refused() {
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("breakglass-restart");
    let mut agent = start(&clinic, &run);
    let (imaging, billing) = (clinic.host("imaging"), clinic.host("billing"));
    let to_billing: IpAddr = billing.v4.into();

    for (args, refusal) in [
        (
            [
                "--from",
                "imaging",
                "--to",
                "bills",
                "--service",
                "https",
                "--for",
                "1h",
            ],
            "no zone `bills` in the policy in force",
        ),
        (
            [
                "--from",
                "imaging",
                "--to",
                "billing",
                "--service",
                "htps",
                "--for",
                "1h",
            ],
            "unknown service `htps` (did you mean `https`?)",
        ),
        (
            [
                "--from",
                "imaging",
                "--to",
                "billing",
                "--service",
                "https",
                "--for",
                "9h",
            ],
            "--for must be longer than 0 and at most 8h",
        ),
        (
            [
                "--from",
                "imaging",
                "--to",
                "pacs",
                "--service",
                "dicom",
                "--for",
                "1h",
            ],
            "the policy already allows imaging -> pacs dicom",
        ),
    ] {
        let mut full = vec!["breakglass"];
        full.extend(args);
        full.extend(["--reason", "test"]);
        let (ok, text) = agent.cli_outcome(&full);
        assert!(!ok && text.contains(refusal), "{full:?}: {text}");
    }
    let (ok, text) = agent.cli_outcome(&["breakglass", "--end", "3"]);
    assert!(
        !ok && text.contains("no break-glass grant 3 is in force"),
        "{text}"
    );

    grant_https(&agent, "1h");
    assert!(reach(&imaging.ns, Proto::Tcp, to_billing, 443));
    agent.restart().expect("restart");
    agent
        .wait_for(
            "break-glass grant 0: imaging -> billing https stays in force",
            Duration::from_secs(30),
        )
        .expect("the restarted agent takes the grant over");
    let (_, list) = agent.cli_outcome(&["breakglass", "--list"]);
    assert!(
        list.starts_with("local grant 0: imaging -> billing https"),
        "{list}"
    );
    assert!(
        reach(&imaging.ns, Proto::Tcp, to_billing, 443),
        "after the restart"
    );

    let (ok, text) = agent.cli_outcome(&["breakglass", "--end", "0"]);
    assert!(
        ok && text.starts_with("ended grant 0: imaging -> billing https"),
        "{text}"
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, to_billing, 443),
        "after --end"
    );
    let end = run
        .wait_alert("breakglass-end", |_| true)
        .expect("a breakglass-end alert");
    let info = end.unmapped.ward.alert.as_ref().expect("alert details");
    assert!(info.reason.starts_with("ended by "), "{info:?}");
}
