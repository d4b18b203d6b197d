//! `cargo xtask integration-test`: Ward's kernel tests (`kernel_verdicts`,
//! `kernel_events`, `kernel_quarantine`, `differential`, all through
//! `BPF_PROG_TEST_RUN`) and namespace end-to-end tests (`e2e_reliability`, most of
//! `e2e_clinic`: the real `ward run` on veth pairs) on Debian's 6.1 and 6.12 cloud
//! kernels, each booted under QEMU/TCG with an initramfs of busybox, the host's
//! iproute2/util-linux/iputils/procps tools, the binaries and the veth/sch_ingress/
//! cls_bpf modules. See README "Kernel matrix".
mod initramfs;
mod kernel;
mod qemu;
mod report;
mod suites;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::setup::{setup_for, Need};
use crate::{cargo, cmdline, require_root, root, target_dir};
pub use report::Report;
use report::{parse_log, print_failure};
use suites::Suite;

/// The programs the end-to-end tests spawn, put in each VM's `/bin`.
const PROGRAMS: [&str; 2] = ["ward", "ward-probe"];
/// Modules loaded in each VM (the namespace tests need them).
const MODULES: [&str; 3] = ["veth", "sch_ingress", "cls_bpf"];
/// Environment passed into the VMs when set on the host.
const PASSED_ENV: [&str; 2] = ["WARD_DIFF_POLICIES", "WARD_DIFF_SEED"];
/// The clinic end-to-end tests try about one flow in this many (74 of 588, still every
/// pair of hosts, service and family: the most `tests/src/matrix.rs` keeps that for;
/// under TCG starting a probe costs ~0.2 s of CPU, so each pass over all 588 would
/// take minutes, and the clinic suite was the longest of the matrix at one in six).
const MATRIX_SAMPLE: u32 = 8;
/// Probes at once in the VM (32 processes starting together under TCG outlive the
/// harness's 6 s guard).
const PARALLEL_PROBES: u32 = 8;
/// Seconds allowed for one kernel's boot and run: a hang detector, not a budget. 6.1
/// under TCG took 32 minutes beside 6.12 on a busy two-core machine before the
/// programs' verification was halved (each load then cost 13–15 s of it), which left
/// too little headroom on a slower machine of the same kind.
const DEFAULT_TIMEOUT: u64 = 3000;

/// Options of `cargo xtask integration-test`.
#[derive(clap::Args)]
pub struct Options {
    /// Kernel to test (repeatable); both when omitted.
    #[arg(long = "kernel", value_name = "VERSION", value_parser = ["6.1", "6.12"])]
    kernels: Vec<String>,
    /// Seconds allowed for each kernel's boot and test run before QEMU is killed.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT)]
    timeout: u64,
    /// Run only this suite of the matrix (repeatable; e.g. `kernel_containment`, to
    /// see one suite's programs through each kernel's verifier quickly); all when omitted.
    #[arg(long = "suite", value_name = "NAME")]
    suites: Vec<String>,
}

/// `cargo xtask integration-test`.
pub fn integration_test(o: Options) -> Result<()> {
    require_root("integration-test")?;
    setup_for(&[Need::Build, Need::Netns, Need::Vm])?;
    let kernels: Vec<&str> = if o.kernels.is_empty() {
        kernel::SPECS.iter().map(|s| s.name).collect()
    } else {
        o.kernels.iter().map(String::as_str).collect()
    };
    let reports = run_matrix(&kernels, Duration::from_secs(o.timeout), &o.suites);
    println!();
    for r in &reports {
        println!("integration-test: {}", r.line());
    }
    let failed = reports.iter().filter(|r| !r.ok()).count();
    let totals: Vec<report::Counts> = reports.iter().map(Report::total).collect();
    println!(
        "summary: {} passed, {} failed, {} skipped",
        totals.iter().map(|t| t.passed).sum::<u64>(),
        totals
            .iter()
            .map(|t| t.failed)
            .sum::<u64>()
            .max(failed as u64),
        totals.iter().map(|t| t.ignored).sum::<u64>()
    );
    if failed > 0 {
        bail!("{failed} of {} kernels failed", reports.len());
    }
    Ok(())
}

/// Every kernel of the matrix with the default time limit (for `cargo xtask test`).
pub fn run_all() -> Vec<Report> {
    let names: Vec<&str> = kernel::SPECS.iter().map(|s| s.name).collect();
    run_matrix(&names, Duration::from_secs(DEFAULT_TIMEOUT), &[])
}

/// Builds the binaries once, then boots every kernel at once, each in its own QEMU
/// (one vCPU each: on a two-core machine the two kernels take the time of the slower
/// one instead of the sum). A kernel that cannot be prepared, booted or finished is a
/// failure in its report, never a skip. `only` restricts the suites to those names (all
/// when empty). Reports come back in the order of `kernels`.
pub fn run_matrix(kernels: &[&str], limit: Duration, only: &[String]) -> Vec<Report> {
    let bins = binaries(only);
    let reports: Vec<Report> = std::thread::scope(|scope| {
        let runs: Vec<_> = kernels
            .iter()
            .map(|&k| {
                let bins = &bins;
                scope.spawn(move || {
                    let mut r = Report::new(k);
                    let res = bins
                        .as_ref()
                        .map_err(|e| anyhow::anyhow!("{e:#}"))
                        .and_then(|b| run_kernel(k, b, limit, &mut r));
                    if let Err(e) = res {
                        r.problems.push(format!("{e:#}"));
                    }
                    r
                })
            })
            .collect();
        runs.into_iter()
            .zip(kernels)
            .map(|(run, &k)| {
                run.join().unwrap_or_else(|_| {
                    let mut r = Report::new(k);
                    r.problems
                        .push("the kernel's runner thread panicked".into());
                    r
                })
            })
            .collect()
    });
    for r in &reports {
        if !r.ok() {
            print_failure(r);
        }
        println!("integration-test: {}", r.line());
    }
    reports
}

/// What the VMs run: the suites with their test binaries, in run order, and the
/// programs they spawn.
struct Binaries {
    tests: Vec<(Suite, PathBuf)>,
    /// `ward` and `ward-probe`.
    programs: Vec<PathBuf>,
}

/// Builds the binaries if needed (as `cargo xtask test` does) and locates them; `only`
/// restricts the suites to those names (all when empty).
fn binaries(only: &[String]) -> Result<Binaries> {
    let mut c = cargo();
    c.args(["build", "-p", "ward", "-p", "ward-tests", "--bins"]);
    let programs = executables(&mut c, &PROGRAMS)?;
    let mut c = cargo();
    c.args(["test", "-p", "ward-tests", "--no-run"]);
    let mut suites = suites::suites(&root().join("tests").join("tests"))?;
    if !only.is_empty() {
        if let Some(unknown) = only.iter().find(|n| !suites.iter().any(|s| &s.name == *n)) {
            bail!(
                "--suite {unknown}: not a suite of the kernel matrix (see xtask/src/vm/suites.rs)"
            );
        }
        suites.retain(|s| only.contains(&s.name));
    }
    for t in &suites {
        c.args(["--test", &t.name]);
    }
    let names: Vec<&str> = suites.iter().map(|t| t.name.as_str()).collect();
    let exes = executables(&mut c, &names)?;
    let tests = suites.into_iter().zip(exes).collect();
    Ok(Binaries { tests, programs })
}

/// Runs a cargo build command and returns the executables of the targets `names`, in
/// that order.
fn executables(c: &mut Command, names: &[&str]) -> Result<Vec<PathBuf>> {
    c.arg("--message-format=json");
    let line = cmdline(c);
    println!("==> {line}");
    let out = c
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run `{line}`"))?;
    if !out.status.success() {
        bail!("`{line}` failed ({})", out.status);
    }
    let mut found: Vec<(&str, PathBuf)> = Vec::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        let name = v["target"]["name"].as_str().unwrap_or_default();
        let wanted = names.iter().find(|n| **n == name);
        let (Some(&name), Some(exe)) = (wanted, v["executable"].as_str()) else {
            continue;
        };
        if v["reason"] == "compiler-artifact" {
            found.push((name, PathBuf::from(exe)));
        }
    }
    names
        .iter()
        .map(|n| {
            found
                .iter()
                .find(|(f, _)| f == n)
                .map(|(_, p)| p.clone())
                .with_context(|| format!("`{line}` did not name the executable of {n}"))
        })
        .collect()
}

fn run_kernel(name: &str, bins: &Binaries, limit: Duration, r: &mut Report) -> Result<()> {
    let spec = kernel::SPECS
        .iter()
        .find(|s| s.name == name)
        .with_context(|| format!("unknown kernel {name}"))?;
    let dir = target_dir()?.join("kernels").join(name);
    // One kernel at a time fetches its package: apt-get holds a lock of its own.
    static FETCHING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let k = {
        let _one = FETCHING.lock().unwrap_or_else(|e| e.into_inner());
        kernel::prepare(spec, &dir)?
    };
    r.release = format!("{}, {}", k.package, k.release);
    let modules = k.modules(&MODULES)?;
    let mut env: Vec<(String, String)> = PASSED_ENV
        .iter()
        .filter_map(|&v| std::env::var(v).ok().map(|x| (v.to_string(), x)))
        .collect();
    env.extend([
        ("WARD_BIN".into(), "/bin/ward".into()),
        ("WARD_PROBE_BIN".into(), "/bin/ward-probe".into()),
        ("WARD_MATRIX_SAMPLE".into(), MATRIX_SAMPLE.to_string()),
        ("WARD_PARALLEL_PROBES".into(), PARALLEL_PROBES.to_string()),
    ]);
    // The e2e tests read `CARGO_MANIFEST_DIR/../policies/clinic.toml`, a path compiled in.
    let mirrored = [root().join("tests"), root().join("policies/clinic.toml")];
    let initrd = dir.join("initramfs.cpio.gz");
    initramfs::build(
        &initramfs::Contents {
            tests: &bins.tests,
            programs: &bins.programs,
            mirrored: &mirrored,
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
    let suites: Vec<Suite> = bins.tests.iter().map(|(s, _)| s.clone()).collect();
    parse_log(&text, &suites, r);
    Ok(())
}
