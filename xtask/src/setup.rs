//! `cargo xtask setup`: what a fresh Debian 12 machine needs to build and test Ward.
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::{require_root, root, step};

/// Debian packages: LLVM 22 for bpf-linker, the tools the namespace tests use, what
/// the QEMU kernel matrix (`cargo xtask integration-test`) uses, and what
/// `cargo xtask dist --check` uses (dpkg-shlibdeps, systemd-analyze, man and groff,
/// strace).
pub const APT_PACKAGES: [&str; 17] = [
    "llvm-22-dev",
    "libclang-22-dev",
    "iproute2",
    "iputils-ping",
    "nftables",
    "iptables",
    "util-linux",
    "qemu-system-x86",
    "busybox-static",
    "xz-utils",
    "cpio",
    "kmod",
    "dpkg-dev",
    "systemd",
    "man-db",
    "groff-base",
    "strace",
];

/// Where Debian's LLVM 22 lives, for building bpf-linker.
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

fn quiet(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn apt_installed(pkg: &str) -> bool {
    quiet(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
        .is_some_and(|s| s.trim() == "install ok installed")
}

/// Installs what is missing; says what it installs and what is already present.
pub fn setup() -> Result<()> {
    require_root("setup")?;

    // 1. Debian packages.
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !apt_installed(p))
        .collect();
    if missing.is_empty() {
        println!(
            "setup: apt packages already present: {}",
            APT_PACKAGES.join(" ")
        );
    } else {
        println!("setup: installing apt packages: {}", missing.join(" "));
        step(
            Command::new("apt-get")
                .arg("update")
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        step(
            Command::new("apt-get")
                .args(["install", "-y"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }

    // 2. Nightly with rust-src (agent/build.rs builds the eBPF programs with it).
    let toolchains = quiet(Command::new("rustup").args(["toolchain", "list"]))
        .context("`rustup toolchain list` failed: is rustup installed and on PATH?")?;
    let has_nightly = toolchains.lines().any(|l| l.starts_with("nightly"));
    let has_src = has_nightly
        && quiet(Command::new("rustup").args([
            "component",
            "list",
            "--installed",
            "--toolchain",
            "nightly",
        ]))
        .is_some_and(|s| s.lines().any(|l| l.trim().starts_with("rust-src")));
    if has_nightly && has_src {
        println!("setup: nightly toolchain with rust-src already present");
    } else {
        println!(
            "setup: installing {}",
            if has_nightly {
                "rust-src for the nightly toolchain"
            } else {
                "the nightly toolchain with rust-src"
            }
        );
        step(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))?;
    }

    // 3. bpf-linker, built against Debian's LLVM 22.
    if let Some(v) = quiet(Command::new("bpf-linker").arg("--version")) {
        println!("setup: bpf-linker already present ({})", v.trim());
    } else {
        // The stable toolchain, not the workspace's pin nor nightly; if there is no
        // `stable` toolchain, the workspace pin (a stable release) is used.
        let stable = toolchains.lines().any(|l| l.starts_with("stable"));
        println!(
            "setup: installing bpf-linker (LLVM 22, {} toolchain)",
            if stable { "stable" } else { "workspace-pinned" }
        );
        let mut c = Command::new("cargo");
        c.args([
            "install",
            "bpf-linker",
            "--no-default-features",
            "--features",
            "llvm-22",
        ])
        .env("LLVM_PREFIX", LLVM_PREFIX)
        .current_dir(root());
        if stable {
            c.env("RUSTUP_TOOLCHAIN", "stable");
        } else {
            c.env_remove("RUSTUP_TOOLCHAIN");
        }
        step(&mut c)?;
        if quiet(Command::new("bpf-linker").arg("--version")).is_none() {
            anyhow::bail!(
                "bpf-linker was installed but `bpf-linker --version` still fails: is ~/.cargo/bin on PATH?"
            );
        }
    }
    // 4. cargo-fuzz, for `cargo xtask fuzz` (it runs on the nightly toolchain above).
    cargo_tool("fuzz", "cargo-fuzz")?;
    // 5. cargo-deb, for `cargo xtask dist`.
    cargo_tool("deb", "cargo-deb")?;
    println!("setup: done");
    Ok(())
}

/// Installs the cargo subcommand `cargo SUBCOMMAND` from crate `krate` unless present.
fn cargo_tool(subcommand: &str, krate: &str) -> Result<()> {
    if let Some(v) = quiet(Command::new("cargo").args([subcommand, "--version"])) {
        println!("setup: {krate} already present ({})", v.trim());
        return Ok(());
    }
    println!("setup: installing {krate}");
    step(
        Command::new("cargo")
            .args(["install", krate, "--locked"])
            .current_dir(root()),
    )?;
    if quiet(Command::new("cargo").args([subcommand, "--version"])).is_none() {
        anyhow::bail!(
            "{krate} was installed but `cargo {subcommand} --version` still fails: is ~/.cargo/bin on PATH?"
        );
    }
    Ok(())
}
