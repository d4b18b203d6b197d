//! Developer commands for Ward: `cargo xtask setup | test | demo | integration-test | bench | fuzz | dist | ansible`.
mod ansible;
mod bench;
mod demo;
mod dist;
mod fuzz;
#[cfg(test)]
mod graph;
mod rules;
mod setup;
mod test;
#[path = "../../agent/build/toolchain.rs"]
mod toolchain;
mod vm;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Ward developer commands (run as root)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing Ward needs (apt packages, the pinned eBPF
    /// toolchain of `agent-ebpf/toolchain.toml` with rust-src, bpf-linker for its LLVM,
    /// cargo-fuzz, cargo-deb); idempotent. Each other command installs only its part.
    Setup,
    /// Setup, build, unit tests, a short fuzzing run of every fuzz target, the package
    /// check (`dist --check`), then the root/kernel/netns tests one at a time, then the
    /// kernel matrix (`integration-test`), then the benchmark's smoke run (`bench --quick`).
    Test,
    /// Setup, build (release), run Ward as the gateway of a simulated clinic and check
    /// every flow against the reference evaluator.
    Demo(demo::Options),
    /// The kernel tests and the namespace end-to-end tests (the real agent) on Debian's
    /// 6.1 and 6.12 cloud kernels, each booted under QEMU/TCG with an initramfs.
    IntegrationTest(vm::Options),
    /// Setup, build, then the benchmark: per-packet cost against an empty XDP program,
    /// throughput against nftables and iptables, policy operations; a Markdown table
    /// and `target/bench/results.json`.
    Bench(bench::Options),
    /// Fuzz the policy loader, the event decoder and the reference dataplane with
    /// cargo-fuzz (nightly) for a bounded time per target; a crash fails.
    Fuzz(fuzz::Options),
    /// Setup, then the Debian package `target/debian/ward_*.deb` (cargo-deb): the
    /// binary, `ward.service`, `/etc/ward/agent.toml`, man pages, completions.
    Dist(dist::Options),
    /// Check the Ansible role of `deploy/ansible/` (syntax, ansible-lint, the
    /// agent.toml it writes read by `ward check --config`) with a pinned Ansible in a
    /// virtual environment under the target directory, then build the package and run
    /// the role for real in a sandbox (overlays and namespaces: nothing on this
    /// machine changes).
    Ansible,
}

fn main() -> ExitCode {
    let r = match Cli::parse().cmd {
        Cmd::Setup => setup::setup(),
        Cmd::Test => test::test(),
        Cmd::Demo(o) => demo::demo(o),
        Cmd::IntegrationTest(o) => vm::integration_test(o),
        Cmd::Bench(o) => bench::bench(o),
        Cmd::Fuzz(o) => fuzz::fuzz(o),
        Cmd::Dist(o) => dist::dist(o),
        Cmd::Ansible => ansible_all(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is in the workspace")
        .to_path_buf()
}

/// Errors unless running as root.
pub fn require_root(what: &str) -> Result<()> {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("`cargo xtask {what}` must run as root (it installs packages and creates network namespaces); try `sudo -E cargo xtask {what}`");
    }
    Ok(())
}

/// The command line of `cmd`, for messages.
pub fn cmdline(cmd: &Command) -> String {
    ward_tests::util::cmdline(cmd)
}

/// `cargo` (the one running us) in the workspace root.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs `cmd` with inherited output, announcing it; an error names the command.
pub fn step(cmd: &mut Command) -> Result<()> {
    let line = cmdline(cmd);
    println!("==> {line}");
    let st = cmd
        .status()
        .with_context(|| format!("cannot run `{line}`"))?;
    if !st.success() {
        bail!("`{line}` failed ({st})");
    }
    Ok(())
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR` and `build.target-dir`).
pub fn target_dir() -> Result<PathBuf> {
    let mut c = cargo();
    c.args(["metadata", "--format-version", "1", "--no-deps"]);
    let out = ward_tests::util::run(&mut c)?;
    let v: serde_json::Value = serde_json::from_str(&out).context("cargo metadata output")?;
    let dir = v["target_directory"]
        .as_str()
        .context("cargo metadata: no target_directory")?;
    Ok(PathBuf::from(dir))
}

/// `cargo xtask ansible`: the role's checks, then its sandboxed run with the package.
fn ansible_all() -> anyhow::Result<()> {
    require_root("ansible")?;
    setup::setup_for(&[setup::Need::Build, setup::Need::Dist])?;
    step(cargo().args(["build", "-p", "ward"]))?;
    let ward = target_dir()?.join("debug").join("ward");
    ansible::check(&ward)?;
    let deb = dist::run(false)?;
    ansible::apply(&ward, &deb)
}
