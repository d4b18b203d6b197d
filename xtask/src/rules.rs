//! The Prometheus alerting rules (`deploy/prometheus/ward-rules.yml`): `promtool check
//! rules` and `promtool test rules` (a step of `cargo xtask test`), and what the
//! Debian package's copy must hold (`cargo xtask dist --check`).
use std::process::Command;

use anyhow::{bail, ensure, Result};

use crate::{root, step};

/// The rules, relative to the workspace.
pub const SOURCE: &str = "deploy/prometheus/ward-rules.yml";

/// Their unit tests, relative to the workspace.
const TESTS: &str = "deploy/prometheus/ward-rules.test.yml";

/// Where the package installs the rules (relative to `/`).
pub const INSTALLED: &str = "usr/share/ward/prometheus/ward-rules.yml";

/// The promtool of Debian's `prometheus` package.
const PROMTOOL: &str = "promtool";

/// Every alert the rules file defines (docs/fleet.md lists them).
const ALERTS: [&str; 16] = [
    "WardAgentDown",
    "WardAgentsAbsent",
    "WardHookDetached",
    "WardNoPolicy",
    "WardAuditMode",
    "WardBundleVersionBehind",
    "WardBundleVersionDrift",
    "WardPolicyReloadRefused",
    "WardPolicyRolledBack",
    "WardQuarantineStarted",
    "WardTamper",
    "WardFault",
    "WardBreakglassOpenTooLong",
    "WardEventsLost",
    "WardEventSinkDown",
    "WardEventSinkLosing",
];

/// `promtool check rules` and `promtool test rules` on the workspace's files; fails
/// when promtool is missing.
pub fn run() -> Result<()> {
    if Command::new(PROMTOOL).arg("--version").output().is_err() {
        bail!("{PROMTOOL} not found: install the Debian package prometheus (`cargo xtask setup`)");
    }
    step(
        Command::new(PROMTOOL)
            .args(["check", "rules", SOURCE])
            .current_dir(root()),
    )?;
    step(
        Command::new(PROMTOOL)
            .args(["test", "rules", TESTS])
            .current_dir(root()),
    )
}

/// Checks the text of a rules file: it defines every alert of [`ALERTS`], and no other.
pub fn check(text: &str) -> Result<()> {
    let defined: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(str::trim)
        .collect();
    for alert in ALERTS {
        ensure!(
            defined.contains(&alert),
            "/{INSTALLED} does not define the alert {alert}"
        );
    }
    ensure!(
        defined.len() == ALERTS.len(),
        "/{INSTALLED} defines {} alerts, not the {} expected: {defined:?}",
        defined.len(),
        ALERTS.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> String {
        std::fs::read_to_string(root().join(SOURCE)).unwrap()
    }

    #[test]
    fn the_rules_of_the_workspace_pass() {
        check(&source()).unwrap();
    }

    #[test]
    fn a_missing_or_extra_alert_is_refused() {
        let without = source().replace("- alert: WardTamper\n", "- alert: WardTampering\n");
        assert_eq!(
            check(&without).unwrap_err().to_string(),
            "/usr/share/ward/prometheus/ward-rules.yml does not define the alert WardTamper"
        );
        let extra = format!("{}      - alert: WardOther\n", source());
        let error = check(&extra).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "/usr/share/ward/prometheus/ward-rules.yml defines 17 alerts, not the 16 expected"
            ),
            "{error}"
        );
        assert!(check("groups: []\n").is_err());
    }
}
