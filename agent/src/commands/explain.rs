//! `ward explain`: which rule, if any, allows a flow.
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};

use super::check::print_diagnostics;
use crate::policy::{self, Service};

/// Explains the verdict of `policy` (a file or directory) on a new flow from `src` to
/// `dst` for `service` (`tcp/443`, `udp/53`, `icmp`). Prints one line starting with the
/// verdict, e.g. `allow imaging -> pacs tcp/104 by rule #0 at policies/clinic.toml:38`.
/// Returns exit code 0 for both verdicts; an error means bad input (the caller prints it
/// and exits 1), and the policy's diagnostics are already on stderr.
pub fn explain(policy: &Path, src: &str, dst: &str, service: &str) -> anyhow::Result<ExitCode> {
    let src: IpAddr = src
        .trim()
        .parse()
        .with_context(|| format!("bad source address `{src}`"))?;
    let dst: IpAddr = dst
        .trim()
        .parse()
        .with_context(|| format!("bad destination address `{dst}`"))?;
    let service: Service = service.parse()?;
    let loaded = policy::load(&[policy.to_path_buf()]).map_err(|diags| {
        print_diagnostics(&diags);
        anyhow!("policy {} is invalid", policy.display())
    })?;
    let explanation = loaded.policy.explain(src, dst, &service)?;
    println!("{explanation}");
    Ok(ExitCode::SUCCESS)
}
