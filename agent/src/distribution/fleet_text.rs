//! What the fleet lists (`quarantine.toml`, `breakglass.toml`) share: the file read as
//! TOML with its syntax errors placed, the `reason` and `author` of an entry, expiry
//! times, and byte offsets as line and column.
use std::{ops::Range, path::Path, time::SystemTime};

use toml::Spanned;

use crate::policy::{Diagnostic, Origin};

/// `text` (the file `name`) read as `T`, or the error placed in it.
pub(super) fn read_toml<T: serde::de::DeserializeOwned>(
    name: &str,
    text: &str,
) -> Result<T, Vec<Diagnostic>> {
    toml::from_str(text).map_err(|e| {
        let at = |span: Range<usize>| origin(name, text, span.start);
        let origin = e.span().map_or_else(|| Origin::file(Path::new(name)), at);
        // One line, as every diagnostic.
        let message = e.message().trim_end().replace('\n', ": ");
        vec![Diagnostic::error(origin, message)]
    })
}

/// The `reason` and `author` of an entry of `what` (`quarantine`, `grant`), trimmed;
/// each error goes to `error`: an empty reason (`why`: what it should say), one over
/// `limit` bytes (what the kernel table keeps), an empty author.
pub(super) fn reason_and_author<'a>(
    reason: &'a Spanned<String>,
    author: &'a Spanned<String>,
    (what, why, limit): (&str, &str, usize),
    error: &mut impl FnMut(Range<usize>, String),
) -> (&'a str, &'a str) {
    let text = reason.get_ref().trim();
    if text.is_empty() {
        error(reason.span(), format!("reason: empty: {why}"));
    } else if text.len() > limit {
        error(
            reason.span(),
            format!(
                "reason: {} bytes, more than the {limit} the kernel table keeps",
                text.len()
            ),
        );
    }
    let who = author.get_ref().trim();
    if who.is_empty() {
        error(
            author.span(),
            format!("author: empty: name who asked for the {what}"),
        );
    }
    (text, who)
}

/// An RFC 3339 time in UTC, written as a TOML date-time or a string.
pub(super) fn expiry(value: &toml::Value) -> Result<SystemTime, String> {
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        other => other.to_string(),
    };
    humantime::parse_rfc3339(&text).map_err(|_| {
        format!("expires: `{text}` is not an RFC 3339 time in UTC (such as 2026-12-08T06:00:00Z)")
    })
}

/// Line and column (1-based, in characters) of byte `offset` of `text`.
pub(super) fn origin(name: &str, text: &str, offset: usize) -> Origin {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Origin {
        file: name.into(),
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}
