//! Which test targets of `ward-tests` the VMs run: chosen by file name, not listed by
//! hand. Every `tests/tests/kernel_*.rs`, `differential.rs` and `e2e_*.rs` runs in each
//! VM unless [`HOST_ONLY`] names it with the reason, so a new suite is in the kernel
//! matrix from its first commit.
use std::path::Path;

use anyhow::{bail, Context as _, Result};

/// A test target of `ward-tests` run in each VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suite {
    /// The target, `tests/tests/<name>.rs`.
    pub name: String,
    /// The tests of it to run (exact names); all of them when empty.
    pub only: Vec<&'static str>,
}

/// The prefixes (or whole names) of the targets that run in the VMs, in run order: the
/// kernel tests through `BPF_PROG_TEST_RUN`, then the namespace tests with the agent.
const ORDER: [&str; 3] = ["kernel_", "differential", "e2e_"];

/// Targets left to the host kernel, each with why. Under TCG every agent test takes a
/// minute or more, so the matrix keeps the suites whose kernel paths the others do not
/// already cover.
pub const HOST_ONLY: [(&str, &str); 15] = [
    (
        "kernel_capacity",
        "writes and removes over a million trie entries (minutes under TCG); which entries a reload writes first is user space",
    ),
    (
        "e2e_tamper",
        "needs a tun device and detaches TCX links (no TCX on 6.1)",
    ),
    (
        "e2e_signed",
        "bundle verification is user space; the kernel sees an ordinary policy load",
    ),
    (
        "e2e_visibility",
        "events and metrics are user space; kernel_events covers the kernel side",
    ),
    (
        "e2e_faults",
        "disk and policy-file faults are user space; kernel_events covers a full ring",
    ),
    (
        "e2e_flood",
        "the daemon's responsiveness under an event flood is user space (and timing, which TCG distorts); kernel_containment covers the kernel's event budgets",
    ),
    (
        "e2e_interfaces",
        "attaching to an interface that appears later and reporting unguarded ones is user space; e2e_adversary_limits covers the kernel's egress judging of an unguarded interface",
    ),
    (
        "e2e_syslog",
        "the event sink is user space and needs rsyslog, which the VM images do not carry",
    ),
    (
        "e2e_response",
        "kernel_quarantine covers the kernel side; minutes of scanning under TCG",
    ),
    (
        "e2e_explain_live",
        "the live explain is user space; e2e_breakglass and kernel_quarantine cover the kernel verdicts it names",
    ),
    (
        "e2e_fleet_breakglass",
        "the fleet grants are user space (the bundle, its check, the merge with local grants); the kernel sees ordinary break-glass entries, which e2e_breakglass covers",
    ),
    (
        "e2e_fleet_quarantine",
        "the fleet list is user space (the bundle, its check, the merge with local entries); the kernel sees ordinary quarantine entries, which kernel_quarantine covers",
    ),
    (
        "e2e_lockout",
        "the lock-out preflight and commit-confirm at start are user space (the socket table, the decision, the roll-back); the kernel sees ordinary policy loads",
    ),
    (
        "e2e_fleet",
        "Prometheus, rsyslog and the HTTPS bundle server are user space and not in the VM images; the kernel sees ordinary policy loads and quarantine entries",
    ),
    (
        "e2e_flows_filters",
        "flow filters and the event log's history are user space; kernel_events covers the kernel side",
    ),
];

/// Targets of which the VMs run only some tests (exact names), with why: the clinic's
/// harness self-test (the topology without Ward) proves nothing about a kernel.
const PARTIAL: [(&str, &[&str]); 1] = [(
    "e2e_clinic",
    &[
        "gateway_enforces_clinic_policy",
        "gateway_live_policy_change_keeps_allowed_connection",
        "host_role_on_billing_and_ehr",
    ],
)];

/// The suites the VMs run, from the files in `tests_dir` (`tests/tests`).
pub fn suites(tests_dir: &Path) -> Result<Vec<Suite>> {
    let mut names: Vec<String> = std::fs::read_dir(tests_dir)
        .with_context(|| format!("listing {}", tests_dir.display()))?
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "rs").then(|| p.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    for (name, _) in HOST_ONLY {
        if !names.iter().any(|n| n == name) {
            bail!(
                "vm/suites.rs: HOST_ONLY names {name}, which is not in {}",
                tests_dir.display()
            );
        }
    }
    names.sort();
    let rank = |n: &str| ORDER.iter().position(|p| n.starts_with(p));
    names.retain(|n| rank(n).is_some() && !HOST_ONLY.iter().any(|(h, _)| h == n));
    names.sort_by_key(|n| rank(n));
    Ok(names
        .into_iter()
        .map(|name| {
            let only = PARTIAL
                .iter()
                .find(|(p, _)| *p == name)
                .map_or_else(Vec::new, |(_, t)| t.to_vec());
            Suite { name, only }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_and_e2e_suite_runs_in_the_vms_unless_host_only_says_why() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tests");
        let s = suites(&dir).unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"kernel_verdicts") && names.contains(&"differential"));
        assert!(!names.contains(&"e2e_tamper"));
        // Kernel tests first, then the differential test, then the agent's.
        let first_e2e = names.iter().position(|n| n.starts_with("e2e_")).unwrap();
        assert!(names[..first_e2e].iter().all(|n| !n.starts_with("e2e_")));
        assert_eq!(names[first_e2e - 1], "differential");
        let clinic = s.iter().find(|s| s.name == "e2e_clinic").unwrap();
        assert_eq!(clinic.only.len(), 3);
        for (name, why) in HOST_ONLY {
            assert!(!why.is_empty(), "{name}");
        }
    }

    #[test]
    fn a_new_suite_is_picked_up_by_its_prefix() {
        let dir = std::env::temp_dir().join(format!("ward-suites-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let host_only = HOST_ONLY.map(|(n, _)| n);
        for name in ["kernel_new", "e2e_new", "helper", "differential"]
            .iter()
            .chain(&host_only)
        {
            std::fs::write(dir.join(format!("{name}.rs")), "").unwrap();
        }
        let s = suites(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        let names: Vec<String> = s.unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["kernel_new", "differential", "e2e_new"]);
    }
}
