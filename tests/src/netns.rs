//! Network namespaces owned by a test: created with a unique `wd<pid>-` prefix,
//! deleted on drop (also when the test panics), leftovers of dead runs pre-cleaned.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::util::{pid_alive, run, run_args};

/// Directory where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Prefix of every namespace this process creates: `wd<pid>-`.
pub fn prefix() -> String {
    format!("wd{}-", std::process::id())
}

/// Names of existing named namespaces.
pub fn list() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// Deletes leftovers: namespaces named `wd<pid>-…` whose process no longer exists
/// (a run that was SIGKILLed), and those starting with `own_prefix` (ours, from an
/// earlier topology of this process that could not be deleted). Namespaces of live
/// processes (another engineer's tests) are left alone.
pub fn clean_leftovers(own_prefix: &str) {
    for name in list() {
        let stale = name
            .strip_prefix("wd")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
            .is_some_and(|pid| !pid_alive(pid));
        if stale || name.starts_with(own_prefix) {
            eprintln!("ward-tests: removing leftover namespace {name}");
            let _ = run_args("ip", &["netns", "delete", &name]);
        }
    }
}

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `name` (it must start with [`prefix`]), with `lo` up,
    /// IPv6 duplicate address detection and router advertisements off.
    pub fn create(name: &str) -> Result<Netns> {
        if !name.starts_with(&prefix()) {
            bail!("namespace name {name} must start with {}", prefix());
        }
        if Path::new(NETNS_DIR).join(name).exists() {
            let _ = run_args("ip", &["netns", "delete", name]);
        }
        run_args("ip", &["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        ns.sysctls(&[
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.accept_dad", "0"),
            ("net.ipv6.conf.all.accept_ra", "0"),
            ("net.ipv6.conf.default.accept_ra", "0"),
            ("net.ipv6.bindv6only", "0"),
        ])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, for `nsenter --net=`.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// Runs `f` on a thread that has entered the namespace (only that thread), e.g.
    /// to talk to a service listening on the namespace's loopback.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let file = std::fs::File::open(self.path())
            .with_context(|| format!("opening {}", self.path().display()))?;
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    use std::os::fd::AsRawFd;
                    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        bail!(
                            "setns into {}: {}",
                            self.name,
                            std::io::Error::last_os_error()
                        );
                    }
                    Ok(f())
                })
                .join()
                .map_err(|_| anyhow::anyhow!("thread in {} panicked", self.name))?
        })
    }

    /// `ip netns exec NAME program`: for ordinary tools (sysctl, ping, ss…).
    pub fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// `nsenter --net=/run/netns/NAME -- program`: enters only the network namespace,
    /// so `/sys/fs/bpf` stays the host's (use this for `ward run`).
    pub fn nsenter(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        c
    }

    /// Runs `args[0] args[1..]` in the namespace (`ip netns exec`); returns stdout.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let (program, rest) = args.split_first().context("empty command")?;
        run(self.exec(program).args(rest))
    }

    /// `ip -n NAME args…`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut c = Command::new("ip");
        c.args(["-n", &self.name]).args(args);
        run(&mut c)
    }

    /// Sets sysctls in the namespace (`sysctl -qw key=value…`).
    pub fn sysctls(&self, kv: &[(&str, &str)]) -> Result<()> {
        let mut c = self.exec("sysctl");
        c.arg("-qw");
        for (k, v) in kv {
            c.arg(format!("{k}={v}"));
        }
        run(&mut c).map(|_| ())
    }

    /// Brings `ifname` up, with DAD and RA off on it, and adds the given addresses
    /// (`a.b.c.d/len` or `x::y/len`; IPv6 ones with `nodad`, usable at once).
    pub fn configure_if(&self, ifname: &str, addrs: &[String]) -> Result<()> {
        self.sysctls(&[
            (&format!("net.ipv6.conf.{ifname}.accept_dad"), "0"),
            (&format!("net.ipv6.conf.{ifname}.accept_ra"), "0"),
        ])?;
        for a in addrs {
            if a.contains(':') {
                self.ip(&["-6", "addr", "add", a, "dev", ifname, "nodad"])?;
            } else {
                self.ip(&["addr", "add", a, "dev", ifname])?;
            }
        }
        self.ip(&["link", "set", ifname, "up"])?;
        Ok(())
    }

    /// Interface names in the namespace (without `lo`).
    pub fn interfaces(&self) -> Result<Vec<String>> {
        let out = self.ip(&["-o", "link", "show"])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
            .filter(|n| !n.is_empty() && n != "lo")
            .collect())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run_args("ip", &["netns", "delete", &self.name]) {
            eprintln!(
                "ward-tests: could not delete namespace {}: {e:#}",
                self.name
            );
        }
    }
}

/// Creates a veth pair: `a_if` in `a`, `b_if` in `b` (neither ever in the root namespace).
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    let mut c = Command::new("ip");
    c.args([
        "-n",
        a.name(),
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]);
    run(&mut c).with_context(|| format!("veth {a_if}@{} <-> {b_if}@{}", a.name(), b.name()))?;
    Ok(())
}
