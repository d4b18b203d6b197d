//! `ward policy keygen|sign|verify`: the network team's side of signed distribution.
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    time::SystemTime,
};

use anyhow::{bail, Context as _};

use crate::{
    distribution::{
        parse_grants, parse_list, policy_texts, Bundle, BundleFile, DistributionError, SecretKey,
        TrustedKey,
    },
    policy::{self, FLEET_BREAKGLASS_FILE, FLEET_QUARANTINE_FILE},
};

/// Makes a key pair: `PREFIX.key` (secret, mode 0600) and `PREFIX.pub` (the line for
/// `trusted_keys`).
pub fn keygen(prefix: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let key = SecretKey::generate();
    let (secret, public) = key.write(prefix)?;
    writeln!(
        out,
        "key {}: secret key in {} (keep it offline), public key in {}",
        key.id(),
        secret.display(),
        public.display()
    )?;
    writeln!(out, "trusted_keys = [\"{}\"]", key.public().to_base64())?;
    Ok(ExitCode::SUCCESS)
}

/// What `ward policy sign` is asked besides the key and the files.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignOptions<'a> {
    /// A policy test file the policy must pass, or nothing is signed.
    pub tests: Option<&'a Path>,
    /// The bundle's version; `None`: the version of the bundle at the output plus one.
    pub version: Option<u64>,
    /// Warnings refuse the signature too.
    pub strict: bool,
}

/// Signs the `*.toml` files of `dir` (which must make a valid policy, passing the
/// policy test file `options.tests` when given) into `output`. The warnings signed
/// over are printed to `err` with their offending lines; with `options.strict` any
/// warning refuses the signature.
pub fn sign(
    key: &Path,
    options: SignOptions,
    dir: &Path,
    output: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let key = SecretKey::read(key)?;
    let version = match options.version {
        Some(v) => v,
        None if output.exists() => {
            let previous = Bundle::read(output).context("--version not given")?;
            previous
                .version
                .checked_add(1)
                .context("the version is at its maximum")?
        }
        None => bail!(
            "--version not given, and there is no bundle at {} to follow",
            output.display()
        ),
    };
    let files = read_dir(dir)?;
    let texts = policy_texts(&files);
    let loaded = load_or_report(&texts, || {
        format!(
            "{}: the policy is invalid; nothing was signed",
            dir.display()
        )
    })?;
    let fleet = fleet_or_report(&files, &loaded.policy, |file| {
        format!("{}: {file} is invalid; nothing was signed", dir.display())
    })?;
    let all_warnings: Vec<policy::Diagnostic> =
        loaded.warnings.iter().chain(&fleet).cloned().collect();
    let warnings = all_warnings.len();
    if warnings > 0 {
        super::check::write_diagnostics(err, &all_warnings)?;
        if options.strict {
            bail!(
                "{}: {warnings} warning(s) and --strict; nothing was signed",
                dir.display()
            );
        }
        writeln!(err, "signing over {warnings} warning(s)")?;
    }
    if let Some(tests) = options.tests {
        if !super::policy_test::run_tests(&loaded.policy, tests, out)? {
            bail!(
                "{}: a test of {} fails; nothing was signed",
                dir.display(),
                tests.display()
            );
        }
    }
    let bundle = Bundle::sign(version, files, &key)?;
    crate::distribution::write_atomic(output, bundle.to_json().as_bytes())?;
    let names: Vec<&str> = bundle.files.iter().map(|f| f.name.as_str()).collect();
    writeln!(
        out,
        "signed version {} with key {}: {} ({}), sha256 {}",
        bundle.version,
        bundle.key_id,
        output.display(),
        names.join(", "),
        bundle.digest()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Verifies a bundle with the keys given (base64 lines or files holding one) and
/// checks the policy in it; exit 0 when both hold.
pub fn verify(keys: &[String], bundle: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let trusted = keys
        .iter()
        .map(|k| TrustedKey::from_arg(k))
        .collect::<Result<Vec<_>, _>>()?;
    let read = Bundle::read(bundle)?;
    let info = read
        .verify(&trusted)
        .with_context(|| format!("{} (version {})", bundle.display(), read.version))?;
    let texts = policy_texts(&read.files);
    let loaded = load_or_report(&texts, || {
        format!(
            "{}: signed, but the policy in it is invalid",
            bundle.display()
        )
    })?;
    for warning in fleet_or_report(&read.files, &loaded.policy, |file| {
        format!("{}: signed, but its {file} is invalid", bundle.display())
    })? {
        eprintln!("{warning}");
    }
    writeln!(
        out,
        "bundle OK: version {} signed by key {}, sha256 {}; files {}; policy {}",
        info.version,
        info.key_id,
        info.digest,
        info.files.join(", "),
        loaded.compiled.hash
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The `*.toml` files of `dir`, in file-name order.
fn read_dir(dir: &Path) -> anyhow::Result<Vec<BundleFile>> {
    let io = |source| DistributionError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        bail!("{}: no *.toml file to sign", dir.display());
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let content = std::fs::read_to_string(&path)
                .with_context(|| format!("{}: not readable as UTF-8 text", path.display()))?;
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: the name is not UTF-8", path.display()))?
                .to_owned();
            Ok(BundleFile { name, content })
        })
        .collect()
}

/// Checks the fleet lists among `files` (`quarantine.toml`, and `breakglass.toml`
/// against `policy`, the policy beside it) and returns their warnings; when one is
/// invalid, prints its diagnostics on stderr and fails with `refusal` of its name.
fn fleet_or_report(
    files: &[BundleFile],
    policy: &policy::Policy,
    refusal: impl Fn(&str) -> String,
) -> anyhow::Result<Vec<policy::Diagnostic>> {
    let now = SystemTime::now();
    let mut warnings = Vec::new();
    for name in [FLEET_QUARANTINE_FILE, FLEET_BREAKGLASS_FILE] {
        let Some(file) = files.iter().find(|f| f.name == name) else {
            continue;
        };
        let checked = match name {
            FLEET_QUARANTINE_FILE => parse_list(&file.name, &file.content, now).map(|(_, w)| w),
            _ => parse_grants(&file.name, &file.content, policy, now).map(|(_, w)| w),
        };
        match checked {
            Ok(w) => warnings.extend(w),
            Err(diags) => {
                for d in &diags {
                    eprintln!("{d}");
                }
                bail!(refusal(name));
            }
        }
    }
    Ok(warnings)
}

/// Loads the policy of `texts`; when it is invalid, prints its diagnostics on stderr
/// and fails with `refusal`.
fn load_or_report(
    texts: &[(&str, &str)],
    refusal: impl FnOnce() -> String,
) -> anyhow::Result<policy::Loaded> {
    policy::load_texts(texts).map_err(|diags| {
        for d in &diags {
            eprintln!("{d}");
        }
        anyhow::anyhow!(refusal())
    })
}
