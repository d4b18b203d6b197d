//! One kernel's result, read from its serial console log.
use std::path::PathBuf;

use super::initramfs;
use super::suites::Suite;

/// What a test prints when the kernel refuses the programs (the test support's panic
/// and aya's `ProgramError::LoadError`).
const REJECTED: [&str; 2] = ["loading the kernel programs", "BPF_PROG_LOAD syscall"];

/// Test counts from cargo test's `test result:` lines.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

/// One kernel's result.
pub struct Report {
    /// `6.1`, `6.12`.
    pub kernel: String,
    /// The package and `uname -r`, once known.
    pub release: String,
    /// Counts of each test binary that reported any, in the order they ran.
    pub suites: Vec<(String, Counts)>,
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
        let t = self.total();
        self.problems.is_empty()
            && self.module_failures.is_empty()
            && t.failed == 0
            && !self.load_rejected
            && t.passed > 0
    }

    pub fn new(kernel: &str) -> Self {
        Self {
            kernel: kernel.to_string(),
            release: String::new(),
            suites: Vec::new(),
            module_failures: Vec::new(),
            load_rejected: false,
            seconds: 0.0,
            boot_seconds: None,
            problems: Vec::new(),
            log: None,
        }
    }

    /// The counts of every binary together.
    pub fn total(&self) -> Counts {
        self.suites
            .iter()
            .fold(Counts::default(), |a, (_, c)| Counts {
                passed: a.passed + c.passed,
                failed: a.failed + c.failed,
                ignored: a.ignored + c.ignored,
            })
    }

    /// One line: `kernel 6.1 (…): ok, programs loaded, 19 passed, 0 failed, 0 skipped
    /// (kernel_verdicts 8 passed, …, e2e_clinic 3 passed), modules ok, 380 s (boot 5 s)`.
    pub fn line(&self) -> String {
        let verdict = if self.ok() { "ok" } else { "FAILED" };
        let t = self.total();
        let programs = if self.load_rejected {
            "programs REJECTED"
        } else if t.passed > 0 {
            "programs loaded"
        } else {
            "no test result"
        };
        let modules = if self.module_failures.is_empty() {
            "modules ok".to_string()
        } else {
            format!("modules FAILED: {}", self.module_failures.join(" "))
        };
        let boot = self
            .boot_seconds
            .map_or(String::new(), |b| format!(" (boot {b:.0} s)"));
        let suites: Vec<String> = self
            .suites
            .iter()
            .map(|(name, c)| format!("{name} {}", c.short()))
            .collect();
        format!(
            "kernel {} ({}): {verdict}, {programs}, {} ({}), {modules}, {:.0} s{boot}",
            self.kernel,
            self.release,
            t.brief(),
            suites.join(", "),
            self.seconds
        )
    }
}

impl Counts {
    /// `8 passed, 0 failed, 1 skipped`.
    fn brief(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.ignored
        )
    }

    /// `8 passed`, with failures and skips only when there are some.
    fn short(&self) -> String {
        let mut s = format!("{} passed", self.passed);
        if self.failed > 0 {
            s += &format!(", {} FAILED", self.failed);
        }
        if self.ignored > 0 {
            s += &format!(", {} skipped", self.ignored);
        }
        s
    }
}

pub fn print_failure(r: &Report) {
    for p in &r.problems {
        println!("integration-test: kernel {}: {p}", r.kernel);
    }
    let Some(log) = &r.log else { return };
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let plain: Vec<String> = text.lines().map(super::qemu::plain).collect();
    let lines: Vec<&str> = plain.iter().map(String::as_str).collect();
    if let Some(excerpt) = verifier_excerpt(&lines) {
        println!(
            "integration-test: kernel {}: the kernel refused the programs:",
            r.kernel
        );
        for l in excerpt {
            println!("    {l}");
        }
    }
    println!(
        "integration-test: kernel {}: last lines of {}:",
        r.kernel,
        log.display()
    );
    for l in &lines[lines.len().saturating_sub(40)..] {
        println!("    {l}");
    }
    let qemu = std::fs::read_to_string(log.with_extension("qemu")).unwrap_or_default();
    if !qemu.trim().is_empty() {
        println!("integration-test: QEMU said: {}", qemu.trim());
    }
}

/// Reads the markers and cargo test's `test result:` lines of a console log.
pub fn parse_log(text: &str, suites: &[Suite], r: &mut Report) {
    let (mut started, mut ended) = (false, false);
    let mut exits: Vec<(String, String)> = Vec::new();
    // The binary running, to which `test result:` lines belong.
    let mut current = String::new();
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
        } else if let Some(rest) = after(line, initramfs::TEST_START) {
            current = rest.trim().to_string();
        } else if let Some(rest) = after(line, initramfs::TEST_EXIT) {
            let mut w = rest.split_whitespace();
            if let (Some(t), Some(code)) = (w.next(), w.next()) {
                exits.push((t.to_string(), code.to_string()));
            }
        } else if REJECTED.iter().any(|m| line.contains(m)) {
            r.load_rejected = true;
        } else if let Some(rest) = after(line, "test result:") {
            let c = match r.suites.iter_mut().find(|(n, _)| *n == current) {
                Some((_, c)) => c,
                None => {
                    r.suites.push((current.clone(), Counts::default()));
                    &mut r.suites.last_mut().expect("just pushed").1
                }
            };
            for part in rest.split(';') {
                let w: Vec<&str> = part.split_whitespace().collect();
                let n = w
                    .len()
                    .checked_sub(2)
                    .and_then(|i| w[i].parse::<u64>().ok())
                    .unwrap_or(0);
                match w.last() {
                    Some(&"passed") => c.passed += n,
                    Some(&"failed") => c.failed += n,
                    Some(&"ignored") => c.ignored += n,
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
    for t in suites.iter().map(|s| s.name.as_str()) {
        match exits.iter().find(|(n, _)| n == t) {
            None if started => r.problems.push(format!("{t}: no exit status")),
            Some((_, code)) if code != "0" => r.problems.push(format!("{t} exited with {code}")),
            _ => {}
        }
    }
}

/// The first refusal's message line and the last 40 lines of the verifier log after it
/// (up to the test harness's next line), which is where the verifier says why.
fn verifier_excerpt<'a>(lines: &[&'a str]) -> Option<Vec<&'a str>> {
    let first = lines
        .iter()
        .position(|l| REJECTED.iter().any(|m| l.contains(m)))?;
    let end = lines[first + 1..]
        .iter()
        .position(|l| l.starts_with("note: run with") || l.starts_with("failures:"))
        .map_or(lines.len(), |i| first + 1 + i);
    let from = end.saturating_sub(40).max(first + 1);
    Some(
        std::iter::once(lines[first])
            .chain(lines[from..end].iter().copied())
            .collect(),
    )
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|i| &line[i + marker.len()..])
}

#[cfg(test)]
mod tests {
    use super::{parse_log, verifier_excerpt, Counts, Report, Suite};

    /// The suites of the logs below.
    fn run_suites() -> Vec<Suite> {
        [
            "kernel_verdicts",
            "kernel_events",
            "kernel_quarantine",
            "kernel_reliability",
            "kernel_conntrack",
            "differential",
            "e2e_reliability",
            "e2e_breakglass",
            "e2e_clinic",
        ]
        .map(|name| Suite {
            name: name.into(),
            only: Vec::new(),
        })
        .to_vec()
    }

    #[test]
    fn finds_the_verifier_log() {
        let mut log = vec![
            "running 8 tests",
            "program xdp_ingress: the BPF_PROG_LOAD syscall returned Permission denied (os error 13). Verifier output: 0: (bf) r6 = r1",
        ];
        let body: Vec<String> = (1..=60).map(|i| format!("{i}: insn")).collect();
        log.extend(body.iter().map(String::as_str));
        log.extend([
            "processed 99 insns",
            "",
            "note: run with `RUST_BACKTRACE=1`",
            "failures:",
        ]);
        let ex = verifier_excerpt(&log).unwrap();
        assert_eq!(ex.len(), 41);
        assert!(ex[0].contains("xdp_ingress"));
        assert_eq!(ex[39], "processed 99 insns");
        assert!(verifier_excerpt(&["test result: ok."]).is_none());
    }

    #[test]
    fn reads_a_console_log() {
        let log = "[    1.0] random: crng init done\r\n\
            WARD-VM: module veth ok\r\nWARD-VM: module cls_bpf FAILED\r\n\
            WARD-VM: start 6.1.0-50-cloud-amd64\r\n\
            WARD-VM: test-start kernel_verdicts\r\n\
            test result: ok. 8 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 9.1s\r\n\
            WARD-VM: test-exit kernel_verdicts 0\r\n\
            WARD-VM: test-start kernel_events\r\nWARD-VM: test-exit kernel_events 0\r\n\
            WARD-VM: test-start kernel_quarantine\r\nWARD-VM: test-exit kernel_quarantine 0\r\n\
            WARD-VM: test-start kernel_reliability\r\nWARD-VM: test-exit kernel_reliability 0\r\n\
            WARD-VM: test-start kernel_conntrack\r\nWARD-VM: test-exit kernel_conntrack 0\r\n\
            WARD-VM: test-start differential\r\n\
            thread 'x' panicked at tests/tests/support/mod.rs:29:17:\r\n\
            loading the kernel programs: the BPF_PROG_LOAD syscall failed\r\n\
            test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\r\n\
            WARD-VM: test-exit differential 101\r\n\
            WARD-VM: test-start e2e_reliability\r\n\
            test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\r\n\
            WARD-VM: test-exit e2e_reliability 0\r\n\
            WARD-VM: test-start e2e_breakglass\r\nWARD-VM: test-exit e2e_breakglass 0\r\n\
            WARD-VM: test-start e2e_clinic\r\nWARD-VM: test-exit e2e_clinic 0\r\n\
            WARD-VM: end\r\n";
        let mut r = Report::new("6.1");
        parse_log(log, &run_suites(), &mut r);
        let counts = |passed, failed, ignored| Counts {
            passed,
            failed,
            ignored,
        };
        assert_eq!(r.total(), counts(9, 1, 1));
        let suites: Vec<(&str, Counts)> = r.suites.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(
            suites,
            [
                ("kernel_verdicts", counts(8, 0, 1)),
                ("differential", counts(0, 1, 0)),
                ("e2e_reliability", counts(1, 0, 0))
            ]
        );
        assert_eq!(r.module_failures, ["cls_bpf"]);
        assert!(r.load_rejected);
        assert_eq!(r.problems, ["differential exited with 101"]);
        assert!(!r.ok());

        let mut r = Report::new("6.12");
        parse_log(
            "WARD-VM: start x\nWARD-VM: test-start kernel_verdicts\n",
            &run_suites(),
            &mut r,
        );
        assert_eq!(
            r.problems,
            [
                "/init did not finish",
                "kernel_verdicts: no exit status",
                "kernel_events: no exit status",
                "kernel_quarantine: no exit status",
                "kernel_reliability: no exit status",
                "kernel_conntrack: no exit status",
                "differential: no exit status",
                "e2e_reliability: no exit status",
                "e2e_breakglass: no exit status",
                "e2e_clinic: no exit status"
            ]
        );
    }
}
