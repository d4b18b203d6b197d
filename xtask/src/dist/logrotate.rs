//! `/etc/logrotate.d/ward`: it rotates the event log under `/var/log/ward`, and its
//! `postrotate` sends the agent SIGUSR1 (reopen the event log), never SIGHUP (which
//! reloads the policy: a rotation would apply a policy staged on disk).
use anyhow::{ensure, Result};

/// Where the package installs the file (relative to `/`).
pub const PATH: &str = "etc/logrotate.d/ward";

/// What the file must say to the agent after a rotation.
const REOPEN: &str = "systemctl kill --kill-whom=main --signal=USR1 ward.service";

/// Checks the text of the logrotate file.
pub fn check(text: &str) -> Result<()> {
    let live: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    ensure!(
        live.first() == Some(&"/var/log/ward/*.jsonl {"),
        "/{PATH} does not rotate /var/log/ward/*.jsonl"
    );
    let script: Vec<&str> = live
        .iter()
        .skip_while(|l| **l != "postrotate")
        .skip(1)
        .take_while(|l| **l != "endscript")
        .copied()
        .collect();
    ensure!(
        script.iter().any(|l| l.starts_with(REOPEN)),
        "/{PATH}: postrotate does not run `{REOPEN}`: {script:?}"
    );
    ensure!(
        !script
            .iter()
            .any(|l| l.contains("HUP") || l.contains("reload")),
        "/{PATH}: postrotate reloads the policy: {script:?}"
    );
    ensure!(
        live.contains(&"delaycompress"),
        "/{PATH}: without delaycompress the agent may still write to the file being compressed"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn the_shipped_file_reopens_with_sigusr1() {
        let text = std::fs::read_to_string(crate::root().join("agent/debian/logrotate")).unwrap();
        check(&text).unwrap();
    }

    #[test]
    fn a_file_that_reloads_or_sends_nothing_is_refused() {
        let text = std::fs::read_to_string(crate::root().join("agent/debian/logrotate")).unwrap();
        let hup = text.replace("--signal=USR1", "--signal=HUP");
        assert_eq!(
            check(&hup).unwrap_err().to_string(),
            "/etc/logrotate.d/ward: postrotate does not run \
             `systemctl kill --kill-whom=main --signal=USR1 ward.service`: \
             [\"systemctl kill --kill-whom=main --signal=HUP ward.service >/dev/null 2>&1 || true\"]"
        );
        let reload = text.replace("|| true", "|| true\n        systemctl reload ward.service");
        assert_eq!(
            check(&reload).unwrap_err().to_string(),
            "/etc/logrotate.d/ward: postrotate reloads the policy: \
             [\"systemctl kill --kill-whom=main --signal=USR1 ward.service >/dev/null 2>&1 || true\", \
             \"systemctl reload ward.service\"]"
        );
        let eager = text.replace("    delaycompress\n", "");
        assert_eq!(
            check(&eager).unwrap_err().to_string(),
            "/etc/logrotate.d/ward: without delaycompress the agent may still write to the file being compressed"
        );
    }
}
