//! `cargo xtask test`: the whole test suite, as CI runs it (`.ci/run`).
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};

use crate::{cargo, cmdline, require_root, setup::setup, step, target_dir};

/// Test counts gathered from cargo test's `test result:` lines, and failed steps.
#[derive(Default)]
struct Summary {
    passed: u64,
    failed: u64,
    ignored: u64,
    steps: Vec<(String, bool)>,
}

impl Summary {
    fn record_result_line(&mut self, line: &str) {
        // test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; …
        let Some(rest) = line.trim().strip_prefix("test result:") else {
            return;
        };
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let n = |i: usize| {
                words
                    .get(i)
                    .and_then(|w| w.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            match words.as_slice() {
                [.., _, "passed"] => self.passed += n(words.len() - 2),
                [_, "failed"] => self.failed += n(0),
                [_, "ignored"] => self.ignored += n(0),
                _ => {}
            }
        }
    }

    fn print(&self) {
        println!();
        for (name, ok) in &self.steps {
            println!("xtask test: {name}: {}", if *ok { "ok" } else { "FAILED" });
        }
        // A step that failed without a failing test (a build error) counts as one failure.
        let step_failures = self.steps.iter().filter(|(_, ok)| !ok).count() as u64;
        let failed = if self.failed > 0 {
            self.failed
        } else {
            step_failures
        };
        println!(
            "summary: {} passed, {failed} failed, {} skipped",
            self.passed, self.ignored
        );
    }

    fn ok(&self) -> bool {
        self.failed == 0 && self.steps.iter().all(|(_, ok)| *ok)
    }
}

/// Runs a `cargo test` command, echoing its output and counting its results.
fn cargo_test(name: &str, cmd: &mut Command, summary: &mut Summary) -> Result<()> {
    let line = cmdline(cmd);
    println!("==> {line}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{line}`"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut out = std::io::stdout();
    for l in BufReader::new(stdout).lines() {
        let l = l.context("reading cargo test output")?;
        summary.record_result_line(&l);
        let _ = writeln!(out, "{l}");
    }
    let st = child.wait()?;
    summary.steps.push((name.to_string(), st.success()));
    Ok(())
}

/// Setup, build, unit tests, kernel tests; non-zero exit on any failure.
pub fn test() -> Result<()> {
    require_root("test")?;
    setup()?;
    let mut summary = Summary::default();

    let built = step(cargo().args(["build", "-p", "ward", "-p", "ward-tests", "--bins"]));
    summary
        .steps
        .push(("build ward and ward-probe".into(), built.is_ok()));
    if let Err(e) = built {
        summary.print();
        return Err(e);
    }
    let bin_dir = target_dir()?.join("debug");

    // Unit tests of every host-side crate (ward-ebpf is built for the kernel only;
    // ward-tests runs below, one test at a time).
    cargo_test(
        "unit tests",
        cargo().args([
            "test",
            "--workspace",
            "--exclude",
            "ward-ebpf",
            "--exclude",
            "ward-tests",
        ]),
        &mut summary,
    )?;

    // The Prometheus alerting rules: `promtool check rules` and `promtool test rules`.
    let rules = crate::rules::run();
    if let Err(e) = &rules {
        eprintln!("xtask test: alerting rules: {e:#}");
    }
    summary
        .steps
        .push(("promtool check and test rules".into(), rules.is_ok()));

    // The fuzz targets, briefly (`cargo xtask fuzz`): a crash fails the step.
    let fuzzed = crate::fuzz::run(crate::fuzz::TEST_SECONDS, &[]);
    if let Err(e) = &fuzzed {
        eprintln!("xtask test: fuzz: {e:#}");
    }
    summary.steps.push((
        format!("fuzz ({} s per target)", crate::fuzz::TEST_SECONDS),
        fuzzed.is_ok(),
    ));
    // The Ansible role (`deploy/ansible/`): syntax, ansible-lint, the agent.toml it writes.
    let ansible = crate::ansible::check(&bin_dir.join("ward"));
    if let Err(e) = &ansible {
        eprintln!("xtask test: ansible: {e:#}");
    }
    summary.steps.push(("ansible role".into(), ansible.is_ok()));
    // The Debian package, installed into a scratch root and checked (`cargo xtask dist --check`).
    let dist = crate::dist::run(true);
    if let Err(e) = &dist {
        eprintln!("xtask test: dist --check: {e:#}");
    }
    summary.steps.push(("dist --check".into(), dist.is_ok()));
    // The Ansible role run for real with that package, in a sandbox.
    let applied = match &dist {
        Ok(deb) => crate::ansible::apply(&bin_dir.join("ward"), deb),
        Err(_) => Err(anyhow::anyhow!("no package to install (dist failed)")),
    };
    if let Err(e) = &applied {
        eprintln!("xtask test: ansible role run: {e:#}");
    }
    summary
        .steps
        .push(("ansible role run in a sandbox".into(), applied.is_ok()));

    // Root, kernel and network-namespace tests: one at a time, since each attaches
    // programs and builds its own topology.
    cargo_test(
        "kernel and netns tests",
        cargo()
            .args(["test", "-p", "ward-tests", "--", "--test-threads=1"])
            .env("WARD_BIN", bin_dir.join("ward"))
            .env("WARD_PROBE_BIN", bin_dir.join("ward-probe")),
        &mut summary,
    )?;

    // The kernel verdict tests again on Debian's 6.1 and 6.12 kernels under QEMU/TCG
    // (`cargo xtask integration-test`): one step per kernel.
    for r in crate::vm::run_all() {
        summary
            .steps
            .push((format!("kernel matrix {}", r.kernel), r.ok()));
        let t = r.total();
        summary.passed += t.passed;
        summary.failed += t.failed;
        summary.ignored += t.ignored;
    }

    // The benchmark's smoke run (`cargo xtask bench --quick`), so its harness never
    // rots: it fails on a harness error, never on a missed speed target.
    let bench = crate::bench::run(true, "af-packet", None);
    if let Err(e) = &bench {
        eprintln!("xtask test: bench --quick: {e:#}");
    }
    summary.steps.push(("bench --quick".into(), bench.is_ok()));

    summary.print();
    if !summary.ok() {
        bail!("tests failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn counts_cargo_test_result_lines() {
        let mut s = Summary::default();
        s.record_result_line("test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        s.record_result_line("test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 3s");
        s.record_result_line("running 3 tests");
        assert_eq!((s.passed, s.failed, s.ignored), (4, 2, 1));
    }
}
