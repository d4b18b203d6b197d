//! `cargo xtask setup`: what a fresh Debian 12 machine needs to build and test Ward,
//! installed per command (`demo` needs neither QEMU nor cargo-fuzz nor cargo-deb).
use std::process::Command;

use anyhow::{bail, Result};

use crate::toolchain::{self, Pin};
use crate::{require_root, root, step};

/// A part of what the commands need; each command asks for the parts it uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Need {
    /// The kernel programs: Debian's LLVM (for bpf-linker), the pinned toolchain with
    /// rust-src, bpf-linker.
    Build,
    /// Network namespaces, veth pairs and probes between them.
    Netns,
    /// The firewalls the benchmark compares Ward with.
    Compare,
    /// The kernel matrix: Debian kernels booted under QEMU/TCG with an initramfs.
    Vm,
    /// The Debian package and its check.
    Dist,
    /// cargo-fuzz.
    Fuzz,
    /// promtool, for the Prometheus alerting rules.
    Rules,
}

impl Need {
    /// Every part: what `cargo xtask setup` and `cargo xtask test` install.
    pub const ALL: [Need; 7] = [
        Need::Build,
        Need::Netns,
        Need::Compare,
        Need::Vm,
        Need::Dist,
        Need::Fuzz,
        Need::Rules,
    ];
}

/// Debian packages (besides LLVM, named by the pin file): the part that needs each and why.
const APT_PACKAGES: [(&str, Need, &str); 18] = [
    ("iproute2", Need::Netns, "ip netns, veth pairs"),
    ("iputils-ping", Need::Netns, "ping between the namespaces"),
    ("util-linux", Need::Netns, "nsenter into a namespace"),
    (
        "rsyslog",
        Need::Netns,
        "the collector e2e_syslog starts (its own rsyslogd, not the service)",
    ),
    (
        "rsyslog-gnutls",
        Need::Netns,
        "TLS (RFC 5425) for the collector e2e_syslog starts",
    ),
    (
        "nftables",
        Need::Compare,
        "the nftables rows of the benchmark",
    ),
    (
        "iptables",
        Need::Compare,
        "the iptables rows of the benchmark",
    ),
    (
        "qemu-system-x86",
        Need::Vm,
        "boots the 6.1 and 6.12 kernels",
    ),
    ("busybox-static", Need::Vm, "the initramfs' shell"),
    ("xz-utils", Need::Vm, "unpacks the kernel packages"),
    ("cpio", Need::Vm, "packs the initramfs"),
    ("kmod", Need::Vm, "module dependencies for the initramfs"),
    ("dpkg-dev", Need::Dist, "dpkg-shlibdeps for the package"),
    (
        "systemd",
        Need::Dist,
        "systemd-analyze verify of ward.service",
    ),
    ("man-db", Need::Dist, "renders the man pages"),
    ("strace", Need::Dist, "lists the system calls ward makes"),
    (
        "python3-apt",
        Need::Dist,
        "the apt module of the Ansible role's sandboxed run",
    ),
    (
        "prometheus",
        Need::Rules,
        "promtool checks and unit-tests the alerting rules; e2e_fleet runs its server",
    ),
];

/// Cargo subcommands: the part that needs each, the crate, why.
const CARGO_TOOLS: [(&str, Need, &str, &str); 2] = [
    ("fuzz", Need::Fuzz, "cargo-fuzz", "cargo xtask fuzz"),
    ("deb", Need::Dist, "cargo-deb", "cargo xtask dist"),
];

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

/// `cargo xtask setup`: everything.
pub fn setup() -> Result<()> {
    setup_for(&Need::ALL)
}

/// Installs what `needs` lack, saying what it installs and why; idempotent.
pub fn setup_for(needs: &[Need]) -> Result<()> {
    require_root("setup")?;
    let pin = Pin::read(&root())?;
    let wants = |n: Need| needs.contains(&n);

    // 1. Debian packages.
    let llvm = pin.llvm_packages();
    let llvm_why = format!("bpf-linker is built against LLVM {}", pin.llvm_major);
    let mut packages: Vec<(&str, &str)> = Vec::new();
    if wants(Need::Build) {
        packages.extend(llvm.iter().map(|p| (p.as_str(), llvm_why.as_str())));
    }
    packages.extend(
        APT_PACKAGES
            .iter()
            .filter(|(_, n, _)| wants(*n))
            .map(|&(p, _, why)| (p, why)),
    );
    let missing: Vec<&(&str, &str)> = packages.iter().filter(|(p, _)| !apt_installed(p)).collect();
    if missing.is_empty() {
        let names: Vec<&str> = packages.iter().map(|(p, _)| *p).collect();
        println!("setup: apt packages already present: {}", names.join(" "));
    } else {
        for (p, why) in &missing {
            println!("setup: installing {p} ({why})");
        }
        step(
            Command::new("apt-get")
                .arg("update")
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        step(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends"])
                .args(missing.iter().map(|(p, _)| p))
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }

    // 2. The pinned toolchain with rust-src (kernel programs; cargo-fuzz runs on it).
    if wants(Need::Build) || wants(Need::Fuzz) {
        install_toolchain(&pin)?;
    }
    // 3. bpf-linker for the pinned toolchain's LLVM major.
    if wants(Need::Build) {
        install_bpf_linker(&pin)?;
    }
    // 4. Cargo subcommands.
    for &(sub, need, krate, why) in &CARGO_TOOLS {
        if wants(need) {
            cargo_tool(sub, krate, why)?;
        }
    }
    println!("setup: done");
    Ok(())
}

fn install_toolchain(pin: &Pin) -> Result<()> {
    if pin.rustc_llvm().is_ok() && pin.has_rust_src() {
        println!(
            "setup: eBPF toolchain {} with rust-src already present",
            pin.toolchain
        );
        return Ok(());
    }
    println!(
        "setup: installing the eBPF toolchain {} with rust-src ({})",
        pin.toolchain,
        toolchain::PIN_FILE
    );
    step(Command::new("rustup").args([
        "toolchain",
        "install",
        &pin.toolchain,
        "--profile",
        "minimal",
        "--component",
        "rust-src",
    ]))?;
    let llvm = pin.rustc_llvm()?;
    if toolchain::major(&llvm) != Some(pin.llvm_major) {
        bail!(
            "{} carries LLVM {llvm}, not the LLVM {} that {} names",
            pin.toolchain,
            pin.llvm_major,
            toolchain::PIN_FILE
        );
    }
    Ok(())
}

fn install_bpf_linker(pin: &Pin) -> Result<()> {
    match toolchain::linker_llvm(toolchain::BPF_LINKER)? {
        Some(v) if toolchain::major(&v) == Some(pin.llvm_major) => {
            println!("setup: bpf-linker already present (LLVM {v})");
            return Ok(());
        }
        Some(v) => println!(
            "setup: reinstalling bpf-linker {}: the one on PATH uses LLVM {v}, the eBPF toolchain LLVM {}",
            pin.bpf_linker, pin.llvm_major
        ),
        None => println!(
            "setup: installing bpf-linker {} (links the kernel programs; LLVM {})",
            pin.bpf_linker, pin.llvm_major
        ),
    }
    // Built by the workspace's own (stable) toolchain.
    let feature = format!("llvm-{}", pin.llvm_major);
    step(
        Command::new("cargo")
            .args(["install", "bpf-linker", "--version", &pin.bpf_linker])
            .args(["--locked", "--force", "--no-default-features", "--features"])
            .arg(&feature)
            .env("LLVM_PREFIX", pin.llvm_prefix())
            .current_dir(root()),
    )?;
    // Whatever was installed must now agree, or say exactly why not.
    pin.check()
}

/// Installs the cargo subcommand `cargo SUBCOMMAND` from crate `krate` unless present.
fn cargo_tool(subcommand: &str, krate: &str, why: &str) -> Result<()> {
    if let Some(v) = quiet(Command::new("cargo").args([subcommand, "--version"])) {
        println!("setup: {krate} already present ({})", v.trim());
        return Ok(());
    }
    println!("setup: installing {krate} ({why})");
    step(
        Command::new("cargo")
            .args(["install", krate, "--locked"])
            .current_dir(root()),
    )?;
    if quiet(Command::new("cargo").args([subcommand, "--version"])).is_none() {
        bail!(
            "{krate} was installed but `cargo {subcommand} --version` still fails: is ~/.cargo/bin on PATH?"
        );
    }
    Ok(())
}
