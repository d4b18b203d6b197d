//! The initramfs: busybox, the test binaries, `ward` and `ward-probe`, the host's
//! iproute2, util-linux, iputils and procps tools the namespace harness runs, all with
//! their shared libraries, the modules (decompressed), and an `/init` that runs the
//! tests and powers off.
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};
use ward_tests::util::run;

use super::suites::Suite;

/// Markers `/init` prints on the serial console (parsed by `super::parse_log`).
pub const START: &str = "WARD-VM: start";
pub const END: &str = "WARD-VM: end";
pub const MODULE: &str = "WARD-VM: module";
pub const TEST_START: &str = "WARD-VM: test-start";
pub const TEST_EXIT: &str = "WARD-VM: test-exit";

/// The busybox applets `/init` uses.
const APPLETS: [&str; 12] = [
    "sh", "mount", "mkdir", "insmod", "poweroff", "uname", "cat", "echo", "sleep", "dmesg", "ls",
    "sync",
];

/// The host's tools the namespace harness runs (`tests/src/netns.rs`, `agent.rs`,
/// `probe.rs`): busybox's `ip` has no `netns`, and its `ping` exits differently.
const HOST_TOOLS: [&str; 4] = ["ip", "nsenter", "ping", "sysctl"];

/// What goes in.
pub struct Contents<'a> {
    /// Each suite with its test binary, run in this order.
    pub tests: &'a [(Suite, PathBuf)],
    /// Programs the tests run (`ward`, `ward-probe`), put in `/bin`.
    pub programs: &'a [PathBuf],
    /// Host paths put at the same path in the VM: files copied, directories created
    /// empty (for paths the tests compiled in, such as `CARGO_MANIFEST_DIR/../x`).
    pub mirrored: &'a [PathBuf],
    /// (module, .ko files to load in order) from `Kernel::modules`.
    pub modules: &'a [(String, Vec<PathBuf>)],
    /// Environment of the tests.
    pub env: &'a [(String, String)],
}

/// Stages the tree in `stage` and packs it into `out` (newc cpio, gzip).
pub fn build(c: &Contents, stage: &Path, out: &Path) -> Result<()> {
    let _ = fs::remove_dir_all(stage);
    for d in [
        "bin", "dev", "proc", "sys", "tmp", "run", "var", "tests", "modules",
    ] {
        fs::create_dir_all(stage.join(d))?;
    }
    // `ip netns` keeps its namespaces in /run/netns (/var/run/netns on some builds).
    symlink("../run", stage.join("var/run"))?;
    copy_with_libs(
        Path::new("/bin/busybox"),
        &stage.join("bin/busybox"),
        stage,
        false,
    )?;
    for a in APPLETS {
        symlink("busybox", stage.join("bin").join(a))?;
    }
    for t in HOST_TOOLS {
        copy_with_libs(&host_tool(t)?, &stage.join("bin").join(t), stage, false)?;
    }
    for p in c.programs {
        let name = p.file_name().context("program path")?;
        copy_with_libs(p, &stage.join("bin").join(name), stage, true)?;
    }
    for p in c.mirrored {
        let to = stage.join(p.strip_prefix("/").context("mirrored path not absolute")?);
        if p.is_dir() {
            fs::create_dir_all(&to)?;
        } else {
            fs::create_dir_all(to.parent().context("mirrored path")?)?;
            fs::copy(p, &to).with_context(|| format!("copying {}", p.display()))?;
        }
    }
    let mut script = String::from(INIT_HEAD);
    for (name, files) in c.modules {
        // Dependencies first; one already loaded for another module may fail again
        // harmlessly, and a missing one makes the module's own insmod fail.
        let mut kos = Vec::new();
        for f in files {
            kos.push(unpack_module(f, &stage.join("modules"))?);
        }
        let (own, deps) = kos.split_last().context("no module file")?;
        for ko in deps {
            script += &format!("insmod /modules/{ko} 2>/dev/null\n");
        }
        script += &format!(
            "if insmod /modules/{own}; then echo \"{MODULE} {name} ok\"; else echo \"{MODULE} {name} FAILED\"; fi\n"
        );
    }
    for (k, v) in c.env {
        script += &format!("export {k}='{v}'\n");
    }
    for (suite, path) in c.tests {
        let name = &suite.name;
        copy_with_libs(path, &stage.join("tests").join(name), stage, true)?;
        let only = if suite.only.is_empty() {
            String::new()
        } else {
            format!(" --exact {}", suite.only.join(" "))
        };
        script += &format!(
            "echo \"{TEST_START} {name}\"\n/tests/{name} --test-threads=1{only}\necho \"{TEST_EXIT} {name} $?\"\n"
        );
    }
    script += INIT_TAIL;
    let init = stage.join("init");
    fs::write(&init, script)?;
    run(Command::new("chmod").arg("755").arg(&init))?;

    let _ = fs::remove_file(out);
    run(Command::new("bash")
        .arg("-c")
        .arg("set -o pipefail; cd \"$1\" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | gzip -1 > \"$2\"")
        .arg("pack-initramfs")
        .arg(stage)
        .arg(out))?;
    Ok(())
}

/// The start of `/init`. `/tmp` stays the initramfs' own writable directory: a tmpfs
/// mounted there would hide the mirrored source paths of a checkout under `/tmp`.
const INIT_HEAD: &str = r#"#!/bin/sh
export PATH=/bin LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mkdir -p /sys/fs/bpf
mount -t bpf bpf /sys/fs/bpf || echo "WARD-VM: cannot mount bpffs"
echo "WARD-VM: start $(uname -r)"
cd /tmp
"#;

const INIT_TAIL: &str = r#"echo "WARD-VM: end"
sync
poweroff -f
"#;

/// `name` on the host: on `PATH`, or in the sbin directories a user's `PATH` may lack.
fn host_tool(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!("`{name}` is not on PATH nor in /usr/sbin or /sbin (`cargo xtask setup` installs iproute2, util-linux and iputils-ping; sysctl is procps)")
        })
}

/// Copies `src` to `dst` (stripped of debug info when `strip`) and the shared libraries
/// `ldd` names to the same paths under `stage`, the dynamic loader included.
fn copy_with_libs(src: &Path, dst: &Path, stage: &Path, strip: bool) -> Result<()> {
    let stripped = strip
        && Command::new("strip")
            .args(["--strip-debug", "-o"])
            .arg(dst)
            .arg(src)
            .status()
            .is_ok_and(|s| s.success());
    if !stripped {
        fs::copy(src, dst).with_context(|| format!("copying {}", src.display()))?;
    }
    // `ldd` fails on a static binary: nothing more to copy.
    let Ok(out) = run(Command::new("ldd").arg(src)) else {
        return Ok(());
    };
    for lib in ldd_paths(&out) {
        let to = stage.join(lib.strip_prefix("/").unwrap_or(&lib));
        if !to.exists() {
            fs::create_dir_all(to.parent().expect("absolute path"))?;
            fs::copy(&lib, &to).with_context(|| format!("copying {}", lib.display()))?;
        }
    }
    Ok(())
}

/// The library paths in `ldd` output (`libc.so.6 => /lib/…/libc.so.6 (0x…)`,
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`); the vDSO has none.
fn ldd_paths(out: &str) -> Vec<PathBuf> {
    out.lines()
        .filter_map(|l| {
            let l = l.trim();
            let p = l.split_once("=>").map_or(l, |(_, r)| r.trim());
            let p = p.split_whitespace().next()?;
            p.starts_with('/').then(|| PathBuf::from(p))
        })
        .collect()
}

/// Copies a module into `dir` as a plain `.ko` (busybox insmod reads no `.xz`);
/// returns its file name.
fn unpack_module(src: &Path, dir: &Path) -> Result<String> {
    let base = src
        .file_name()
        .context("module path")?
        .to_string_lossy()
        .into_owned();
    let (name, xz) = match base.strip_suffix(".xz") {
        Some(n) => (n.to_string(), true),
        None => (base.clone(), false),
    };
    let dst = dir.join(&name);
    if xz {
        let out = Command::new("xz")
            .arg("-dc")
            .arg(src)
            .output()
            .context("running xz")?;
        anyhow::ensure!(out.status.success(), "xz -dc {} failed", src.display());
        fs::write(&dst, out.stdout)?;
    } else {
        fs::copy(src, &dst).with_context(|| format!("copying {}", src.display()))?;
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::ldd_paths;
    use std::path::PathBuf;

    #[test]
    fn parses_ldd() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        assert_eq!(
            ldd_paths(out),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }
}
