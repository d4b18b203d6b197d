//! The Ansible role run for real, in a sandbox: a mount namespace whose `/etc`, `/usr`
//! and `/var` are overlays on tmpfs (everything the play writes is gone with the
//! namespace, the machine's own files are never touched), a network namespace with
//! only a loopback (the play cannot reach or change the machine's network), and an
//! empty `/run` (no systemd to talk to). The play installs the package built by
//! `cargo xtask dist`, puts a signed bundle in place and writes `agent.toml`; the
//! service steps are left out (`ward_manage_service=false`: there is no systemd in
//! the sandbox). Run twice, it changes nothing the second time; a bundle signed by a
//! key the agents do not trust fails the play and leaves the bundle in place.
use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context as _, Result};

use crate::{root, target_dir};

/// What runs inside the namespaces: `$1` scratch directory, `$2` the virtual
/// environment's `bin`, `$3` the playbook directory. Each phase is announced on a
/// line of its own for [`check_transcript`].
const SANDBOX: &str = r#"set -eu
scratch=$1; bin=$2; playbooks=$3
mount -t tmpfs ward-ansible "$scratch/layers"
for d in etc usr var; do
  mkdir -p "$scratch/layers/$d/upper" "$scratch/layers/$d/work"
  mount -t overlay overlay \
    -o "lowerdir=/$d,upperdir=$scratch/layers/$d/upper,workdir=$scratch/layers/$d/work" "/$d"
done
mount -t tmpfs ward-ansible-run /run
ip link set lo up
play() {
  "$bin/ansible-playbook" -i "$scratch/inventory.yml" "$playbooks/site.yml" \
    -e "@$scratch/vars.json" -e ansible_become=false \
    -e ansible_python_interpreter=/usr/bin/python3 "$@"
}
echo "@@ first run"
play
echo "@@ second run"
play
echo "@@ untrusted bundle"
if play -e "ward_bundle=$scratch/untrusted.bundle"; then echo "@@ untrusted bundle applied"; fi
echo "@@ state"
dpkg-query -W -f '${Package} ${Version} ${Status}\n' ward
cmp "$scratch/trusted.bundle" /etc/ward/policy/policy.bundle && echo "@@ trusted bundle in place"
/usr/bin/ward check --config /etc/ward/agent.toml
echo "@@ agent.toml"
cat /etc/ward/agent.toml
"#;

/// Runs the role in the sandbox with the package `deb`; `ward` (on this machine) signs
/// the bundles.
pub fn run(venv_bin: &Path, ward: &Path, deb: &Path) -> Result<()> {
    let scratch = target_dir()?.join("ansible-apply");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    std::fs::create_dir_all(scratch.join("layers"))?;
    let public = sign(ward, &scratch, "trusted")?;
    sign(ward, &scratch, "untrusted")?;
    std::fs::write(
        scratch.join("inventory.yml"),
        "ward_agents:\n  hosts:\n    localhost:\n      ansible_connection: local\n",
    )?;
    let vars = serde_json::json!({
        "ward_deb": deb,
        "ward_bundle": scratch.join("trusted.bundle"),
        "ward_trusted_keys": [public],
        "ward_role": "host",
        "ward_interfaces": ["eth0"],
        "ward_failsafe_management": ["198.18.24.0/24"],
        "ward_manage_service": false,
    });
    std::fs::write(scratch.join("vars.json"), vars.to_string())?;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--net", "--propagation", "private", "--"])
        .args(["sh", "-c", SANDBOX, "sh"])
        .arg(&scratch)
        .arg(venv_bin)
        .arg(root().join("deploy").join("ansible"))
        .env(
            "PATH",
            format!(
                "{}:{}",
                venv_bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("PYTHONWARNINGS", "ignore");
    println!(
        "==> {} (the Ansible role, run in a sandbox)",
        crate::cmdline(&cmd)
    );
    let out = cmd.output().context("unshare")?;
    let transcript = String::from_utf8_lossy(&out.stdout).into_owned();
    let errors = String::from_utf8_lossy(&out.stderr);
    print!("{transcript}");
    if !out.status.success() {
        bail!(
            "the sandboxed Ansible run failed ({}): {errors}",
            out.status
        );
    }
    check_transcript(&transcript)
}

/// `ward policy keygen` and `ward policy sign` of `policies/clinic.toml` as
/// `scratch/NAME.bundle`; the public key line.
fn sign(ward: &Path, scratch: &Path, name: &str) -> Result<String> {
    let key = scratch.join(name);
    crate::step(
        Command::new(ward)
            .args(["policy", "keygen", "--out"])
            .arg(&key),
    )?;
    let src = scratch.join(format!("{name}-src"));
    std::fs::create_dir_all(&src)?;
    std::fs::copy(root().join("policies/clinic.toml"), src.join("clinic.toml"))?;
    crate::step(
        Command::new(ward)
            .args(["policy", "sign", "--version", "1", "--key"])
            .arg(key.with_extension("key"))
            .arg(&src)
            .arg("-o")
            .arg(scratch.join(format!("{name}.bundle"))),
    )?;
    let public = std::fs::read_to_string(key.with_extension("pub"))?;
    Ok(public.trim().to_owned())
}

/// The PLAY RECAP line's counts for the host: (changed, failed).
fn recap(section: &str) -> Option<(u32, u32)> {
    let line = section
        .lines()
        .find(|l| l.starts_with("localhost") && l.contains("changed="))?;
    let count = |key: &str| -> Option<u32> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    Some((count("changed=")?, count("failed=")?))
}

/// The sections of the transcript, by the `@@ ` lines that open them.
fn section<'t>(transcript: &'t str, name: &str) -> Result<&'t str> {
    let marker = format!("@@ {name}\n");
    let start = transcript
        .find(&marker)
        .with_context(|| format!("the sandbox transcript has no `{name}` part"))?
        + marker.len();
    let end = transcript[start..]
        .find("\n@@ ")
        .map_or(transcript.len(), |e| start + e + 1);
    Ok(&transcript[start..end])
}

/// What the runs must show: the first changes the host and fails nothing, the second
/// changes nothing, the untrusted bundle fails the play (refused by `ward policy
/// verify`) and the trusted one stays; the package is installed and `agent.toml` is
/// the role's.
fn check_transcript(transcript: &str) -> Result<()> {
    let first = recap(section(transcript, "first run")?).context("no recap of the first run")?;
    ensure!(
        first.0 > 0 && first.1 == 0,
        "first run: changed/failed {first:?}"
    );
    let second = recap(section(transcript, "second run")?).context("no recap of the second run")?;
    ensure!(
        second == (0, 0),
        "second run is not idempotent: changed/failed {second:?}"
    );
    let untrusted = section(transcript, "untrusted bundle")?;
    ensure!(
        !transcript.contains("@@ untrusted bundle applied"),
        "a bundle signed by an untrusted key passed the play"
    );
    ensure!(
        recap(untrusted).is_some_and(|(_, failed)| failed == 1)
            && untrusted.contains("Distribute the signed policy bundle")
            && untrusted.contains("which is not in trusted_keys"),
        "the untrusted bundle did not fail its task: {untrusted}"
    );
    let state = section(transcript, "state")?;
    ensure!(
        state.contains("ward 0.1.0") && state.contains("install ok installed"),
        "the package is not installed: {state}"
    );
    ensure!(
        transcript.contains("@@ trusted bundle in place"),
        "the trusted bundle was not left in place"
    );
    let toml = section(transcript, "agent.toml")?;
    for expected in [
        "role = \"host\"",
        "interfaces = [\"eth0\"]",
        "policy = \"/etc/ward/policy\"",
        "management = [\"198.18.24.0/24\"]",
    ] {
        ensure!(
            toml.contains(expected),
            "agent.toml lacks `{expected}`: {toml}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECAP: &str = "PLAY RECAP ****\nlocalhost                  : ok=6    changed=0    unreachable=0    failed=1    skipped=1\n";

    #[test]
    fn reads_the_recap() {
        assert_eq!(recap(RECAP), Some((0, 1)));
        assert_eq!(recap("no recap"), None);
    }

    #[test]
    fn a_second_run_that_changes_something_fails() {
        let transcript = |second: &str| {
            format!(
                "@@ first run\nlocalhost : ok=6 changed=5 unreachable=0 failed=0\n\
                 @@ second run\nlocalhost : ok=6 changed={second} unreachable=0 failed=0\n\
                 @@ untrusted bundle\nTASK [ward : Distribute the signed policy bundle]\n\
                 signed by key 1234, which is not in trusted_keys\nlocalhost : ok=2 changed=0 unreachable=0 failed=1\n\
                 @@ state\nward 0.1.0-1 install ok installed\n@@ trusted bundle in place\n\
                 @@ agent.toml\nrole = \"host\"\ninterfaces = [\"eth0\"]\n\
                 policy = \"/etc/ward/policy\"\nmanagement = [\"198.18.24.0/24\"]\n"
            )
        };
        check_transcript(&transcript("0")).unwrap();
        let error = check_transcript(&transcript("1")).unwrap_err().to_string();
        assert_eq!(error, "second run is not idempotent: changed/failed (1, 0)");
    }
}
