//! Debian cloud kernels: download once with `apt-get download`, extract with
//! `dpkg-deb -x`, index the modules with `depmod -b`; all cached under
//! `target/kernels/<name>/` so later runs are offline.
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use ward_tests::util::run;

/// A kernel of the matrix, as named on the command line.
pub struct Spec {
    /// `6.1`, `6.12`.
    pub name: &'static str,
    /// The package to use when the archive has it.
    preferred: Option<&'static str>,
    /// Otherwise the newest package matching this `apt-cache search --names-only` regex.
    pattern: &'static str,
}

/// The kernels of the matrix: Debian 12's own 6.1 and its 6.12 backport.
pub const SPECS: [Spec; 2] = [
    Spec {
        name: "6.1",
        preferred: Some("linux-image-6.1.0-50-cloud-amd64-unsigned"),
        pattern: r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$",
    },
    Spec {
        name: "6.12",
        preferred: None,
        pattern: r"^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$",
    },
];

/// An extracted kernel package.
pub struct Kernel {
    /// The package it came from.
    pub package: String,
    /// `uname -r`.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// `lib/modules/<release>`.
    modules: PathBuf,
}

/// Marks a complete extraction; holds the package name.
const STAMP: &str = ".ward-extracted";

/// The kernel `spec` from the cache in `dir`, downloading and extracting what is missing.
pub fn prepare(spec: &Spec, dir: &Path) -> Result<Kernel> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let root = dir.join("root");
    let package = match fs::read_to_string(root.join(STAMP)) {
        Ok(p) => p.trim().to_string(),
        Err(_) => {
            let deb = match cached_deb(dir)? {
                Some(d) => d,
                None => download(spec, dir)?,
            };
            extract(&deb, &root)?
        }
    };
    let modules_root = root.join("lib/modules");
    let release = fs::read_dir(&modules_root)
        .with_context(|| format!("reading {}", modules_root.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .with_context(|| format!("no kernel release in {}", modules_root.display()))?;
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
    if !vmlinuz.is_file() {
        bail!("{} is missing", vmlinuz.display());
    }
    Ok(Kernel {
        package,
        modules: modules_root.join(&release),
        release,
        vmlinuz,
    })
}

/// The newest `.deb` already downloaded into `dir`.
fn cached_deb(dir: &Path) -> Result<Option<PathBuf>> {
    let mut debs: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort_by_key(|p| version_key(&p.file_name().unwrap_or_default().to_string_lossy()));
    Ok(debs.pop())
}

/// The numbers in a package or file name, for ordering versions (6.12.9 < 6.12.117).
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Packages whose names match `pattern`, per the local apt lists.
fn search(pattern: &str) -> Result<Vec<String>> {
    let out = run(Command::new("apt-cache").args(["search", "--names-only", pattern]))?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Picks the package for `spec` and downloads it into `dir`.
fn download(spec: &Spec, dir: &Path) -> Result<PathBuf> {
    let mut found = search(spec.pattern)?;
    if found.is_empty() {
        println!(
            "integration-test: no {} kernel in the apt lists; apt-get update",
            spec.name
        );
        run(Command::new("apt-get")
            .args(["-q", "update"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        found = search(spec.pattern)?;
    }
    found.sort_by_key(|p| version_key(p));
    let package = match spec.preferred {
        Some(p) if found.iter().any(|f| f == p) => p.to_string(),
        _ => match found.pop() {
            Some(p) => {
                if let Some(want) = spec.preferred {
                    println!("integration-test: {want} is no longer in the archive; using {p}");
                }
                p
            }
            None => bail!("apt-cache finds no package matching {}", spec.pattern),
        },
    };
    println!("integration-test: downloading {package}");
    run(Command::new("apt-get")
        .args(["-q", "download", &package])
        .current_dir(dir))?;
    cached_deb(dir)?.with_context(|| format!("apt-get download {package} left no .deb"))
}

/// Extracts `deb` into `root` and builds `modules.dep` (the package leaves that to its
/// postinst); returns the package name.
fn extract(deb: &Path, root: &Path) -> Result<String> {
    println!("integration-test: extracting {}", deb.display());
    let tmp = root.with_extension("tmp");
    let _ = fs::remove_dir_all(&tmp);
    let _ = fs::remove_dir_all(root);
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tmp))?;
    let package = run(Command::new("dpkg-deb")
        .args(["-f"])
        .arg(deb)
        .arg("Package"))?
    .trim()
    .to_string();
    for entry in fs::read_dir(tmp.join("lib/modules"))? {
        let release = entry?.file_name();
        run(Command::new(depmod()).arg("-b").arg(&tmp).arg(&release))?;
    }
    fs::write(tmp.join(STAMP), &package)?;
    fs::rename(&tmp, root)?;
    Ok(package)
}

/// `depmod`, which is in /sbin, not always on a user's PATH.
fn depmod() -> &'static str {
    if Path::new("/sbin/depmod").exists() {
        "/sbin/depmod"
    } else {
        "depmod"
    }
}

impl Kernel {
    /// For each module in `names`: the `.ko` files to insmod, dependencies first.
    pub fn modules(&self, names: &[&str]) -> Result<Vec<(String, Vec<PathBuf>)>> {
        let dep_file = self.modules.join("modules.dep");
        let text = fs::read_to_string(&dep_file)
            .with_context(|| format!("reading {}", dep_file.display()))?;
        let deps = parse_modules_dep(&text);
        names
            .iter()
            .map(|&name| {
                let (path, needs) = deps
                    .get(&module_name(name))
                    .with_context(|| format!("module {name} is not in {}", dep_file.display()))?;
                // modules.dep lists dependencies in unload order: load them reversed.
                let files = needs
                    .iter()
                    .rev()
                    .chain(std::iter::once(path))
                    .map(|p| self.modules.join(p))
                    .collect();
                Ok((name.to_string(), files))
            })
            .collect()
    }
}

/// `kernel/net/sched/cls_bpf.ko.xz` -> `cls_bpf` (dashes as underscores, like modprobe).
fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

/// modules.dep: `path: dep dep…` lines, keyed by module name.
fn parse_modules_dep(text: &str) -> HashMap<String, (String, Vec<String>)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(path, deps)| {
            let deps = deps.split_whitespace().map(str::to_string).collect();
            (module_name(path), (path.to_string(), deps))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_dep_and_versions() {
        let deps = parse_modules_dep(
            "kernel/drivers/net/veth.ko.xz:\nkernel/net/sched/cls-x.ko: kernel/a.ko kernel/b.ko\n",
        );
        assert_eq!(deps["veth"].0, "kernel/drivers/net/veth.ko.xz");
        assert_eq!(deps["cls_x"].1, ["kernel/a.ko", "kernel/b.ko"]);
        let mut v = [
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.9+deb12-cloud-amd64-unsigned",
        ];
        v.sort_by_key(|p| version_key(p));
        assert_eq!(v[1], "linux-image-6.12.117+deb12-cloud-amd64-unsigned");
    }
}
