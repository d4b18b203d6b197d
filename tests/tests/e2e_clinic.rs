//! End-to-end tests on the simulated clinic (root, network namespaces, the kernel).
//!
//! Expectations come from the reference evaluator (`ward explain`) for every
//! (client, server, service, family) of the clinic, so the kernel is checked against
//! it flow by flow; a few flows the clinic scenario forbids or needs are also
//! asserted on the policy itself. Run with `--test-threads=1` (see `cargo xtask test`).
//! `WARD_MATRIX_SAMPLE` and `WARD_PARALLEL_PROBES` scale the whole-clinic checks down
//! for slow machines (`ward_tests::matrix`; the QEMU kernel matrix sets them).
//! Needs `WARD_BIN` (or `target/debug/ward`) and `ward-probe`; `WARD_CLINIC_POLICY`
//! replaces `policies/clinic.toml`.
use std::path::{Path, PathBuf};
use std::time::Duration;

use ward_tests::clinic::FORBIDDEN;
use ward_tests::matrix::{self, checks_between, explain, matrix_checks, Check};
use ward_tests::netns;
use ward_tests::{
    reach, require_root, use_probe_bin, ward_bin, Clinic, Hold, Proto, Role, Service, WardAgent,
};

/// How long an agent may take to attach and load its first policy.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a reload may take.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(20);

/// The DICOM flow held open across the reload.
const HELD: (&str, &str, Service) = ("imaging", "pacs", Service::tcp(104));

fn prepare() -> PathBuf {
    require_root("the clinic end-to-end tests");
    if std::env::var_os("WARD_PROBE_BIN").is_none() {
        use_probe_bin(PathBuf::from(env!("CARGO_BIN_EXE_ward-probe")));
    }
    ward_bin()
}

/// `policies/clinic.toml`, or `$WARD_CLINIC_POLICY` (to run the suite on another policy).
fn clinic_policy() -> PathBuf {
    let p = match std::env::var_os("WARD_CLINIC_POLICY") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/clinic.toml"),
    };
    assert!(p.is_file(), "{} is missing", p.display());
    p.canonicalize().expect("canonical policy path")
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, contents: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!("ward-test-{}-{tag}.toml", std::process::id()));
        std::fs::write(&p, contents).expect("write temp file");
        TempFile(p)
    }
    /// Replaces the contents atomically (a watcher never sees half a file).
    fn replace(&self, contents: &str) {
        let tmp = self.0.with_extension("toml.new");
        std::fs::write(&tmp, contents).expect("write temp file");
        std::fs::rename(&tmp, &self.0).expect("rename temp file");
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `checks` and panics with every mismatch (the agents' logs are printed by
/// their guards as the panic unwinds).
fn assert_matrix(c: &Clinic, checks: &[Check], expected: &[bool], when: &str) {
    let outcomes = matrix::run_checks(c, checks, expected).expect("probes ran");
    let bad = matrix::mismatches(c, &outcomes);
    let allowed = expected.iter().filter(|e| **e).count();
    eprintln!(
        "{when}: {} checks ({allowed} expected to pass, {} to be refused), {} mismatches",
        checks.len(),
        checks.len() - allowed,
        outcomes.iter().filter(|o| !o.ok()).count()
    );
    assert!(
        bad.is_empty(),
        "{when}: the kernel disagrees with the expectation:\n{bad}"
    );
}

fn assert_all_open(c: &Clinic, when: &str) {
    let checks = matrix_checks(c);
    assert_matrix(c, &checks, &vec![true; checks.len()], when);
}

fn expected_for(ward: &Path, policy: &Path, c: &Clinic, checks: &[Check]) -> Vec<bool> {
    matrix::expected(ward, policy, c, checks).unwrap_or_else(|e| panic!("ward explain: {e:#}"))
}

fn verdict(ward: &Path, policy: &Path, c: &Clinic, from: &str, to: &str, s: Service) -> Vec<bool> {
    checks_between(c, from, to, s)
        .iter()
        .map(|k| {
            explain(ward, policy, k.src(c), k.dst(c), s)
                .unwrap_or_else(|e| panic!("ward explain: {e:#}"))
        })
        .collect()
}

/// The policy must forbid what the clinic scenario forbids and allow the held flow.
fn assert_policy_shape(ward: &Path, policy: &Path, c: &Clinic) {
    for (from, to, s) in FORBIDDEN {
        assert_eq!(
            verdict(ward, policy, c, from, to, s),
            [false, false],
            "{} allows {from} -> {to} {s} (v4, v6), which the clinic scenario forbids",
            policy.display()
        );
    }
    let (from, to, s) = HELD;
    assert_eq!(
        verdict(ward, policy, c, from, to, s),
        [true, true],
        "{} must allow {from} -> {to} {s}",
        policy.display()
    );
}

#[test]
fn harness_topology_is_open_without_ward_and_torn_down() {
    require_root("the harness self-test");
    if std::env::var_os("WARD_PROBE_BIN").is_none() {
        use_probe_bin(PathBuf::from(env!("CARGO_BIN_EXE_ward-probe")));
    }
    let names;
    {
        let c = Clinic::create().expect("clinic topology");
        names = c.namespace_names();
        assert_eq!(c.gateway_interfaces().len(), c.hosts.len());
        let mut gw_ifs = c.gw.interfaces().expect("gateway interfaces");
        gw_ifs.sort();
        let mut want = c.gateway_interfaces();
        want.sort();
        assert_eq!(
            gw_ifs, want,
            "the gateway has exactly one interface per host"
        );
        assert_all_open(&c, "harness self-test, no Ward");
        // The probes tell a refusal from a success: closed ports are unreachable.
        let (imaging, pacs) = (c.host("imaging"), c.host("pacs"));
        for v6 in [false, true] {
            assert!(
                !reach(&imaging.ns, Proto::Tcp, pacs.addr(v6), 9),
                "tcp/9 is closed"
            );
            assert!(
                !reach(&imaging.ns, Proto::Udp, pacs.addr(v6), 9),
                "udp/9 is closed"
            );
            // No route leads out of the clinic.
            let outside: std::net::IpAddr = if v6 {
                "2001:db8:ffff::1".parse().unwrap()
            } else {
                "198.19.255.1".parse().unwrap()
            };
            assert!(
                !reach(&imaging.ns, Proto::Icmp, outside, 0),
                "nothing answers outside the clinic"
            );
            let hold = Hold::start(&imaging.ns, pacs.addr(v6), 104, 100, 1000).expect("hold");
            hold.finish(Duration::from_secs(10))
                .expect("a held connection without Ward");
        }
    }
    let left: Vec<String> = netns::list()
        .into_iter()
        .filter(|n| names.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left after drop: {left:?}");

    // Torn down on panic too.
    let names = std::sync::Mutex::new(Vec::new());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let c = Clinic::create().expect("clinic topology");
        *names.lock().unwrap() = c.namespace_names();
        panic!("deliberate panic with a live topology");
    }));
    assert!(r.is_err());
    let names = names.into_inner().unwrap();
    assert!(!names.is_empty());
    let left: Vec<String> = netns::list()
        .into_iter()
        .filter(|n| names.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left after a panic: {left:?}");
}

#[test]
fn gateway_enforces_clinic_policy() {
    let ward = prepare();
    let policy = clinic_policy();
    let c = Clinic::create().expect("clinic topology");
    let checks = matrix_checks(&c);
    assert_all_open(&c, "before Ward starts");
    assert_policy_shape(&ward, &policy, &c);
    let expected = expected_for(&ward, &policy, &c, &checks);

    let mut agent = WardAgent::start(&c.gw, Role::Gateway, &c.gateway_interfaces(), &policy)
        .expect("start ward");
    agent
        .wait_for("enforcing generation=1", START_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_matrix(&c, &checks, &expected, "gateway, clinic.toml");

    let st = agent.stop().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        st.success(),
        "ward exited with {st} on SIGTERM; log:\n{}",
        agent.log()
    );
    assert!(
        agent.log().contains("enforcement stays on"),
        "the agent did not say that enforcement stays:\n{}",
        agent.log()
    );
    // Stopping the agent leaves enforcement in place: the whole matrix still holds.
    assert_matrix(&c, &checks, &expected, "gateway, after ward stopped");
    let said = agent.uninstall().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        said.contains("Ward no longer enforces on gw-"),
        "ward uninstall said: {said}"
    );
    assert_all_open(&c, "after ward uninstall");
}

#[test]
fn gateway_live_policy_change_keeps_allowed_connection() {
    let ward = prepare();
    let original = std::fs::read_to_string(clinic_policy()).expect("read clinic.toml");
    let (changed, removed) =
        matrix::remove_rules(&original, "clinicians", "ehr").expect("edit clinic.toml");
    assert!(
        removed > 0,
        "found no rule from zone clinicians to zone ehr in clinic.toml"
    );
    let live = TempFile::new("live", &original);
    let after = TempFile::new("after", &changed);

    let c = Clinic::create().expect("clinic topology");
    assert_policy_shape(&ward, &live.0, &c);
    assert_policy_shape(&ward, &after.0, &c);
    // The clinician -> ehr flows that the edit revokes.
    let revoked: Vec<Check> = matrix::all_checks(&c)
        .into_iter()
        .filter(|k| c.hosts[k.from].name == "clinician" && c.hosts[k.to].name == "ehr")
        .filter(|k| explain(&ward, &live.0, k.src(&c), k.dst(&c), k.service).unwrap())
        .collect();
    assert!(
        !revoked.is_empty(),
        "clinic.toml allows nothing from clinicians to ehr"
    );
    for k in &revoked {
        assert!(
            !explain(&ward, &after.0, k.src(&c), k.dst(&c), k.service).unwrap(),
            "{} is still allowed after removing the clinicians -> ehr rules",
            k.describe(&c)
        );
    }

    let mut agent = WardAgent::start(&c.gw, Role::Gateway, &c.gateway_interfaces(), &live.0)
        .expect("start ward");
    agent
        .wait_for("enforcing generation=1", START_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_matrix(
        &c,
        &revoked,
        &vec![true; revoked.len()],
        "clinician -> ehr, generation 1",
    );

    let (from, to, s) = HELD;
    let mut holds: Vec<Hold> = [false, true]
        .into_iter()
        .map(|v6| {
            Hold::start(&c.host(from).ns, c.host(to).addr(v6), s.port, 100, 8000).expect("hold")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        holds.iter_mut().all(|h| h.running()),
        "the held connections failed before the reload"
    );

    live.replace(&changed);
    agent.sighup().expect("SIGHUP");
    agent
        .wait_for("enforcing generation=2", RELOAD_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !agent.log().contains("reload refused"),
        "a reload was refused:\n{}",
        agent.log()
    );
    assert!(
        holds.iter_mut().all(|h| h.running()),
        "a held connection ended before generation 2 was enforced (too slow a reload, or the connection broke)"
    );
    assert_matrix(
        &c,
        &revoked,
        &vec![false; revoked.len()],
        "clinician -> ehr, generation 2",
    );
    for h in holds {
        h.finish(Duration::from_secs(20)).unwrap_or_else(|e| {
            panic!("the {from} -> {to} {s} connection open across the reload broke: {e:#}")
        });
    }

    let checks = matrix_checks(&c);
    let expected = expected_for(&ward, &after.0, &c, &checks);
    assert_matrix(&c, &checks, &expected, "gateway, generation 2");
    let st = agent.stop().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        st.success(),
        "ward exited with {st} on SIGTERM; log:\n{}",
        agent.log()
    );
}

#[test]
fn host_role_on_billing_and_ehr() {
    let ward = prepare();
    let policy = clinic_policy();
    let c = Clinic::create().expect("clinic topology");
    let checks = matrix_checks(&c);
    assert_all_open(&c, "before Ward starts");
    let guarded = ["billing", "ehr"];
    let mut expected = expected_for(&ward, &policy, &c, &checks);
    // Flows that touch neither guarded host stay open (no agent on the gateway).
    for (k, e) in checks.iter().zip(expected.iter_mut()) {
        if !guarded.contains(&c.hosts[k.from].name) && !guarded.contains(&c.hosts[k.to].name) {
            *e = true;
        }
    }

    let mut agents: Vec<WardAgent> = guarded
        .iter()
        .map(|name| {
            let h = c.host(name);
            WardAgent::start(&h.ns, Role::Host, &[h.host_if.to_string()], &policy)
                .expect("start ward")
        })
        .collect();
    for a in agents.iter_mut() {
        a.wait_for("enforcing generation=1", START_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
    assert_matrix(&c, &checks, &expected, "host role on billing and ehr");

    for a in agents.iter_mut() {
        let st = a.stop().unwrap_or_else(|e| panic!("{e:#}"));
        assert!(
            st.success(),
            "ward exited with {st} on SIGTERM; log:\n{}",
            a.log()
        );
    }
    assert_matrix(
        &c,
        &checks,
        &expected,
        "host role, after the agents stopped",
    );
    for a in &agents {
        a.uninstall().unwrap_or_else(|e| panic!("{e:#}"));
    }
    assert_all_open(&c, "after ward uninstall on the hosts");
}
