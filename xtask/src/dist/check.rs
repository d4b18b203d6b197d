//! `cargo xtask dist --check`: the package installed into a scratch root
//! (`dpkg-deb -x`), every file where it belongs with its mode, the installed `ward`
//! runs, `systemd-analyze verify` passes without a warning, the man pages render
//! without a warning, the completions complete, the Prometheus alerting rules define
//! every alert ([`crate::rules::check`]); then `ward run` under the unit's
//! restrictions ([`super::sandbox`]). Every check runs; any failure fails the whole.
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context as _, Result};
use ward_tests::util::run;

use crate::{root, target_dir};

/// Files every package holds (path in the root, mode); man pages are added per
/// subcommand.
const FILES: &[(&str, u32)] = &[
    ("usr/bin/ward", 0o755),
    ("etc/ward/agent.toml", 0o644),
    (super::logrotate::PATH, 0o644),
    ("usr/lib/systemd/system/ward.service", 0o644),
    ("usr/share/bash-completion/completions/ward", 0o644),
    ("usr/share/zsh/vendor-completions/_ward", 0o644),
    ("usr/share/fish/vendor_completions.d/ward.fish", 0o644),
    ("usr/share/doc/ward/copyright", 0o644),
    ("usr/share/doc/ward/README.md", 0o644),
    ("usr/share/doc/ward/examples/clinic.toml", 0o644),
    (crate::rules::INSTALLED, 0o644),
];

/// What the checks share: the scratch root and what the installed `ward` says.
pub struct Installed {
    /// The scratch root the package was unpacked into.
    pub root: PathBuf,
    /// Scratch space next to it.
    pub work: PathBuf,
    /// Subcommands `ward --help` lists (without `help`).
    pub subcommands: Vec<String>,
}

impl Installed {
    /// `path` (relative to `/`) inside the scratch root.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

/// Unpacks `deb` into a fresh scratch root and runs every check.
pub fn check(deb: &Path) -> Result<()> {
    let work = target_dir()?.join("dist-check");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    let root = work.join("root");
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root))?;
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(deb)
        .arg(work.join("control")))?;
    let help = run(Command::new(root.join("usr/bin/ward")).arg("--help"))?;
    let subcommands = subcommands(&help);
    ensure!(
        subcommands.len() >= 10,
        "`ward --help` lists {subcommands:?}"
    );
    ensure!(
        !help.contains("generate-assets"),
        "`ward --help` shows the hidden generate-assets"
    );
    let installed = Installed {
        root,
        work,
        subcommands,
    };

    type Check = fn(&Installed, &Path) -> Result<()>;
    let checks: [(&str, Check); 9] = [
        ("files, modes and owners", files),
        ("shipped files are the sources", same_as_sources),
        ("ward --version", version),
        ("conffiles and maintainer scripts", control),
        ("Prometheus alerting rules", |i, _| {
            crate::rules::check(&std::fs::read_to_string(i.path(crate::rules::INSTALLED))?)
        }),
        ("systemd-analyze verify", verify),
        ("man pages", man_pages),
        ("completions", completions),
        ("ward run under the unit's restrictions", |i, _| {
            super::sandbox::check(i)
        }),
    ];
    let mut failed = Vec::new();
    for (name, check) in checks {
        match check(&installed, deb) {
            Ok(()) => println!("dist check: {name}: ok"),
            Err(e) => {
                println!("dist check: {name}: FAILED: {e:#}");
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        bail!("the package failed: {}", failed.join(", "));
    }
    Ok(())
}

/// The subcommands in `ward --help`'s `Commands:` list, `help` left out.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

fn man_page(subcommand: Option<&str>) -> String {
    match subcommand {
        Some(s) => format!("usr/share/man/man1/ward-{s}.1.gz"),
        None => "usr/share/man/man1/ward.1.gz".into(),
    }
}

fn files(i: &Installed, deb: &Path) -> Result<()> {
    let pages: Vec<String> = std::iter::once(man_page(None))
        .chain(i.subcommands.iter().map(|s| man_page(Some(s))))
        .collect();
    let expected = FILES
        .iter()
        .map(|(p, m)| (p.to_string(), *m))
        .chain(pages.into_iter().map(|p| (p, 0o644)));
    for (path, mode) in expected {
        let meta = std::fs::metadata(i.path(&path))
            .with_context(|| format!("/{path} is not in the package"))?;
        let found = meta.permissions().mode() & 0o7777;
        ensure!(found == mode, "/{path} has mode {found:o}, not {mode:o}");
    }
    // Every entry belongs to root.
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(deb))?;
    for line in listing.lines() {
        let owner = line.split_whitespace().nth(1).unwrap_or("");
        ensure!(
            owner == "0/0" || owner == "root/root",
            "not owned by root: {line}"
        );
    }
    Ok(())
}

fn same_as_sources(i: &Installed, _: &Path) -> Result<()> {
    for (installed, source) in [
        ("etc/ward/agent.toml", "agent/debian/agent.toml"),
        (super::logrotate::PATH, "agent/debian/logrotate"),
        (crate::rules::INSTALLED, crate::rules::SOURCE),
        (
            "usr/lib/systemd/system/ward.service",
            "agent/debian/ward.service",
        ),
    ] {
        let a = std::fs::read(i.path(installed))?;
        let b = std::fs::read(root().join(source))?;
        ensure!(a == b, "/{installed} differs from {source}");
    }
    Ok(())
}

fn version(i: &Installed, deb: &Path) -> Result<()> {
    let said = run(Command::new(i.path("usr/bin/ward")).arg("--version"))?;
    let field = run(Command::new("dpkg-deb")
        .args(["-f"])
        .arg(deb)
        .arg("Version"))?;
    let upstream = field
        .trim()
        .rsplit_once('-')
        .map_or(field.trim(), |(v, _)| v);
    ensure!(
        said.trim() == format!("ward {upstream}"),
        "`ward --version` says {said:?}; the package is version {field:?}"
    );
    Ok(())
}

fn control(i: &Installed, deb: &Path) -> Result<()> {
    let conffiles = std::fs::read_to_string(i.work.join("control/conffiles"))?;
    for conffile in ["/etc/ward/agent.toml", "/etc/logrotate.d/ward"] {
        ensure!(
            conffiles.lines().any(|l| l == conffile),
            "{conffile} is not a conffile: {conffiles:?}"
        );
    }
    super::logrotate::check(&std::fs::read_to_string(i.path(super::logrotate::PATH))?)?;
    let depends = run(Command::new("dpkg-deb").arg("-f").arg(deb).arg("Depends"))?;
    ensure!(depends.contains("libc6"), "Depends: {depends:?}");
    for script in ["postinst", "prerm", "postrm"] {
        let path = i.work.join("control").join(script);
        run(Command::new("sh").arg("-n").arg(&path))?;
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        ensure!(mode == 0o755, "{script} has mode {mode:o}");
    }
    // Removing the package removes enforcement (after the service is stopped).
    let prerm = std::fs::read_to_string(i.work.join("control/prerm"))?;
    let stop = prerm.find("deb-systemd-invoke stop ward.service");
    let uninstall = prerm.find("ward uninstall --config /etc/ward/agent.toml");
    ensure!(
        matches!((stop, uninstall), (Some(s), Some(u)) if s < u),
        "prerm must stop ward.service, then run `ward uninstall`:\n{prerm}"
    );
    Ok(())
}

/// `systemd-analyze verify` of the installed unit, its `ExecStart` pointed at the
/// scratch root's `ward` and `man` at its pages: no warning allowed. A unit with a
/// misspelt key must fail the same check. Then the exposure score.
fn verify(i: &Installed, _: &Path) -> Result<()> {
    let text = std::fs::read_to_string(i.path("usr/lib/systemd/system/ward.service"))?;
    let ward = i.path("usr/bin/ward");
    let local = text.replace("/usr/bin/ward", &ward.to_string_lossy());
    ensure!(local != text, "ward.service does not run /usr/bin/ward");
    verify_text(i, "good", &local)?;
    let broken = local.replace("NoNewPrivileges=", "NoNewPrivilege=");
    ensure!(
        verify_text(i, "broken", &broken).is_err(),
        "systemd-analyze verify accepted a unit with a misspelt key: the check cannot fail"
    );
    let dir = i.work.join("unit-good");
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=25"])
        .arg(dir.join("ward.service")))
    .context("exposure above 2.5")?;
    if let Some(score) = out.lines().find(|l| l.contains("Overall exposure level")) {
        println!("dist check: {}", score.trim_start_matches(['→', ' ']));
    }
    Ok(())
}

/// Verifies `text` saved as `ward.service`; stderr must stay empty.
fn verify_text(i: &Installed, name: &str, text: &str) -> Result<()> {
    let dir = i.work.join(format!("unit-{name}"));
    std::fs::create_dir_all(&dir)?;
    let unit = dir.join("ward.service");
    std::fs::write(&unit, text)?;
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .env("MANPATH", i.path("usr/share/man"))
        .output()
        .context("cannot run systemd-analyze")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify ({}): {}",
        out.status,
        stderr.trim()
    );
    Ok(())
}

/// Every page renders through man-db and groff without a warning, names itself,
/// and `ward(1)` lists every subcommand; `lexgrog` finds the whatis line.
fn man_pages(i: &Installed, _: &Path) -> Result<()> {
    let pages = std::iter::once(None).chain(i.subcommands.iter().map(|s| Some(s.as_str())));
    for sub in pages {
        let page = i.path(&man_page(sub));
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .output()
            .context("cannot run man")?;
        let (text, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let name = page.display();
        ensure!(
            out.status.success() && stderr.trim().is_empty(),
            "man -l {name} ({}): {}",
            out.status,
            stderr.trim()
        );
        let title = sub.map_or("ward".into(), |s| format!("ward-{s}"));
        ensure!(
            text.contains(&format!("{title}(1)")),
            "{name} does not render its title:\n{text}"
        );
        if sub.is_none() {
            for s in &i.subcommands {
                ensure!(
                    text.contains(&format!("ward-{s}(1)")),
                    "ward(1) does not list {s}:\n{text}"
                );
            }
            ensure!(
                !text.contains("generate-assets"),
                "ward(1) shows generate-assets"
            );
        }
        let whatis = run(Command::new("lexgrog").arg(&page))?;
        ensure!(
            whatis.contains(&format!("\"{title} - ")),
            "lexgrog {name}: {whatis}"
        );
    }
    Ok(())
}

/// Each completion names every subcommand (never the hidden one), the bash one
/// parses and completes `ward qua` to `quarantine` and `ward run --con` to `--config`.
fn completions(i: &Installed, _: &Path) -> Result<()> {
    for file in [
        "usr/share/bash-completion/completions/ward",
        "usr/share/zsh/vendor-completions/_ward",
        "usr/share/fish/vendor_completions.d/ward.fish",
    ] {
        let text = std::fs::read_to_string(i.path(file))?;
        for s in &i.subcommands {
            ensure!(text.contains(s.as_str()), "/{file} does not complete {s}");
        }
        ensure!(
            !text.contains("generate-assets"),
            "/{file} offers generate-assets"
        );
    }
    let bash = i.path("usr/share/bash-completion/completions/ward");
    run(Command::new("bash").arg("-n").arg(&bash))?;
    for (words, expected) in [("ward qua", "quarantine"), ("ward run --con", "--config")] {
        let script = format!(
            "source \"$1\"; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             COMP_LINE=\"{words}\"; COMP_POINT=${{#COMP_LINE}}; \
             _ward ward \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = run(Command::new("bash")
            .args(["-c", &script, "bash"])
            .arg(&bash))?;
        ensure!(
            out.lines().any(|l| l == expected),
            "bash completion of `{words}` offers {out:?}, not {expected}"
        );
    }
    Ok(())
}
