//! Ward as the clinic's gateway, for the end-to-end tests.
use std::{path::Path, path::PathBuf, time::Duration};

use ward::control::StatusReply;
use ward_tests::{require_root, use_probe_bin, ward_bin, Clinic, Role, WardAgent};

/// How long an agent may take to attach and load its first policy.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Fails loudly without root; points the harness at this build's `ward-probe`.
pub fn prepare(what: &str) {
    require_root(what);
    if std::env::var_os("WARD_PROBE_BIN").is_none() {
        use_probe_bin(PathBuf::from(env!("CARGO_BIN_EXE_ward-probe")));
    }
}

/// `policies/clinic.toml` of this repository.
pub fn clinic_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/clinic.toml")
}

/// Starts `ward run` on every gateway interface of `clinic` with `policy` and further
/// config lines `settings`, and waits until it enforces generation 1.
pub fn start_gateway(clinic: &Clinic, policy: &Path, settings: &str) -> WardAgent {
    let mut agent = WardAgent::start_configured(
        &ward_bin(),
        &clinic.gw,
        Role::Gateway,
        &clinic.gateway_interfaces(),
        policy,
        settings,
    )
    .expect("start ward");
    agent
        .wait_for("enforcing generation=1", START_TIMEOUT)
        .expect("ward enforcing");
    agent
}

/// `ward status` (summary) and `ward status --json` of `agent`.
pub fn status(agent: &WardAgent) -> (String, StatusReply) {
    let text = |args: &[&str]| {
        let out = agent.cli(args).expect("ward status");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let json = text(&["status", "--json"]);
    let reply = super::status::reply(&json);
    (text(&["status"]), reply)
}
