//! `ward generate-assets` (hidden): the man pages and shell completions of the Debian
//! package, generated from the command-line definition so they never drift from it.
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap_complete::Shell;

/// What `ward(1)` says about the files the agent uses, as roff `.TP` entries.
const FILES: &[(&str, &str)] = &[
    (
        "/etc/ward/agent.toml",
        "The agent configuration (every key is documented in the shipped file).",
    ),
    (
        "/etc/ward/policy/",
        "The zone policy: a directory of *.toml files (the shipped configuration's `policy`).",
    ),
    (
        crate::config::DEFAULT_PIN_DIR,
        "Pinned maps and links: enforcement stays while they exist, until `ward uninstall`.",
    ),
    (
        crate::config::DEFAULT_CONTROL_SOCKET,
        "The control socket of the running agent (root only).",
    ),
    (
        "/usr/lib/systemd/system/ward.service",
        "The systemd unit: `systemctl enable --now ward`; `systemctl reload ward` runs `ward reload`.",
    ),
];

/// Writes `OUT/man/ward.1` and one page per subcommand (`ward-run.1`…), and
/// `OUT/completions/` `ward.bash`, `_ward` (zsh) and `ward.fish`.
pub fn generate_assets(cmd: clap::Command, out: &Path) -> anyhow::Result<ExitCode> {
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    // One page per subcommand (hidden ones skipped), then ward.1 with FILES and SEE ALSO.
    clap_mangen::generate_to(cmd.clone(), &man)
        .with_context(|| format!("writing man pages into {}", man.display()))?;
    let page = man.join("ward.1");
    let mut text = Vec::new();
    render_main_page(&cmd, &mut text).context("rendering ward.1")?;
    std::fs::write(&page, text).with_context(|| format!("writing {}", page.display()))?;
    let mut visible = without_hidden(&cmd);
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut visible, "ward", &completions).with_context(
            || {
                format!(
                    "writing the {shell} completion into {}",
                    completions.display()
                )
            },
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `ward` without its hidden subcommands, which clap_complete would offer (clap has no
/// way to remove a subcommand, so the top level is rebuilt around the visible ones).
fn without_hidden(cmd: &clap::Command) -> clap::Command {
    clap::Command::new("ward")
        .version(env!("CARGO_PKG_VERSION"))
        .about(cmd.get_about().cloned().unwrap_or_default())
        .subcommand_required(cmd.is_subcommand_required_set())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// `ward.1`: clap_mangen's sections, then FILES and SEE ALSO, then the version.
fn render_main_page(cmd: &clap::Command, w: &mut Vec<u8>) -> std::io::Result<()> {
    let page = clap_mangen::Man::new(cmd.clone());
    page.render_title(w)?;
    page.render_name_section(w)?;
    page.render_synopsis_section(w)?;
    page.render_description_section(w)?;
    page.render_options_section(w)?;
    page.render_subcommands_section(w)?;
    writeln!(w, ".SH FILES")?;
    for (path, what) in FILES {
        writeln!(w, ".TP\n\\fB{}\\fR\n{}", roff(path), roff(what))?;
    }
    writeln!(w, ".SH \"SEE ALSO\"")?;
    let pages: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| format!("\\fBward\\-{}\\fR(1)", roff(s.get_name())))
        .chain(["\\fBsystemd.exec\\fR(5)".to_owned()])
        .collect();
    writeln!(w, "{}", pages.join(", "))?;
    page.render_version_section(w)
}

/// Text escaped for roff: a backslash as `\e`, `-` as a hyphen-minus, and a leading
/// `.` or `'` kept from being read as a request.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    match escaped.starts_with(['.', '\'']) {
        true => format!("\\&{escaped}"),
        false => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::roff;

    #[test]
    fn roff_escapes_hyphens_backslashes_and_leading_dots() {
        assert_eq!(roff("ward-run"), "ward\\-run");
        assert_eq!(roff("a\\b"), "a\\eb");
        assert_eq!(roff(".toml"), "\\&.toml");
        assert_eq!(roff("plain text"), "plain text");
    }
}
