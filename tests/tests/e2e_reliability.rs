//! End-to-end reliability on the simulated clinic (root, namespaces, the kernel): a
//! killed agent leaves enforcement in place, and a new agent adopts its pinned links
//! and maps without a gap. Run with `--test-threads=1`.
use std::time::Duration;

mod support;

use support::gateway::{clinic_policy, prepare, start_gateway, START_TIMEOUT};
use ward_tests::{reach, Clinic, Hold, Proto};

#[test]
fn a_killed_agent_keeps_enforcing_and_a_restarted_one_adopts_its_links() {
    prepare("the reliability end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let mut agent = start_gateway(&clinic, &clinic_policy(), "");
    let (imaging, pacs, billing) = (
        clinic.host("imaging"),
        clinic.host("pacs"),
        clinic.host("billing"),
    );
    let mut held = Hold::start(&imaging.ns, pacs.v4.into(), 104, 100, 15_000).expect("hold");

    // kill -9: the pinned programs keep enforcing the last policy.
    agent.crash().expect("kill -9");
    assert!(
        !reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443),
        "denied stays denied without the agent"
    );
    assert!(
        !reach(&imaging.ns, Proto::Udp, billing.v6.into(), 514),
        "over IPv6 too"
    );
    assert!(
        reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104),
        "allowed stays allowed without the agent"
    );
    assert!(
        held.running(),
        "the open DICOM connection survives the crash"
    );

    // A new agent adopts the pinned links (one bpf_link_update each: no gap).
    agent.respawn().expect("respawn");
    agent
        .wait_for("enforcing generation=2", START_TIMEOUT)
        .expect("ward enforcing again");
    let log = agent.log();
    assert!(
        log.contains("adopting the XDP link"),
        "the XDP link was not adopted:\n{log}"
    );
    assert!(!reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443));
    assert!(reach(&imaging.ns, Proto::Tcp, pacs.v6.into(), 104));
    assert!(held.running(), "the open connection survives the restart");

    // SIGTERM detaches: the clinic is open again, and the held connection was never cut.
    agent.stop().expect("stop");
    assert!(
        reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443),
        "detached on SIGTERM"
    );
    held.finish(Duration::from_secs(20))
        .expect("the held connection lasted throughout");
}
