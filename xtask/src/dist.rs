//! `cargo xtask dist [--check]`: the Debian package (`cargo deb`), with the `ward`
//! binary, `ward.service`, `/etc/ward/agent.toml`, `/etc/logrotate.d/ward`, man pages,
//! shell completions and the Prometheus alerting rules;
//! `--check` then installs it into a scratch root and checks it ([`check`]).
mod check;
mod logrotate;
mod sandbox;
mod unit;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::setup::{setup_for, Need};
use crate::{cargo, require_root, step, target_dir};

/// Options of `cargo xtask dist`.
#[derive(clap::Args)]
pub struct Options {
    /// Then check the package: its files and modes in a scratch root, the installed
    /// `ward`, `systemd-analyze verify` of the unit, the man pages, and `ward run`
    /// under the unit's capabilities and system call filter (readiness, no more).
    #[arg(long)]
    pub check: bool,
}

pub fn dist(o: Options) -> Result<()> {
    require_root("dist")?;
    setup_for(&[Need::Build, Need::Dist])?;
    run(o.check).map(drop)
}

/// Builds the package (and checks it when `check`); prints and returns where it is.
pub fn run(check: bool) -> Result<PathBuf> {
    let deb = build()?;
    let size = std::fs::metadata(&deb)
        .with_context(|| format!("{}", deb.display()))?
        .len();
    println!("dist: {} ({} KiB)", deb.display(), size / 1024);
    if check {
        check::check(&deb)?;
        println!("dist: the package passed every check");
    }
    Ok(deb)
}

/// `cargo build --release -p ward`, `ward generate-assets` (man pages gzipped, as
/// Debian wants them), `cargo deb --no-build`; returns the `.deb`.
fn build() -> Result<PathBuf> {
    step(cargo().args(["build", "--release", "-p", "ward"]))?;
    let release = target_dir()?.join("release");
    // The asset paths in agent/Cargo.toml `[package.metadata.deb]`.
    let assets = release.join("ward-assets");
    if assets.exists() {
        std::fs::remove_dir_all(&assets)
            .with_context(|| format!("removing {}", assets.display()))?;
    }
    step(
        Command::new(release.join("ward"))
            .args(["generate-assets", "--out"])
            .arg(&assets),
    )?;
    let pages = files_ending(&assets.join("man"), ".1")?;
    if pages.is_empty() {
        bail!("`ward generate-assets` wrote no man page");
    }
    step(Command::new("gzip").arg("-9nf").args(&pages))?;
    let out_dir = release.parent().context("target dir")?.join("debian");
    let mut deb = cargo();
    deb.args(["deb", "-p", "ward", "--no-build", "--output"])
        .arg(&out_dir);
    println!("==> {}", crate::cmdline(&deb));
    let printed = ward_tests::util::run(&mut deb)?;
    // cargo-deb prints the path of the package it wrote.
    let path = printed
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.ends_with(".deb"))
        .map(PathBuf::from)
        .with_context(|| format!("`cargo deb` named no .deb: {printed}"))?;
    if !path.is_file() {
        bail!(
            "`cargo deb` said it wrote {}, which is not there",
            path.display()
        );
    }
    Ok(path)
}

/// Files in `dir` whose names end with `suffix`, sorted.
fn files_ending(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    Ok(files)
}
