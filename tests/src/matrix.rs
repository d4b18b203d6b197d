//! Reachability matrices: which flows to try, what `ward explain` expects of them,
//! running them in parallel, and the table.
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context as _, Result};

use crate::clinic::{Clinic, Host};
use crate::probe::{services, try_reach, Service};

/// Probes run at once (each costs at most ~1 s when the flow is dropped), unless
/// `WARD_PARALLEL_PROBES` says otherwise.
pub const PARALLEL_PROBES: usize = 32;

/// Settings for machines where starting a process is slow (the QEMU/TCG kernel
/// matrix, `cargo xtask integration-test`); unset, every flow is tried 32 at a time.
/// `WARD_PARALLEL_PROBES=N`: probes run at once.
pub const PARALLEL_ENV: &str = "WARD_PARALLEL_PROBES";
/// `WARD_MATRIX_SAMPLE=N`: [`matrix_checks`] keeps about one flow in N.
pub const SAMPLE_ENV: &str = "WARD_MATRIX_SAMPLE";

/// A positive number from environment variable `var`; panics on anything else.
fn env_count(var: &str) -> Option<usize> {
    let v = std::env::var(var).ok()?;
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Some(n),
        _ => panic!("{var}={v:?}: expected a positive whole number"),
    }
}

/// One flow to try: `service` from host `from` to host `to`'s IPv4 or IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Check {
    /// Index of the client in [`Clinic::hosts`].
    pub from: usize,
    /// Index of the server in [`Clinic::hosts`].
    pub to: usize,
    /// Service.
    pub service: Service,
    /// IPv6 (else IPv4).
    pub v6: bool,
}

impl Check {
    /// Source address.
    pub fn src(&self, c: &Clinic) -> IpAddr {
        c.hosts[self.from].addr(self.v6)
    }
    /// Destination address.
    pub fn dst(&self, c: &Clinic) -> IpAddr {
        c.hosts[self.to].addr(self.v6)
    }
    /// `imaging -> pacs tcp/104 v6`.
    pub fn describe(&self, c: &Clinic) -> String {
        format!(
            "{} -> {} {} {}",
            c.hosts[self.from].name,
            c.hosts[self.to].name,
            self.service,
            if self.v6 { "v6" } else { "v4" }
        )
    }
}

/// Every (client, server, service, family) among the clinic hosts.
pub fn all_checks(c: &Clinic) -> Vec<Check> {
    checks_among(c.hosts.len())
}

fn checks_among(hosts: usize) -> Vec<Check> {
    let mut v = Vec::new();
    for from in 0..hosts {
        for to in 0..hosts {
            if from == to {
                continue;
            }
            for service in services() {
                for v6 in [false, true] {
                    v.push(Check {
                        from,
                        to,
                        service,
                        v6,
                    });
                }
            }
        }
    }
    v
}

/// The flows a whole-clinic check tries: [`all_checks`], or with `WARD_MATRIX_SAMPLE=N`
/// those whose client, server, service and family indices add up to a multiple of N
/// (about one in N; for N up to 8 every pair of hosts, every service and both families
/// still occur).
pub fn matrix_checks(c: &Clinic) -> Vec<Check> {
    let all = all_checks(c);
    match env_count(SAMPLE_ENV) {
        Some(n) => sample(all, n),
        None => all,
    }
}

fn sample(checks: Vec<Check>, n: usize) -> Vec<Check> {
    let services = services();
    checks
        .into_iter()
        .filter(|k| {
            let s = services.iter().position(|s| *s == k.service).unwrap_or(0);
            (k.from + k.to + s + usize::from(k.v6)) % n == 0
        })
        .collect()
}

/// The checks between the named hosts (both families).
pub fn checks_between(c: &Clinic, from: &str, to: &str, service: Service) -> Vec<Check> {
    let idx = |n: &str| {
        c.hosts
            .iter()
            .position(|h: &Host| h.name == n)
            .unwrap_or_else(|| panic!("no host {n}"))
    };
    [false, true]
        .into_iter()
        .map(|v6| Check {
            from: idx(from),
            to: idx(to),
            service,
            v6,
        })
        .collect()
}

/// `ward explain --policy POLICY SRC DST SERVICE`: `true` for allow (exit 0), `false`
/// for deny (exit 1); an audited flow (`audit …`, exit 0) passes, so it is `true`.
pub fn explain(
    ward: &Path,
    policy: &Path,
    src: IpAddr,
    dst: IpAddr,
    service: Service,
) -> Result<bool> {
    let mut c = Command::new(ward);
    c.arg("explain").arg("--policy").arg(policy);
    c.args([src.to_string(), dst.to_string(), service.to_string()]);
    let done = c
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", ward.display()))?;
    let out = String::from_utf8_lossy(&done.stdout);
    match (done.status.code(), out.split_whitespace().next()) {
        (Some(0), Some("allow" | "audit")) => Ok(true),
        (Some(1), Some("deny")) => Ok(false),
        (code, _) => bail!(
            "`ward explain` exited {code:?} saying {:?} ({}), expected `allow …`/`audit …` (0) or `deny …` (1)",
            out.trim(),
            String::from_utf8_lossy(&done.stderr).trim()
        ),
    }
}

/// The reference evaluator's verdict for each check, in order.
pub fn expected(ward: &Path, policy: &Path, c: &Clinic, checks: &[Check]) -> Result<Vec<bool>> {
    par_map(checks, 2, |k| {
        explain(ward, policy, k.src(c), k.dst(c), k.service)
    })
}

/// One check's outcome.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The check.
    pub check: Check,
    /// Expected to pass.
    pub expected: bool,
    /// Passed (the echo or echo reply came back).
    pub observed: bool,
    /// What the probe said.
    pub detail: String,
}

impl Outcome {
    /// Observed as expected.
    pub fn ok(&self) -> bool {
        self.expected == self.observed
    }
}

/// Runs every check (parallel, bounded) and pairs it with its expectation.
pub fn run_checks(c: &Clinic, checks: &[Check], expected: &[bool]) -> Result<Vec<Outcome>> {
    assert_eq!(checks.len(), expected.len());
    let parallel = env_count(PARALLEL_ENV).unwrap_or(PARALLEL_PROBES);
    let probes = par_map(checks, parallel, |k| {
        try_reach(
            &c.hosts[k.from].ns,
            k.service.proto,
            k.dst(c),
            k.service.port,
        )
    })?;
    Ok(checks
        .iter()
        .zip(expected)
        .zip(probes)
        .map(|((&check, &expected), p)| Outcome {
            check,
            expected,
            observed: p.reached,
            detail: p.detail,
        })
        .collect())
}

/// Maps `f` over `items` with `threads` workers; the first error wins.
fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}

fn word(b: bool) -> &'static str {
    if b {
        "allow"
    } else {
        "deny"
    }
}

/// The table `from | to | service | expected | observed | ok` of `rows`.
pub fn table(c: &Clinic, rows: &[&Outcome]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<10} | {:<30} | {:<9} | {:<8} | {:<8} | ok",
        "from", "to", "service", "expected", "observed"
    );
    let _ = writeln!(s, "{}", "-".repeat(88));
    for o in rows {
        let to = &c.hosts[o.check.to];
        let _ = writeln!(
            s,
            "{:<10} | {:<30} | {:<9} | {:<8} | {:<8} | {}",
            c.hosts[o.check.from].name,
            format!("{} {}", to.name, o.check.dst(c)),
            o.check.service.to_string(),
            word(o.expected),
            word(o.observed),
            if o.ok() { "ok" } else { "MISMATCH" }
        );
    }
    s
}

/// Every outcome that differs from its expectation, one line each (empty if none).
pub fn mismatches(c: &Clinic, outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    for o in outcomes.iter().filter(|o| !o.ok()) {
        let _ = writeln!(
            s,
            "  {}: expected {}, observed {} ({})",
            o.check.describe(c),
            word(o.expected),
            word(o.observed),
            o.detail
        );
    }
    s
}

/// Rewrites a policy without the rules from zone `from` to zone `to`: in every array
/// of tables, drops each table whose source key (`from`, `src`, `source`, `sources`)
/// names `from` and whose destination key (`to`, `dst`, `destination`,
/// `destinations`) names `to`, as a string or inside an array of strings. Returns
/// the new text and how many tables were dropped. Callers confirm the effect with
/// [`explain`], so a policy syntax this does not understand fails loudly.
pub fn remove_rules(policy_text: &str, from: &str, to: &str) -> Result<(String, usize)> {
    let mut doc: toml::Value = toml::from_str(policy_text)?;
    let mut removed = 0;
    strip(&mut doc, from, to, &mut removed);
    Ok((toml::to_string(&doc)?, removed))
}

const SOURCE_KEYS: [&str; 4] = ["from", "src", "source", "sources"];
const DESTINATION_KEYS: [&str; 4] = ["to", "dst", "destination", "destinations"];

fn names(v: &toml::Value, zone: &str) -> bool {
    match v {
        toml::Value::String(s) => s == zone,
        toml::Value::Array(a) => a.iter().any(|x| x.as_str() == Some(zone)),
        _ => false,
    }
}

fn strip(v: &mut toml::Value, from: &str, to: &str, removed: &mut usize) {
    match v {
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, x)| strip(x, from, to, removed)),
        toml::Value::Array(a) => {
            let before = a.len();
            a.retain(|item| {
                let Some(t) = item.as_table() else {
                    return true;
                };
                let has = |keys: &[&str], zone: &str| {
                    t.iter()
                        .any(|(k, x)| keys.contains(&k.as_str()) && names(x, zone))
                };
                !(has(&SOURCE_KEYS, from) && has(&DESTINATION_KEYS, to))
            });
            *removed += before - a.len();
            a.iter_mut().for_each(|x| strip(x, from, to, removed));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_keeps_every_pair_service_and_family() {
        let all = checks_among(7);
        assert_eq!(all.len(), 588);
        assert_eq!(sample(all.clone(), 1).len(), 588);
        for n in 2..=8 {
            let kept = sample(all.clone(), n);
            assert!(kept.len() <= 588 / n + 14, "{n}: {}", kept.len());
            for k in &all {
                let pair = kept.iter().any(|c| c.from == k.from && c.to == k.to);
                let kind = kept.iter().any(|c| c.service == k.service && c.v6 == k.v6);
                assert!(pair && kind, "{n}: the pair or service of {k:?} is missing");
            }
        }
        assert_eq!(sample(all.clone(), 6).len(), 98);
        assert_eq!(sample(all, 8).len(), 74);
    }

    #[test]
    fn remove_rules_drops_only_the_named_pair() {
        let text = r#"
[zones]
clinicians = ["198.18.25.0/24"]
ehr = ["198.18.22.0/24"]

[[rule]]
from = "clinicians"
to = "ehr"
allow = ["tcp/443"]

[[rule]]
from = ["imaging"]
to = ["pacs"]
allow = ["tcp/104"]

[[rule]]
from = "ehr"
to = "clinicians"
allow = ["tcp/443"]
"#;
        let (out, n) = remove_rules(text, "clinicians", "ehr").unwrap();
        assert_eq!(n, 1);
        let v: toml::Value = toml::from_str(&out).unwrap();
        let rules = v["rule"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["from"][0].as_str(), Some("imaging"));
        assert_eq!(rules[1]["from"].as_str(), Some("ehr"));
        // The zone table itself is not an array of tables: untouched.
        assert!(v["zones"]["clinicians"].is_array());
    }
}
