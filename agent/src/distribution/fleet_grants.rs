//! The fleet break-glass list: `breakglass.toml`, a reserved file of a signed bundle
//! (never read as policy), parsed and checked against the bundle's own policy with
//! diagnostics naming its file, line and field. `docs/bundles.md` specifies the format.
use std::{ops::Range, time::SystemTime};

use serde::Deserialize;
use toml::Spanned;

use super::fleet_text::{expiry, origin, read_toml, reason_and_author};
use crate::{
    breakglass::service_ports,
    policy::{did_you_mean, Diagnostic, Policy, WORLD},
};
use ward_common::{BREAKGLASS_GRANTS, BREAKGLASS_REASON_LEN};

/// One grant of the fleet break-glass list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetGrant {
    /// Initiator zone.
    pub from: String,
    /// Responder zone.
    pub to: String,
    /// The service, as `ward breakglass --service` takes it.
    pub service: String,
    /// Why.
    pub reason: String,
    /// Who asked for it.
    pub author: String,
    /// When it ends by itself.
    pub expires: SystemTime,
    /// The agents it is for (`agent_name`, or the host name); every agent when `None`.
    pub hosts: Option<Vec<String>>,
}

impl FleetGrant {
    /// Whether the agent called by any of `names` puts it in force.
    pub fn is_for(&self, names: &[String]) -> bool {
        self.hosts
            .as_ref()
            .is_none_or(|hosts| hosts.iter().any(|h| names.contains(h)))
    }

    /// `imaging -> billing https`.
    pub fn summary(&self) -> String {
        format!("{} -> {} {}", self.from, self.to, self.service)
    }
}

/// `breakglass.toml` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    #[serde(default)]
    breakglass: Vec<Spanned<RawGrant>>,
}

/// One `[[breakglass]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    from: Spanned<String>,
    to: Spanned<String>,
    service: Spanned<String>,
    reason: Spanned<String>,
    author: Spanned<String>,
    expires: Spanned<toml::Value>,
    hosts: Option<Spanned<Vec<String>>>,
}

/// Parses and checks the text of `name` against `policy`, the policy of the same
/// bundle; grants already expired at `now`, or that the policy allows already, are left
/// out with a warning. Every error is returned.
pub fn parse_grants(
    name: &str,
    text: &str,
    policy: &Policy,
    now: SystemTime,
) -> Result<(Vec<FleetGrant>, Vec<Diagnostic>), Vec<Diagnostic>> {
    let at = |span: Range<usize>| origin(name, text, span.start);
    let raw: RawList = read_toml(name, text)?;
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    // Every grant checked, with its line and whether it is put in force: each
    // (from, to, service) once.
    let mut listed: Vec<(FleetGrant, usize, bool)> = Vec::new();
    for table in raw.breakglass {
        let span = table.span();
        let raw = table.into_inner();
        let mut error = |span: Range<usize>, message: String| {
            errors.push(Diagnostic::error(at(span), message));
        };
        let mut zone = |field: &str, value: &Spanned<String>| {
            let name = value.get_ref().trim();
            if policy.zone_id(name).is_none() {
                let names = policy.zones.iter().map(|z| z.name.as_str());
                let hint = did_you_mean(name, names.chain([WORLD]));
                error(
                    value.span(),
                    format!("{field}: no zone `{name}` in the bundle's policy{hint}"),
                );
            }
            name.to_owned()
        };
        let (from, to) = (zone("from", &raw.from), zone("to", &raw.to));
        let service = raw.service.get_ref().trim();
        let ports = service_ports(service)
            .map_err(|e| error(raw.service.span(), format!("service: {e}")))
            .ok();
        let (reason, author) = reason_and_author(
            &raw.reason,
            &raw.author,
            (
                "grant",
                "say why the grant is needed",
                BREAKGLASS_REASON_LEN,
            ),
            &mut error,
        );
        let hosts = raw.hosts.map(|h| {
            if h.get_ref().is_empty() || h.get_ref().iter().any(|n| n.trim().is_empty()) {
                error(
                    h.span(),
                    "hosts: an agent name may not be empty, nor the list (leave `hosts` out for every agent)".into(),
                );
            }
            h.into_inner().iter().map(|n| n.trim().to_owned()).collect()
        });
        let expires = expiry(raw.expires.get_ref())
            .map_err(|m| error(raw.expires.span(), m))
            .ok();
        let (Some(ports), Some(expires)) = (ports, expires) else {
            continue;
        };
        let grant = FleetGrant {
            from,
            to,
            service: service.to_owned(),
            reason: reason.to_owned(),
            author: author.to_owned(),
            expires,
            hosts,
        };
        let line = at(span.clone()).line;
        let same =
            |g: &FleetGrant| g.from == grant.from && g.to == grant.to && g.service == grant.service;
        if let Some((_, first, _)) = listed.iter().find(|(g, ..)| same(g)) {
            let what = grant.summary();
            error(
                span,
                format!("{what} is listed twice (first at line {first})"),
            );
            continue;
        }
        if listed.len() == BREAKGLASS_GRANTS as usize {
            error(
                span,
                format!(
                    "more than {BREAKGLASS_GRANTS} grants: the kernel grants table holds {BREAKGLASS_GRANTS} (local grants included)"
                ),
            );
            continue;
        }
        let allowed = match (policy.zone_id(&grant.from), policy.zone_id(&grant.to)) {
            (Some(src), Some(dst)) => (ports.iter())
                .all(|&(proto, port)| policy.first_rule(src, dst, proto, port).is_some()),
            _ => false,
        };
        if allowed {
            warnings.push(Diagnostic::warning(
                at(span.clone()),
                format!(
                    "the policy already allows {}: the grant is left out",
                    grant.summary()
                ),
            ));
        } else if expires <= now {
            warnings.push(Diagnostic::warning(
                at(raw.expires.span()),
                format!(
                    "expires: {} has passed: the grant is left out",
                    humantime::format_rfc3339_seconds(expires)
                ),
            ));
        }
        let kept = !allowed && expires > now;
        listed.push((grant, line, kept));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let kept = listed.into_iter().filter(|(.., kept)| *kept);
    Ok((kept.map(|(g, ..)| g).collect(), warnings))
}
