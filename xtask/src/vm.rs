//! `cargo xtask integration-test`: Ward's kernel tests (`kernel_verdicts`,
//! `kernel_events`, `kernel_quarantine`, `differential`, all through
//! `BPF_PROG_TEST_RUN`) on Debian's 6.1 and 6.12 cloud
//! kernels, each booted under QEMU/TCG with an initramfs of busybox, the test binaries
//! and the veth/sch_ingress/cls_bpf modules. See README "Kernel matrix".
mod initramfs;
mod kernel;
mod qemu;
mod report;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::{cargo, cmdline, require_root, setup::setup, target_dir};
pub use report::Report;
use report::{parse_log, print_failure, TESTS};

/// Modules loaded in each VM (the namespace tests will need them).
const MODULES: [&str; 3] = ["veth", "sch_ingress", "cls_bpf"];
/// Environment passed into the VMs when set on the host.
const PASSED_ENV: [&str; 2] = ["WARD_DIFF_POLICIES", "WARD_DIFF_SEED"];
/// Seconds allowed for one kernel's boot and run.
const DEFAULT_TIMEOUT: u64 = 600;

/// Options of `cargo xtask integration-test`.
#[derive(clap::Args)]
pub struct Options {
    /// Kernel to test (repeatable); both when omitted.
    #[arg(long = "kernel", value_name = "VERSION", value_parser = ["6.1", "6.12"])]
    kernels: Vec<String>,
    /// Seconds allowed for each kernel's boot and test run before QEMU is killed.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT)]
    timeout: u64,
}

/// `cargo xtask integration-test`.
pub fn integration_test(o: Options) -> Result<()> {
    require_root("integration-test")?;
    setup()?;
    let kernels: Vec<&str> = if o.kernels.is_empty() {
        kernel::SPECS.iter().map(|s| s.name).collect()
    } else {
        o.kernels.iter().map(String::as_str).collect()
    };
    let reports = run_matrix(&kernels, Duration::from_secs(o.timeout));
    println!();
    for r in &reports {
        println!("integration-test: {}", r.line());
    }
    let failed = reports.iter().filter(|r| !r.ok()).count();
    println!(
        "summary: {} passed, {} failed, {} skipped",
        reports.iter().map(|r| r.passed).sum::<u64>(),
        reports
            .iter()
            .map(|r| r.failed)
            .sum::<u64>()
            .max(failed as u64),
        reports.iter().map(|r| r.ignored).sum::<u64>()
    );
    if failed > 0 {
        bail!("{failed} of {} kernels failed", reports.len());
    }
    Ok(())
}

/// Every kernel of the matrix with the default time limit (for `cargo xtask test`).
pub fn run_all() -> Vec<Report> {
    let names: Vec<&str> = kernel::SPECS.iter().map(|s| s.name).collect();
    run_matrix(&names, Duration::from_secs(DEFAULT_TIMEOUT))
}

/// Builds the test binaries once, then boots each kernel in turn. A kernel that cannot
/// be prepared, booted or finished is a failure in its report, never a skip.
pub fn run_matrix(kernels: &[&str], limit: Duration) -> Vec<Report> {
    let tests = test_binaries();
    kernels
        .iter()
        .map(|&k| {
            let mut r = Report::new(k);
            let res = tests
                .as_ref()
                .map_err(|e| anyhow::anyhow!("{e:#}"))
                .and_then(|t| run_kernel(k, t, limit, &mut r));
            if let Err(e) = res {
                r.problems.push(format!("{e:#}"));
            }
            if !r.ok() {
                print_failure(&r);
            }
            println!("integration-test: {}", r.line());
            r
        })
        .collect()
}

/// (target name, executable) of each of `TESTS`, built if needed.
fn test_binaries() -> Result<Vec<(String, PathBuf)>> {
    let mut c = cargo();
    c.args([
        "test",
        "-p",
        "ward-tests",
        "--no-run",
        "--message-format=json",
    ]);
    for t in TESTS {
        c.args(["--test", t]);
    }
    let line = cmdline(&c);
    println!("==> {line}");
    let out = c
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run `{line}`"))?;
    if !out.status.success() {
        bail!("`{line}` failed ({})", out.status);
    }
    let mut found = Vec::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        let name = v["target"]["name"].as_str().unwrap_or_default();
        if v["reason"] == "compiler-artifact" && TESTS.contains(&name) {
            if let Some(exe) = v["executable"].as_str() {
                found.push((name.to_string(), PathBuf::from(exe)));
            }
        }
    }
    found.sort_by_key(|(n, _)| TESTS.iter().position(|t| t == n));
    if found.len() != TESTS.len() {
        bail!(
            "`{line}` did not name the executables of {}",
            TESTS.join(", ")
        );
    }
    Ok(found)
}

fn run_kernel(
    name: &str,
    tests: &[(String, PathBuf)],
    limit: Duration,
    r: &mut Report,
) -> Result<()> {
    let spec = kernel::SPECS
        .iter()
        .find(|s| s.name == name)
        .with_context(|| format!("unknown kernel {name}"))?;
    let dir = target_dir()?.join("kernels").join(name);
    let k = kernel::prepare(spec, &dir)?;
    r.release = format!("{}, {}", k.package, k.release);
    let modules = k.modules(&MODULES)?;
    let env: Vec<(String, String)> = PASSED_ENV
        .iter()
        .filter_map(|&v| std::env::var(v).ok().map(|x| (v.to_string(), x)))
        .collect();
    let initrd = dir.join("initramfs.cpio.gz");
    initramfs::build(
        &initramfs::Contents {
            tests,
            modules: &modules,
            env: &env,
        },
        &dir.join("initramfs"),
        &initrd,
    )?;
    println!(
        "integration-test: kernel {name}: booting {} under QEMU/TCG",
        k.release
    );
    let log = dir.join("console.log");
    r.log = Some(log.clone());
    let boot = qemu::boot(
        &k.vmlinuz,
        &initrd,
        &log,
        limit,
        &format!("[{name}] "),
        initramfs::START,
    )?;
    r.seconds = boot.seconds;
    r.boot_seconds = boot.boot_seconds;
    if boot.status.is_none() {
        r.problems
            .push(format!("no end within {} s; QEMU killed", limit.as_secs()));
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    parse_log(&text, r);
    Ok(())
}
