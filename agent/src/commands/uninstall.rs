//! `ward uninstall`: the one command that removes enforcement.
use std::{io::Write, path::Path, process::ExitCode};

use anyhow::{bail, Context as _};

use crate::{config::AgentConfig, dataplane};

/// Detaches Ward from the interfaces and removes its pinned maps, as configured in
/// `config_path`; refuses while an agent answers on the control socket (it would
/// re-attach). Prints what it removed to `out`.
pub fn uninstall(config_path: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let config = AgentConfig::load(config_path)?;
    if !nix::unistd::geteuid().is_root() {
        bail!("ward uninstall needs root (CAP_BPF, CAP_NET_ADMIN)");
    }
    if std::os::unix::net::UnixStream::connect(&config.control_socket).is_ok() {
        bail!(
            "the agent is running (its control socket {} answers): stop it first \
             (`systemctl stop ward`), then run `ward uninstall` again",
            config.control_socket.display()
        );
    }
    let removed = dataplane::uninstall(&config.pin_dir, &config.interfaces)
        .with_context(|| format!("removing Ward from {}", config.pin_dir.display()))?;
    if removed.interfaces.is_empty() {
        writeln!(out, "Ward was attached to no interface.")?;
    } else {
        writeln!(
            out,
            "Ward no longer enforces on {}: traffic there is not filtered any more.",
            removed.interfaces.join(", ")
        )?;
    }
    if removed.maps {
        writeln!(
            out,
            "Removed {} (policy, tracked connections, counters, quarantines, break-glass grants).",
            config.pin_dir.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
