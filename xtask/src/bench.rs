//! `cargo xtask bench [--quick] [--only SECTION]`: setup, a release build of `ward`, then the benchmark
//! (`cargo bench -p ward-tests --bench ward`), which prints a Markdown table and writes
//! `target/bench/results.json` and `results.md`.
use std::os::unix::process::CommandExt as _;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use ward_tests::util::wait_within;

use crate::setup::{setup_for, Need};
use crate::{cargo, cmdline, require_root, step, target_dir};

/// Options of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Options {
    /// The sub-minute smoke run (`cargo xtask test` runs it): small policies, short
    /// load, no 1,000,000-entry conntrack fill.
    #[arg(long)]
    pub quick: bool,
    /// The throughput load: `af-packet` (an AF_PACKET TX ring, the default) or
    /// `live-frames` (XDP live-frames test runs; the TX ring where the kernel refuses them).
    #[arg(long, default_value = "af-packet", value_parser = ["af-packet", "live-frames"])]
    pub generator: String,
    /// Run one section alone, e.g. `agent` (start-up, reloads and memory of `ward run`).
    #[arg(long, value_parser = ["per-packet", "throughput", "agent", "response", "conntrack"])]
    pub only: Option<String>,
}

pub fn bench(o: Options) -> Result<()> {
    require_root("bench")?;
    setup_for(&[Need::Build, Need::Netns, Need::Compare])?;
    run(o.quick, &o.generator, o.only.as_deref())
}

/// Builds what the benchmark starts (`ward run` for the agent measurements) and runs it,
/// killed after a generous bound so a hung harness cannot hang CI. Fails when the
/// harness fails; the targets it prints never fail it.
pub fn run(quick: bool, generator: &str, only: Option<&str>) -> Result<()> {
    step(cargo().args(["build", "--release", "-p", "ward"]))?;
    step(cargo().args(["bench", "-p", "ward-tests", "--bench", "ward", "--no-run"]))?;
    let target = target_dir()?;
    let mut c = cargo();
    c.args(["bench", "-p", "ward-tests", "--bench", "ward", "--"]);
    if quick {
        c.arg("--quick");
    }
    c.args(["--generator", generator]);
    if let Some(section) = only {
        c.args(["--only", section]);
    }
    // Absolute: cargo runs a bench in its package's directory.
    c.arg("--out")
        .arg(target.join("bench"))
        .env("WARD_BIN", target.join("release").join("ward"))
        .process_group(0);
    let limit = Duration::from_secs(if quick { 180 } else { 1800 });
    let line = cmdline(&c);
    println!("==> {line}");
    let mut child = c.spawn().with_context(|| format!("cannot run `{line}`"))?;
    match wait_within(&mut child, limit)? {
        Some(st) if st.success() => Ok(()),
        Some(st) => bail!("`{line}` failed ({st})"),
        None => {
            // The whole group: cargo and the benchmark it started.
            let group = -(child.id() as i32);
            // SAFETY: kill(2) on our own child's process group.
            unsafe { libc::kill(group, libc::SIGTERM) };
            if wait_within(&mut child, Duration::from_secs(5))?.is_none() {
                unsafe { libc::kill(group, libc::SIGKILL) };
                let _ = child.wait();
            }
            bail!("`{line}` did not finish within {limit:?}; killed")
        }
    }
}
