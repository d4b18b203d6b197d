//! `cargo xtask integration-test`: Ward's kernel verdict tests (`kernel_verdicts`,
//! `differential`, both through `BPF_PROG_TEST_RUN`) on Debian's 6.1 and 6.12 cloud
//! kernels, each booted under QEMU/TCG with an initramfs of busybox, the test binaries
//! and the veth/sch_ingress/cls_bpf modules. See README "Kernel matrix".
mod initramfs;
mod kernel;
mod qemu;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::{cargo, cmdline, require_root, setup::setup, target_dir};

/// The test targets of `ward-tests` run in each VM, in this order.
const TESTS: [&str; 2] = ["kernel_verdicts", "differential"];
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

/// One kernel's result.
pub struct Report {
    /// `6.1`, `6.12`.
    pub kernel: String,
    /// The package and `uname -r`, once known.
    pub release: String,
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    /// Modules that did not load.
    pub module_failures: Vec<String>,
    /// True when a test panicked loading the programs (the verifier or the loader
    /// refused them).
    pub load_rejected: bool,
    pub seconds: f64,
    pub boot_seconds: Option<f64>,
    /// Why the kernel failed besides failing tests: no boot, a timeout, a crash...
    pub problems: Vec<String>,
    /// The serial console log.
    pub log: Option<PathBuf>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.failed == 0 && !self.load_rejected && self.passed > 0
    }

    fn new(kernel: &str) -> Self {
        Self {
            kernel: kernel.to_string(),
            release: String::new(),
            passed: 0,
            failed: 0,
            ignored: 0,
            module_failures: Vec::new(),
            load_rejected: false,
            seconds: 0.0,
            boot_seconds: None,
            problems: Vec::new(),
            log: None,
        }
    }

    /// One line: `kernel 6.1 (…): ok, programs loaded, 9 passed, 0 failed, 0 skipped, …`.
    pub fn line(&self) -> String {
        let verdict = if self.ok() { "ok" } else { "FAILED" };
        let programs = if self.load_rejected {
            "programs REJECTED"
        } else if self.passed > 0 {
            "programs loaded"
        } else {
            "programs not loaded"
        };
        let modules = if self.module_failures.is_empty() {
            "modules ok".to_string()
        } else {
            format!("modules FAILED: {}", self.module_failures.join(" "))
        };
        let boot = self
            .boot_seconds
            .map_or(String::new(), |b| format!(" (boot {b:.0} s)"));
        format!(
            "kernel {} ({}): {verdict}, {programs}, {} passed, {} failed, {} skipped, {modules}, {:.0} s{boot}",
            self.kernel, self.release, self.passed, self.failed, self.ignored, self.seconds
        )
    }
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
        reports.iter().map(|r| r.failed).sum::<u64>().max(failed as u64),
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

fn print_failure(r: &Report) {
    for p in &r.problems {
        println!("integration-test: kernel {}: {p}", r.kernel);
    }
    let Some(log) = &r.log else { return };
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    println!(
        "integration-test: kernel {}: last lines of {}:",
        r.kernel,
        log.display()
    );
    for l in &lines[lines.len().saturating_sub(40)..] {
        println!("    {}", l.trim_end_matches('\r'));
    }
    let qemu = std::fs::read_to_string(log.with_extension("qemu")).unwrap_or_default();
    if !qemu.trim().is_empty() {
        println!("integration-test: QEMU said: {}", qemu.trim());
    }
}

/// (target name, executable) of each of `TESTS`, built if needed.
fn test_binaries() -> Result<Vec<(String, PathBuf)>> {
    let mut c = cargo();
    c.args(["test", "-p", "ward-tests", "--no-run", "--message-format=json"]);
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
        bail!("`{line}` did not name the executables of {}", TESTS.join(", "));
    }
    Ok(found)
}

fn run_kernel(name: &str, tests: &[(String, PathBuf)], limit: Duration, r: &mut Report) -> Result<()> {
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
    println!("integration-test: kernel {name}: booting {} under QEMU/TCG", k.release);
    let log = dir.join("console.log");
    r.log = Some(log.clone());
    let boot = qemu::boot(&k.vmlinuz, &initrd, &log, limit, &format!("[{name}] "), initramfs::START)?;
    r.seconds = boot.seconds;
    r.boot_seconds = boot.boot_seconds;
    if boot.status.is_none() {
        r.problems.push(format!("no end within {} s; QEMU killed", limit.as_secs()));
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    parse_log(&text, r);
    Ok(())
}

/// Reads the markers and cargo test's `test result:` lines of a console log.
fn parse_log(text: &str, r: &mut Report) {
    let (mut started, mut ended) = (false, false);
    let mut exits: Vec<(String, String)> = Vec::new();
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        // Kernel messages can share a line with ours: look for the markers anywhere.
        if line.contains(initramfs::START) {
            started = true;
        } else if line.contains(initramfs::END) {
            ended = true;
        } else if let Some(rest) = after(line, initramfs::MODULE) {
            if let [m, st] = rest.split_whitespace().collect::<Vec<_>>()[..] {
                if st != "ok" {
                    r.module_failures.push(m.to_string());
                }
            }
        } else if let Some(rest) = after(line, initramfs::TEST_EXIT) {
            let mut w = rest.split_whitespace();
            if let (Some(t), Some(code)) = (w.next(), w.next()) {
                exits.push((t.to_string(), code.to_string()));
            }
        } else if line.contains("loading the kernel programs") {
            r.load_rejected = true;
        } else if let Some(rest) = after(line, "test result:") {
            for part in rest.split(';') {
                let w: Vec<&str> = part.split_whitespace().collect();
                let n = w.len().checked_sub(2).and_then(|i| w[i].parse::<u64>().ok()).unwrap_or(0);
                match w.last() {
                    Some(&"passed") => r.passed += n,
                    Some(&"failed") => r.failed += n,
                    Some(&"ignored") => r.ignored += n,
                    _ => {}
                }
            }
        }
    }
    if !started {
        r.problems.push("the VM never reached /init".into());
    } else if !ended {
        r.problems.push("/init did not finish".into());
    }
    for t in TESTS {
        match exits.iter().find(|(n, _)| n == t) {
            None if started => r.problems.push(format!("{t}: no exit status")),
            Some((_, code)) if code != "0" => r.problems.push(format!("{t} exited with {code}")),
            _ => {}
        }
    }
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|i| &line[i + marker.len()..])
}

#[cfg(test)]
mod tests {
    use super::{parse_log, Report};

    #[test]
    fn reads_a_console_log() {
        let log = "[    1.0] random: crng init done\r\n\
            WARD-VM: module veth ok\r\nWARD-VM: module cls_bpf FAILED\r\n\
            WARD-VM: start 6.1.0-50-cloud-amd64\r\n\
            WARD-VM: test-start kernel_verdicts\r\n\
            test result: ok. 8 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 9.1s\r\n\
            WARD-VM: test-exit kernel_verdicts 0\r\n\
            WARD-VM: test-start differential\r\n\
            thread 'x' panicked at tests/tests/support/mod.rs:29:17:\r\n\
            loading the kernel programs: the BPF_PROG_LOAD syscall failed\r\n\
            test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\r\n\
            WARD-VM: test-exit differential 101\r\nWARD-VM: end\r\n";
        let mut r = Report::new("6.1");
        parse_log(log, &mut r);
        assert_eq!((r.passed, r.failed, r.ignored), (8, 1, 1));
        assert_eq!(r.module_failures, ["cls_bpf"]);
        assert!(r.load_rejected);
        assert_eq!(r.problems, ["differential exited with 101"]);
        assert!(!r.ok());

        let mut r = Report::new("6.12");
        parse_log("WARD-VM: start x\nWARD-VM: test-start kernel_verdicts\n", &mut r);
        assert_eq!(
            r.problems,
            [
                "/init did not finish",
                "kernel_verdicts: no exit status",
                "differential: no exit status"
            ]
        );
    }
}
