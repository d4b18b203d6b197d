//! `cargo xtask demo`: Ward as the gateway of the simulated clinic, every flow
//! checked in the kernel against the reference evaluator (`ward explain`).
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use ward_tests::clinic::FORBIDDEN;
use ward_tests::matrix::{self, all_checks, Outcome};
use ward_tests::{use_probe_bin, Clinic, Role, WardAgent};

use crate::setup::{setup_for, Need};
use crate::{cargo, require_root, root, step, target_dir};

/// Options of `cargo xtask demo`.
#[derive(clap::Args)]
pub struct Options {
    /// Policy to enforce.
    #[arg(long, default_value = "policies/clinic.toml")]
    policy: PathBuf,
    /// Print every checked flow, not only the allowed, highlighted and failed ones.
    #[arg(long)]
    full: bool,
    /// Use this `ward` binary instead of building one (with --probe-bin).
    #[arg(long, requires = "probe_bin")]
    ward_bin: Option<PathBuf>,
    /// Use this `ward-probe` binary instead of building one (with --ward-bin).
    #[arg(long, requires = "ward_bin")]
    probe_bin: Option<PathBuf>,
}

pub fn demo(o: Options) -> Result<()> {
    require_root("demo")?;
    setup_for(&[Need::Build, Need::Netns])?;
    let (ward, probe) = match (o.ward_bin, o.probe_bin) {
        (Some(w), Some(p)) => (w, p),
        _ => {
            step(cargo().args([
                "build",
                "--release",
                "-p",
                "ward",
                "-p",
                "ward-tests",
                "--bins",
            ]))?;
            let dir = target_dir()?.join("release");
            (dir.join("ward"), dir.join("ward-probe"))
        }
    };
    let policy = root().join(&o.policy);
    let policy = policy
        .canonicalize()
        .with_context(|| format!("policy {}", policy.display()))?;
    use_probe_bin(probe);
    step(std::process::Command::new(&ward).arg("check").arg(&policy))?;

    println!(
        "demo: building the clinic topology (gateway + {} hosts)",
        ward_tests::clinic::HOSTS.len()
    );
    let clinic = Clinic::create()?;
    for h in &clinic.hosts {
        println!(
            "  {:<10} zone {:<11} {:<15} {:<18} via gateway {}",
            h.name, h.zone, h.v4, h.v6, h.gw_if
        );
    }
    let checks = all_checks(&clinic);

    let open = matrix::run_checks(&clinic, &checks, &vec![true; checks.len()])?;
    let closed: Vec<&Outcome> = open.iter().filter(|o| !o.ok()).collect();
    if !closed.is_empty() {
        bail!(
            "the topology is not fully open before Ward starts:\n{}",
            matrix::mismatches(&clinic, &open)
        );
    }
    println!(
        "demo: without Ward, all {} flows work (TCP/UDP echo, ping; IPv4 and IPv6)",
        checks.len()
    );

    let expected = matrix::expected(&ward, &policy, &clinic, &checks)?;
    let mut agent = WardAgent::start_with(
        &ward,
        &clinic.gw,
        Role::Gateway,
        &clinic.gateway_interfaces(),
        &policy,
    )?;
    println!("demo: agent config {}:", agent.config_path().display());
    print!(
        "{}",
        std::fs::read_to_string(agent.config_path()).unwrap_or_default()
    );
    let t0 = Instant::now();
    agent.wait_for("enforcing generation=1", Duration::from_secs(60))?;
    println!(
        "demo: ward is enforcing after {} ms",
        t0.elapsed().as_millis()
    );

    let outcomes = matrix::run_checks(&clinic, &checks, &expected)?;
    let highlighted = |o: &Outcome| {
        FORBIDDEN.iter().any(|(f, t, s)| {
            clinic.hosts[o.check.from].name == *f
                && clinic.hosts[o.check.to].name == *t
                && o.check.service == *s
        })
    };
    let full = o.full;
    let rows: Vec<&Outcome> = outcomes
        .iter()
        .filter(|x| full || x.expected || highlighted(x) || !x.ok())
        .collect();
    println!();
    print!("{}", matrix::table(&clinic, &rows));
    let allowed = expected.iter().filter(|e| **e).count();
    let bad = outcomes.iter().filter(|o| !o.ok()).count();
    println!(
        "\ndemo: {} flows checked ({allowed} allowed by the policy, {} denied), {} shown, {bad} mismatches{}",
        checks.len(),
        checks.len() - allowed,
        rows.len(),
        if o.full { "" } else { " (--full shows every flow)" }
    );

    let mismatches = matrix::mismatches(&clinic, &outcomes);

    let st = agent.stop()?;
    agent.uninstall()?;
    drop(clinic);
    println!("demo: ward stopped and uninstalled, topology removed");
    if !st.success() {
        bail!(
            "ward exited with {st} on SIGTERM; its log:\n{}",
            agent.log()
        );
    }
    if bad > 0 {
        bail!(
            "{bad} flows differ from `ward explain`:\n{mismatches}ward's log:\n{}",
            agent.log()
        );
    }
    Ok(())
}
