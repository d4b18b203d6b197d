//! Reading `ward.service` as systemd does for the settings the checks compare with
//! what `ward run` does: capabilities, system calls, address families, paths.
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

/// A unit file's text.
pub struct Unit {
    text: String,
}

impl Unit {
    /// Reads a unit file.
    pub fn load(path: &Path) -> Result<Unit> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Unit { text })
    }

    /// The value of every `key=` line, in order (comments skipped).
    pub fn lines(&self, key: &str) -> Vec<&str> {
        self.text
            .lines()
            .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .collect()
    }

    /// The words of every `key=` line, in order.
    pub fn words(&self, key: &str) -> Vec<&str> {
        self.lines(key)
            .into_iter()
            .flat_map(str::split_whitespace)
            .collect()
    }

    /// The one value of `key`; an error if it is absent or set twice.
    pub fn value(&self, key: &str) -> Result<&str> {
        match self.lines(key).as_slice() {
            [one] => Ok(one),
            other => bail!("ward.service: expected one {key}=, found {other:?}"),
        }
    }

    /// The system calls `SystemCallFilter=` allows: an allow list, then `~` lines
    /// taking calls away; groups expanded by `systemd-analyze syscall-filter`.
    pub fn allowed_syscalls(&self) -> Result<BTreeSet<String>> {
        let lines = self.lines("SystemCallFilter");
        if lines.first().is_none_or(|l| l.starts_with('~')) {
            bail!("ward.service: SystemCallFilter= should start with an allow list: {lines:?}");
        }
        let mut allowed = BTreeSet::new();
        for line in lines {
            let (deny, items) = match line.strip_prefix('~') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            for item in items.split_whitespace() {
                for call in expand(item)? {
                    match deny {
                        true => allowed.remove(&call),
                        false => allowed.insert(call),
                    };
                }
            }
        }
        Ok(allowed)
    }
}

/// A system call, or the calls of a `@group` (nested groups included).
fn expand(item: &str) -> Result<BTreeSet<String>> {
    if !item.starts_with('@') {
        return Ok(BTreeSet::from([item.to_owned()]));
    }
    let listing =
        ward_tests::util::run(Command::new("systemd-analyze").args(["syscall-filter", item]))?;
    let mut calls = BTreeSet::new();
    for line in listing.lines().skip(1).map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        calls.extend(expand(line)?);
    }
    if calls.is_empty() {
        bail!("`systemd-analyze syscall-filter {item}` listed no system call");
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::Unit;

    #[test]
    fn reads_values_words_and_single_values() {
        let unit = Unit {
            text: "[Service]\n# CapabilityBoundingSet=CAP_SYS_ADMIN\nCapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN\n\
                   SystemCallFilter=@system-service bpf\nSystemCallFilter=~@resources\nUMask=0077\n"
                .into(),
        };
        assert_eq!(
            unit.words("CapabilityBoundingSet"),
            ["CAP_BPF", "CAP_NET_ADMIN"]
        );
        assert_eq!(
            unit.lines("SystemCallFilter"),
            ["@system-service bpf", "~@resources"]
        );
        assert_eq!(unit.value("UMask").unwrap(), "0077");
        assert!(unit.value("User").is_err());
    }
}
