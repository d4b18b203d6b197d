//! Running commands with errors that say what failed, and bounded waits.
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};

/// The command line of `cmd`, for messages.
pub fn cmdline(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion; a spawn failure or non-zero exit is an error naming the
/// command line and its stderr. Returns stdout.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{}`", cmdline(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            cmdline(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Shorthand: `run(Command::new(program).args(args))`.
pub fn run_args<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<String> {
    run(Command::new(program).args(args))
}

/// Runs `cmd` with stdout and stderr captured, killing it if it outlives `limit`
/// (an error: the probes have their own, shorter timeouts, so this only catches hangs).
pub fn output_within(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let line = cmdline(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{line}`"))?;
    match wait_within(&mut child, limit)? {
        Some(_) => child
            .wait_with_output()
            .with_context(|| format!("`{line}`")),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(anyhow!("`{line}` did not finish within {limit:?}; killed"))
        }
    }
}

/// Waits up to `limit` for `child`; `None` if it is still running.
pub fn wait_within(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().context("waiting for a child process")? {
            return Ok(Some(st));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: libc::c_int) -> Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    if rc != 0 {
        bail!("kill({pid}, {sig}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Panics unless the effective user is root: the kernel tests must fail, never skip.
pub fn require_root(what: &str) {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        panic!(
            "{what} needs root (network namespaces, XDP/TC, bpffs): run it as root, \
             e.g. `sudo -E cargo xtask test`"
        );
    }
}

/// Whether a process with this pid exists.
pub fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Locates a binary of this workspace: `$env_var` if set (it must exist), else
/// `name` next to the current executable or in its parent directory
/// (`target/debug/deps/test-…` → `target/debug/NAME`). Panics with a clear message.
pub fn locate_bin(env_var: &str, name: &str, hint: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            panic!("{env_var}={} does not exist ({hint})", p.display());
        }
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut tried = Vec::new();
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
        tried.push(candidate.display().to_string());
    }
    panic!(
        "`{name}` binary not found: set {env_var}, or {hint} (looked at {})",
        tried.join(", ")
    );
}
