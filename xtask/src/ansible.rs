//! The Ansible role of `deploy/ansible/`, checked in `cargo xtask test`: a syntax check
//! of the playbook, `ansible-lint` (production profile), and the role's `agent.toml`
//! template rendered with sample variables and read back by `ward check --config`.
//!
//! Ansible runs from a virtual environment of its own under the target directory,
//! with pinned versions from PyPI; nothing is installed on the machine. The playbook
//! runs for real only in a sandbox ([`apply`]): overlays over `/etc`, `/usr` and
//! `/var` in a mount namespace and a network namespace of its own, so it installs
//! nothing on this machine and never touches its interfaces.
use std::path::{Path, PathBuf};
use std::process::Command;

mod apply;

use anyhow::{bail, Context as _, Result};

use crate::{root, step, target_dir};

/// The PyPI packages, pinned.
const PACKAGES: [&str; 2] = ["ansible-core==2.19.14", "ansible-lint==26.10.1"];

/// Variables the template is rendered with: a gateway with two interfaces, a trusted
/// key, a management prefix and a confirmation window.
const SAMPLE_VARS: &str = r#"{
  "ward_role": "gateway",
  "ward_interfaces": ["gw-imaging", "gw-pacs"],
  "ward_policy_dir": "/etc/ward/policy",
  "ward_trusted_keys": ["n2a6tlWCTasIpFdf6nsCXxXMQGYMgLOQr5aTs08mV5w="],
  "ward_mode": "enforce",
  "ward_failsafe_management": ["198.18.24.0/24"],
  "ward_failsafe_tcp_ports": [22],
  "ward_confirm_within": "2m",
  "ward_event_log": "/var/log/ward/events.jsonl",
  "ward_metrics_listen": "127.0.0.1:9469"
}"#;

/// The virtual environment's `bin`, with the pinned packages installed.
fn venv_bin() -> Result<PathBuf> {
    let venv = target_dir()?.join("ansible-venv");
    let bin = venv.join("bin");
    if !installed(&bin) {
        step(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        step(
            Command::new(bin.join("pip"))
                .args(["install", "--quiet"])
                .args(PACKAGES),
        )?;
    }
    Ok(bin)
}

/// Runs the role for real in a sandbox (see [`apply`]) with the package `deb`; `ward`
/// signs the bundles it distributes.
pub fn apply(ward: &Path, deb: &Path) -> Result<()> {
    apply::run(&venv_bin()?, ward, deb)
}

/// Checks the role; `ward` is the binary that reads the rendered configuration.
pub fn check(ward: &Path) -> Result<()> {
    let bin = venv_bin()?;
    let dir = root().join("deploy").join("ansible");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ansible = |program: &str| {
        let mut c = Command::new(bin.join(program));
        c.current_dir(&dir)
            .env("PATH", &path)
            .env("ANSIBLE_LOCALHOST_WARNING", "false")
            .env("PYTHONWARNINGS", "ignore");
        c
    };
    let inventory = "ward_agents:\n  hosts:\n    localhost:\n      ansible_connection: local\n";
    let scratch = target_dir()?.join("ansible-check");
    std::fs::create_dir_all(&scratch)?;
    let inventory_file = scratch.join("inventory.yml");
    std::fs::write(&inventory_file, inventory)?;
    step(
        ansible("ansible-playbook")
            .arg("--syntax-check")
            .arg("-i")
            .arg(&inventory_file)
            .arg("site.yml"),
    )?;
    step(ansible("ansible-lint").args(["--profile", "production", "--offline"]))?;
    let vars = scratch.join("vars.json");
    std::fs::write(&vars, SAMPLE_VARS)?;
    let rendered = scratch.join("agent.toml");
    let template = dir.join("roles/ward/templates/agent.toml.j2");
    step(
        ansible("ansible")
            .args(["localhost", "-c", "local", "-i", "localhost,"])
            .args(["-m", "ansible.builtin.template"])
            .arg("-a")
            .arg(format!(
                "src={} dest={}",
                template.display(),
                rendered.display()
            ))
            .arg("-e")
            .arg(format!("@{}", vars.display()))
            // The module runs with the environment's own Python, not whatever
            // interpreter discovery finds on the machine.
            .arg("-e")
            .arg(format!(
                "ansible_python_interpreter={}",
                bin.join("python").display()
            )),
    )?;
    let text = std::fs::read_to_string(&rendered)
        .with_context(|| format!("the rendered {}", rendered.display()))?;
    for expected in [
        "role = \"gateway\"",
        "interfaces = [\"gw-imaging\", \"gw-pacs\"]",
        "management = [\"198.18.24.0/24\"]",
        "confirm_within = \"2m\"",
    ] {
        if !text.contains(expected) {
            bail!("the rendered agent.toml lacks `{expected}`:\n{text}");
        }
    }
    step(
        Command::new(ward)
            .arg("check")
            .arg("--config")
            .arg(&rendered),
    )
}

/// Whether the virtual environment holds the pinned versions.
fn installed(bin: &Path) -> bool {
    let Ok(out) = Command::new(bin.join("pip")).arg("freeze").output() else {
        return false;
    };
    let frozen = String::from_utf8_lossy(&out.stdout);
    PACKAGES.iter().all(|p| frozen.lines().any(|l| l == *p))
}
