//! `cargo xtask fuzz [--seconds N] [TARGET...]`: the fuzz targets of `fuzz/` under
//! libFuzzer (cargo-fuzz on the pinned nightly of `agent-ebpf/toolchain.toml`,
//! AddressSanitizer), each for a bounded time.
//!
//! libFuzzer reads the committed seeds (`fuzz/corpus/<target>/`) and adds what it finds
//! to a working corpus in `fuzz/target/corpus/<target>/`, so the seeds stay as committed
//! and later runs start from what earlier runs reached. A crash fails loudly, naming
//! the input libFuzzer saved under `fuzz/artifacts/<target>/`.
use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};

use crate::toolchain::Pin;
use crate::{cmdline, root, step};

/// The fuzz targets (`fuzz/fuzz_targets/*.rs`).
pub const TARGETS: [&str; 3] = ["policy", "event_decode", "frame"];

/// Seconds per target that `cargo xtask test` fuzzes for.
pub const TEST_SECONDS: u64 = 20;

/// Slowest an input may be before libFuzzer reports it as a hang.
const INPUT_TIMEOUT_SECONDS: u64 = 10;

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct Options {
    /// Seconds to fuzz each target for.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Targets to fuzz (default: all).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    pub targets: Vec<String>,
}

/// `cargo xtask fuzz`.
pub fn fuzz(o: Options) -> Result<()> {
    run(o.seconds, &o.targets)
}

/// Builds the targets, then fuzzes each of `targets` (all when empty) for `seconds`.
/// Every target runs even when one crashes; the error lists every crash.
pub fn run(seconds: u64, targets: &[String]) -> Result<()> {
    let targets: Vec<&str> = if targets.is_empty() {
        TARGETS.to_vec()
    } else {
        targets.iter().map(String::as_str).collect()
    };
    let toolchain = Pin::read(&root())?.toolchain;
    if pinned_cargo(&toolchain, &["fuzz", "--version"])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        bail!("`cargo +{toolchain} fuzz` does not run: run `cargo xtask setup` (it installs cargo-fuzz and {toolchain})");
    }
    step(&mut pinned_cargo(&toolchain, &["fuzz", "build"]))?;
    let mut failures = Vec::new();
    for target in targets {
        if let Err(e) = run_target(&toolchain, target, seconds) {
            failures.push(format!("{e:#}"));
        }
    }
    if !failures.is_empty() {
        bail!(
            "fuzzing found {} failure(s):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

/// `cargo` of the pinned nightly `toolchain` (cargo-fuzz needs a nightly) in the
/// workspace root.
fn pinned_cargo(toolchain: &str, args: &[&str]) -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", toolchain, "cargo"])
        .args(args)
        // Set by the cargo that runs xtask: they name its toolchain, not the pinned one.
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN")
        .current_dir(root());
    c
}

/// Fuzzes one target for `seconds`; prints its executions and rate.
fn run_target(toolchain: &str, target: &str, seconds: u64) -> Result<()> {
    let fuzz = root().join("fuzz");
    let work = fuzz.join("target").join("corpus").join(target);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let artifacts = fuzz.join("artifacts").join(target);
    let before = files(&artifacts);
    let mut cmd = pinned_cargo(toolchain, &["fuzz", "run", target]);
    cmd.arg(&work)
        .arg(fuzz.join("corpus").join(target))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECONDS}"))
        .arg("-print_final_stats=1")
        .stderr(Stdio::piped());
    let line = cmdline(&cmd);
    println!("==> {line}");
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run `{line}`"))?;
    // libFuzzer reports on stderr: echo it, keeping the final statistics.
    let (mut runs, mut rate) = (None, None);
    for l in BufReader::new(child.stderr.take().expect("piped")).lines() {
        let l = l.context("reading libFuzzer output")?;
        if let Some(v) = l.strip_prefix("stat::number_of_executed_units:") {
            runs = Some(v.trim().to_owned());
        } else if let Some(v) = l.strip_prefix("stat::average_exec_per_sec:") {
            rate = Some(v.trim().to_owned());
        }
        eprintln!("{l}");
    }
    let status = child.wait()?;
    if !status.success() {
        let inputs: Vec<String> = files(&artifacts)
            .difference(&before)
            .map(|p| p.display().to_string())
            .collect();
        bail!(
            "fuzz target `{target}` FAILED ({status}); input: {}. Reproduce with \
             `cargo +{toolchain} fuzz run {target} INPUT`; once fixed, keep the input under \
             fuzz/regressions/{target}/ with its expected outcome in reference/src/fuzz/tests.rs",
            if inputs.is_empty() {
                "none saved (see the output above)".into()
            } else {
                inputs.join(", ")
            }
        );
    }
    println!(
        "xtask fuzz: {target}: no crash in {seconds} s, {} runs, {} runs/s",
        runs.as_deref().unwrap_or("?"),
        rate.as_deref().unwrap_or("?")
    );
    Ok(())
}

/// The files in `dir` (none when it does not exist).
fn files(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}
