//! The kernel programs' pinned toolchain (`agent-ebpf/toolchain.toml`) and the checks
//! that it and bpf-linker agree on the LLVM major version.
//!
//! Shared by `agent/build.rs` (before it builds the programs) and by `cargo xtask`
//! (`setup`, `fuzz`), which includes this file with `#[path]`: it depends only on std,
//! serde, toml and anyhow.
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

/// The pin file, relative to the workspace root.
pub const PIN_FILE: &str = "agent-ebpf/toolchain.toml";

/// `agent-ebpf/toolchain.toml`.
#[derive(serde::Deserialize)]
struct PinFile {
    ebpf: Pin,
}

/// The kernel programs' toolchain, as pinned.
#[derive(serde::Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// A dated nightly, e.g. `nightly-2026-05-19`.
    pub toolchain: String,
    /// The LLVM major version that toolchain's rustc carries.
    pub llvm_major: u32,
    /// The bpf-linker version `cargo xtask setup` installs.
    pub bpf_linker: String,
}

impl Pin {
    /// Reads the pin file of the workspace at `root`.
    pub fn read(root: &Path) -> Result<Self> {
        let path = root.join(PIN_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let file: PinFile =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(file.ebpf)
    }

    /// Where Debian's LLVM of this major lives (bpf-linker is built against it).
    pub fn llvm_prefix(&self) -> String {
        format!("/usr/lib/llvm-{}", self.llvm_major)
    }

    /// The Debian packages bpf-linker is built from.
    pub fn llvm_packages(&self) -> [String; 2] {
        [
            format!("llvm-{}-dev", self.llvm_major),
            format!("libclang-{}-dev", self.llvm_major),
        ]
    }

    /// The command that installs the pinned toolchain.
    pub fn toolchain_install_line(&self) -> String {
        format!(
            "rustup toolchain install {} --profile minimal --component rust-src",
            self.toolchain
        )
    }

    /// The command that (re)installs bpf-linker for the pinned LLVM major.
    pub fn bpf_linker_install_line(&self) -> String {
        format!(
            "LLVM_PREFIX={} cargo install bpf-linker --version {} --locked --no-default-features --features llvm-{} --force",
            self.llvm_prefix(),
            self.bpf_linker,
            self.llvm_major
        )
    }

    /// The LLVM version (`major.minor.patch`) of the pinned toolchain's rustc; an error
    /// naming the install command when the toolchain is not installed.
    pub fn rustc_llvm(&self) -> Result<String> {
        let out = Command::new("rustup")
            .args(["run", &self.toolchain, "rustc", "-vV"])
            .env_remove("RUSTC")
            .env_remove("RUSTUP_TOOLCHAIN")
            .output()
            .context("running `rustup` (is it installed and on PATH?)")?;
        if !out.status.success() {
            bail!(
                "the eBPF toolchain {} ({PIN_FILE}) is not installed: run `{}` (or `cargo xtask setup`)",
                self.toolchain,
                self.toolchain_install_line()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("LLVM version:"))
            .map(|v| v.trim().to_owned())
            .with_context(|| format!("`rustc +{} -vV` names no LLVM version", self.toolchain))
    }

    /// Whether the pinned toolchain has `rust-src` (the programs build `core` from it).
    pub fn has_rust_src(&self) -> bool {
        Command::new("rustup")
            .args(["component", "list", "--installed", "--toolchain"])
            .arg(&self.toolchain)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .is_some_and(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.trim().starts_with("rust-src"))
            })
    }

    /// Checks, before a build, that the pinned toolchain is installed with `rust-src`,
    /// carries the LLVM major the pin file names, and that bpf-linker runs on the same
    /// major. Each failure is one line with both versions and the command that fixes it.
    pub fn check(&self) -> Result<()> {
        self.check_with(BPF_LINKER)
    }

    /// [`Pin::check`] with `linker` as bpf-linker.
    fn check_with(&self, linker: &str) -> Result<()> {
        let rustc = self.rustc_llvm()?;
        if major(&rustc) != Some(self.llvm_major) {
            bail!(
                "{PIN_FILE} says {} carries LLVM {}, but its rustc reports LLVM {rustc}: set llvm_major = {} there",
                self.toolchain,
                self.llvm_major,
                major(&rustc).map_or_else(|| "?".into(), |m| m.to_string())
            );
        }
        if !self.has_rust_src() {
            bail!(
                "the eBPF toolchain {} has no rust-src: run `rustup component add rust-src --toolchain {}`",
                self.toolchain,
                self.toolchain
            );
        }
        match linker_llvm(linker)? {
            None => bail!(
                "bpf-linker is not on PATH: run `{}` (needs {})",
                self.bpf_linker_install_line(),
                self.llvm_packages().join(" ")
            ),
            Some(linker) if major(&linker) != Some(self.llvm_major) => bail!(
                "LLVM mismatch: the eBPF toolchain {} carries LLVM {rustc} but bpf-linker uses LLVM {linker}; fix: `{}` (needs {})",
                self.toolchain,
                self.bpf_linker_install_line(),
                self.llvm_packages().join(" ")
            ),
            Some(_) => Ok(()),
        }
    }
}

/// The major of an LLVM version string such as `22.1.4`.
pub fn major(version: &str) -> Option<u32> {
    version.split('.').next()?.trim().parse().ok()
}

/// The linker rustc runs for the BPF targets.
pub const BPF_LINKER: &str = "bpf-linker";

/// The LLVM version the bpf-linker `linker` actually loads (LLVM's own `--version`,
/// passed through `--llvm-args`), or `None` when there is no such program.
pub fn linker_llvm(linker: &str) -> Result<Option<String>> {
    let out = match Command::new(linker)
        .args(["--llvm-args=--version", "-o", "/dev/null", "/dev/null"])
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("running bpf-linker"),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // "Debian LLVM version 22.1.8" / "LLVM version 22.1.8"
    text.lines()
        .find_map(|l| l.split("LLVM version").nth(1))
        .map(|v| Some(v.trim().to_owned()))
        .with_context(|| {
            format!(
                "`bpf-linker --llvm-args=--version` printed no LLVM version ({}{})",
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn pin() -> Pin {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        Pin::read(&root).expect("the pin file parses")
    }

    /// A stand-in bpf-linker that answers `--llvm-args=--version` as LLVM `version`.
    fn fake_linker(dir: &Path, version: &str) -> String {
        let path = dir.join(format!("bpf-linker-{version}"));
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho 'Debian LLVM version {version}'\necho '  Optimized build.'\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    #[test]
    fn the_pinned_toolchain_is_dated_and_carries_the_named_llvm() {
        let pin = pin();
        assert!(
            pin.toolchain.starts_with("nightly-20"),
            "{} is not a dated nightly",
            pin.toolchain
        );
        let llvm = pin.rustc_llvm().expect("run `cargo xtask setup`");
        assert_eq!(
            major(&llvm),
            Some(pin.llvm_major),
            "rustc +{} reports LLVM {llvm}",
            pin.toolchain
        );
    }

    #[test]
    fn a_linker_of_another_llvm_major_is_refused_in_one_line_with_the_fix() {
        let pin = pin();
        let dir = std::env::temp_dir().join(format!("ward-toolchain-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let other = format!("{}.1.4", pin.llvm_major + 1);
        let err = pin
            .check_with(&fake_linker(&dir, &other))
            .unwrap_err()
            .to_string();
        let same = format!("{}.1.8", pin.llvm_major);
        let ok = pin.check_with(&fake_linker(&dir, &same));
        let missing = pin
            .check_with("/nonexistent/bpf-linker")
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!err.contains('\n'), "{err}");
        assert!(
            err.contains(&format!("bpf-linker uses LLVM {other}")),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "{} carries LLVM {}.",
                pin.toolchain, pin.llvm_major
            )),
            "{err}"
        );
        assert!(err.contains(&pin.bpf_linker_install_line()), "{err}");
        assert!(!err.contains("setup first"), "{err}");
        ok.expect("a linker of the same major is accepted");
        assert!(
            missing.contains("not on PATH") && missing.contains("cargo install bpf-linker"),
            "{missing}"
        );
    }

    #[test]
    fn majors_are_read_from_versions() {
        assert_eq!(major("22.1.4"), Some(22));
        assert_eq!(major("23"), Some(23));
        assert_eq!(major("x.1"), None);
    }
}
