//! `ward policy services`: the catalogue of services rules may name.
use std::io::Write;
use std::process::ExitCode;

use crate::policy::catalogue::CATALOGUE;

/// Prints the service catalogue to `out`: a table, or a JSON array with `json`.
pub fn policy_services(json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    if json {
        serde_json::to_writer_pretty(&mut *out, CATALOGUE)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let ports = |list: &[u16]| match list {
        [] => "-".to_owned(),
        _ => list
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    };
    let mut table = super::table::plain(
        &["SERVICE", "TCP", "UDP", "DESCRIPTION", "IANA REGISTRATION"],
        &[],
    );
    for s in CATALOGUE {
        table.add_row(vec![
            s.name.to_owned(),
            ports(s.tcp),
            ports(s.udp),
            s.description.to_owned(),
            s.iana.to_owned(),
        ]);
    }
    write!(out, "{}", super::table::render(&table))?;
    Ok(ExitCode::SUCCESS)
}
