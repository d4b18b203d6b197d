//! `cargo bench -p ward-tests --bench ward -- [--quick] [--only SECTION] [--out DIR] [--generator G] [--rerender]` (run by
//! `cargo xtask bench`): Ward's per-packet cost against an empty XDP program, its
//! throughput against nftables and iptables through a veth pair, and its policy
//! operations. Prints a Markdown table and writes `DIR/results.json` and `DIR/results.md`.
//!
//! Needs root. Programs are loaded into a pin directory of its own and attached only
//! inside network namespaces this process creates (addresses from 198.18.0.0/15 and
//! 2001:db8::/32), all removed when it ends. Targets are printed next to the numbers;
//! they never fail the run, a harness error does.
#[path = "../tests/support/mod.rs"]
mod support;

#[path = "ward/agent_ops.rs"]
mod agent_ops;
#[path = "ward/conntrack.rs"]
mod conntrack;
#[path = "ward/generated.rs"]
mod generated;
#[path = "ward/per_packet.rs"]
mod per_packet;
#[path = "ward/report.rs"]
mod report;
#[path = "ward/response.rs"]
mod response;
#[path = "ward/sys.rs"]
mod sys;
#[path = "ward/targets.rs"]
mod targets;
#[path = "ward/throughput.rs"]
mod throughput;
#[path = "ward/txring.rs"]
mod txring;
#[path = "ward/veth.rs"]
mod veth;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

/// What one run measures, and how hard.
pub struct Opts {
    /// `--quick`: the sub-minute smoke run.
    pub quick: bool,
    /// Where results.json and results.md go.
    pub out: PathBuf,
    /// Repetitions whose median is reported (per-packet), in each round.
    pub reps: usize,
    /// Rounds of the per-packet section, each over every policy in turn; each cell is
    /// the median of the rounds'.
    pub rounds: usize,
    /// `repeat` of one `BPF_PROG_TEST_RUN`.
    pub repeat: u32,
    /// Distinct first packets measured for "new allowed flow" (per-packet: split
    /// between the rounds).
    pub new_flows: usize,
    /// (CIDRs per family, rules) of the per-packet policies.
    pub policies: Vec<(usize, usize)>,
    /// Allow-list sizes of the throughput comparison.
    pub tp_sizes: Vec<usize>,
    /// Seconds of load per throughput repetition.
    pub tp_secs: f64,
    /// Throughput repetitions.
    pub tp_reps: usize,
    /// CPU the load generator is pinned to.
    pub cpu: usize,
    /// How the throughput load is made (`--generator af-packet|live-frames`).
    pub generator: veth::Generator,
    /// (CIDRs, rules) of the agent measurements.
    pub agent_policy: (usize, usize),
    /// Reloads measured per trigger (file change, SIGHUP).
    pub reload_reps: usize,
    /// Fill the conntrack table with 1,000,000 entries.
    pub conntrack: bool,
    /// Capacity of the tables compared empty and full.
    pub ct_capacity: u32,
    /// `--only SECTION`: run that section alone (`per-packet`, `throughput`, `agent`,
    /// `response`, `conntrack`).
    pub only: Option<String>,
    /// `--rerender`: measure nothing; render `DIR/results.json` of an earlier run again
    /// (after a change to the report or the targets).
    pub rerender: bool,
}

/// The sections `--only` can name.
const SECTIONS: [&str; 5] = ["per-packet", "throughput", "agent", "response", "conntrack"];

impl Opts {
    /// Whether `section` runs in this run.
    fn runs(&self, section: &str) -> bool {
        self.only.as_deref().is_none_or(|s| s == section)
    }
}

impl Opts {
    fn parse() -> Result<Opts> {
        // cargo runs a bench in its package's directory: default to the workspace's target/.
        let default_out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench"));
        let (mut quick, mut out, mut only) = (false, default_out, None);
        let mut generator = veth::Generator::TxRing;
        let mut rerender = false;
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--rerender" => rerender = true,
                "--out" => out = args.next().context("--out needs a directory")?.into(),
                "--only" => {
                    let s = args.next().context("--only needs a section")?;
                    if !SECTIONS.contains(&s.as_str()) {
                        bail!("--only {s:?}: the sections are {}", SECTIONS.join(", "));
                    }
                    only = Some(s);
                }
                "--generator" => {
                    generator = veth::Generator::parse(
                        &args.next().context("--generator needs af-packet or live-frames")?,
                    )?
                }
                "--bench" => {} // added by `cargo bench`
                other => bail!("unknown argument {other:?} (usage: ward [--quick] [--only SECTION] [--out DIR] [--generator af-packet|live-frames] [--rerender])"),
            }
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(if quick {
            Opts {
                quick,
                out,
                reps: 3,
                rounds: 1,
                repeat: 50_000,
                new_flows: 200,
                policies: vec![(10, 10), (1_000, 1_000)],
                tp_sizes: vec![10],
                tp_secs: 0.5,
                tp_reps: 1,
                cpu: cpus - 1,
                generator,
                agent_policy: (1_000, 1_000),
                reload_reps: 1,
                conntrack: false,
                ct_capacity: 1 << 14,
                only,
                rerender,
            }
        } else {
            Opts {
                quick,
                out,
                reps: 5,
                rounds: 3,
                repeat: 1_000_000,
                new_flows: 2_000,
                policies: vec![
                    (10, 10),
                    (1_000, 1_000),
                    (100_000, 10),
                    (10, 10_000),
                    (100_000, 10_000),
                ],
                tp_sizes: vec![10, 1_000, 10_000],
                tp_secs: 1.0,
                tp_reps: 5,
                cpu: cpus - 1,
                generator,
                agent_policy: (100_000, 10_000),
                reload_reps: 3,
                conntrack: true,
                ct_capacity: ward_common::CONNTRACK_CAPACITY,
                only,
                rerender,
            }
        })
    }
}

/// Runs one section (unless `--only` names another); an error is recorded (and fails
/// the run) without losing the others.
fn section(
    o: &Opts,
    (key, name): (&str, &str),
    errors: &mut Vec<String>,
    f: impl FnOnce() -> Result<Value>,
) -> Value {
    if !o.runs(key) {
        return Value::Null;
    }
    let t = Instant::now();
    eprintln!("bench: {name}…");
    match f() {
        Ok(v) => {
            eprintln!("bench: {name} done in {:.1} s", t.elapsed().as_secs_f64());
            v
        }
        Err(e) => {
            let msg = format!("{name}: {e:#}");
            eprintln!("bench: FAILED {msg}");
            errors.push(msg);
            Value::Null
        }
    }
}

/// What the benchmark's dataplane is configured with (`agent.toml` syntax).
const BENCH_SETTINGS: &str =
    "log_level = \"off\"\n[limits]\nnew_flows_per_source = 1000000000\nnew_flow_burst = 4294967295\n";

fn bench(o: &Opts) -> Result<Value> {
    ward_tests::require_root("the benchmark");
    ward_tests::netns::clean_leftovers(&ward_tests::netns::prefix());
    ward_tests::agent::clean_stale_pin_dirs();
    let started = Instant::now();
    let machine = sys::machine();
    let mut t = support::TestDataplane::new("bench");
    // The agent's settings, events off as before; the flow budget's path runs on every
    // new flow but never runs out (the "new flow" rows open thousands from one source).
    t.configure(BENCH_SETTINGS);
    // This host's own addresses, which the agent writes at start (the throughput
    // section's receiver, where Ward runs): the anti-spoofing check's table and the
    // filter in front of it.
    let own = [
        std::net::IpAddr::V4(generated::RX_ADDR),
        "2001:db8:ffff::2".parse()?,
    ];
    t.dp.set_host_addrs(&own)
        .context("writing the host's own addresses")?;
    per_packet::load_floor(&mut t.dp)?;
    let mut errors = Vec::new();
    let mut ops = Vec::new();
    let per_packet = section(o, ("per-packet", "per-packet cost"), &mut errors, || {
        let mut rounds = Vec::new();
        for round in 0..o.rounds {
            let mut rows = Vec::new();
            for &(cidrs, rules) in &o.policies {
                let (r, op) = per_packet::policy(&mut t.dp, cidrs, rules, o)?;
                rows.extend(r);
                if round == 0 {
                    ops.push(op);
                }
            }
            rounds.push(rows);
        }
        Ok(Value::Array(per_packet::combine(&rounds)))
    });
    let throughput = section(o, ("throughput", "throughput"), &mut errors, || {
        Ok(Value::Array(throughput::run_all(&mut t.dp, o)?))
    });
    let agent = section(o, ("agent", "agent"), &mut errors, || {
        // `ward_bin` panics with a hint when the binary is missing: an error here.
        let ward = std::panic::catch_unwind(ward_tests::ward_bin).map_err(|_| {
            anyhow::anyhow!(
                "no `ward` binary (set WARD_BIN or build it: cargo build --release -p ward)"
            )
        })?;
        agent_ops::run(&ward, o.agent_policy.0, o.agent_policy.1, o)
    });
    let response = section(o, ("response", "quarantine latency"), &mut errors, || {
        let ward = std::panic::catch_unwind(ward_tests::ward_bin).map_err(|_| {
            anyhow::anyhow!(
                "no `ward` binary (set WARD_BIN or build it: cargo build --release -p ward)"
            )
        })?;
        response::run(&ward, if o.quick { 1 } else { 3 })
    });
    let conntrack = if o.conntrack {
        section(
            o,
            ("conntrack", "conntrack at 1,000,000 entries"),
            &mut errors,
            || conntrack::fill_1m(&mut t.dp, o),
        )
    } else {
        Value::Null
    };
    drop(t);
    let at_capacity = section(
        o,
        ("conntrack", "conntrack at capacity"),
        &mut errors,
        || conntrack::at_capacity(o),
    );
    Ok(json!({
        "mode": if o.quick { "quick" } else { "full" },
        "machine": machine,
        "settings": {
            "reps": o.reps, "rounds": o.rounds, "repeat": o.repeat, "new_flows": o.new_flows,
            "throughput_secs": o.tp_secs, "throughput_reps": o.tp_reps, "generator_cpu": o.cpu,
            "reload_reps": o.reload_reps, "conntrack_capacity": o.ct_capacity,
        },
        "per_packet": per_packet, "policy_ops": ops, "throughput": throughput,
        "agent": agent, "response": response, "conntrack": conntrack,
        "conntrack_at_capacity": at_capacity,
        "duration_s": started.elapsed().as_secs_f64(),
        "errors": errors,
    }))
}

fn main() -> ExitCode {
    let o = match Opts::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let measured = if o.rerender {
        std::fs::read_to_string(o.out.join("results.json"))
            .context("--rerender: reading results.json")
            .and_then(|t| Ok(serde_json::from_str::<Value>(&t)?))
    } else {
        bench(&o)
    };
    let result = measured.and_then(|mut v| {
        let md = report::markdown(&mut v);
        std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
        std::fs::write(
            o.out.join("results.json"),
            serde_json::to_string_pretty(&v)?,
        )?;
        std::fs::write(o.out.join("results.md"), &md)?;
        println!("{md}");
        eprintln!(
            "bench: wrote {} and results.md",
            o.out.join("results.json").display()
        );
        let errors = v["errors"].as_array().map_or(0, Vec::len);
        if errors > 0 {
            bail!("{errors} section(s) failed: {}", v["errors"]);
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
