//! `ward run` as a guarded child process inside a namespace.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::netns::Netns;
use crate::util::{cmdline, locate_bin, signal, wait_within};

mod config;

use config::state_dir;
pub use config::{clean_stale_pin_dirs, config_toml, Role};

/// Where bpffs is mounted; test agents pin under `ward-test-<pid>-<n>` there.
pub const BPFFS: &str = "/sys/fs/bpf";

static AGENTS: AtomicU32 = AtomicU32::new(0);

/// The `ward` binary: `$WARD_BIN`, else next to the current executable (or its
/// parent directory: `target/debug/ward` for a test in `target/debug/deps`).
/// Panics with a clear message if not found.
pub fn ward_bin() -> PathBuf {
    locate_bin(
        "WARD_BIN",
        "ward",
        "run `cargo build -p ward` (or use `cargo xtask test`)",
    )
}

/// Starts `nsenter --net=NS -- ward run --config CONFIG RUN_ARGS…` with stderr captured;
/// with a `hostname`, in a UTS namespace of its own that has that host name (`unshare
/// --uts`, then `hostname`; each step execs the next, so the child's pid is ward's).
fn spawn(
    ward: &Path,
    ns_path: &Path,
    hostname: Option<&str>,
    config: &Path,
    run_args: &[String],
) -> Result<(Child, Arc<Mutex<String>>, std::thread::JoinHandle<()>)> {
    let mut cmd = std::process::Command::new("nsenter");
    cmd.arg(format!("--net={}", ns_path.display())).arg("--");
    if let Some(name) = hostname {
        cmd.args([
            "unshare",
            "--uts",
            "--",
            "sh",
            "-c",
            r#"hostname "$0" && exec "$@""#,
        ])
        .arg(name);
    }
    cmd.arg(ward);
    cmd.arg("run").arg("--config").arg(config).args(run_args);
    let line = cmdline(&cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{line}`"))?;
    let log = Arc::new(Mutex::new(format!("$ {line}\n")));
    let stderr = child.stderr.take().expect("piped");
    let sink = Arc::clone(&log);
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines() {
            let Ok(l) = l else { break };
            let mut g = sink.lock().unwrap_or_else(|p| p.into_inner());
            g.push_str(&l);
            g.push('\n');
        }
    });
    Ok((child, log, reader))
}

/// A running `ward run`: stderr captured, SIGTERM then SIGKILL on drop, and its log
/// printed if the test is panicking.
pub struct WardAgent {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    /// The binary and the namespace it runs in.
    ward: PathBuf,
    ns_path: PathBuf,
    /// Namespace name (for messages).
    ns_name: String,
    /// The host name of its own UTS namespace, if it has one.
    hostname: Option<String>,
    config_path: PathBuf,
    control_socket: PathBuf,
    pin_dir: PathBuf,
    /// Further `ward run` arguments for the next (re)spawn.
    run_args: Vec<String>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl WardAgent {
    /// Writes a config (unique `pin_dir` `/sys/fs/bpf/ward-test-<pid>-<n>`) and starts
    /// `nsenter --net=… -- ward run --config FILE` in `ns`.
    pub fn start(
        ns: &Netns,
        role: Role,
        interfaces: &[String],
        policy: &Path,
    ) -> Result<WardAgent> {
        Self::start_with(&ward_bin(), ns, role, interfaces, policy)
    }

    /// Like [`WardAgent::start`] with an explicit `ward` binary.
    pub fn start_with(
        ward: &Path,
        ns: &Netns,
        role: Role,
        interfaces: &[String],
        policy: &Path,
    ) -> Result<WardAgent> {
        Self::start_configured(ward, ns, role, interfaces, policy, "")
    }

    /// Like [`WardAgent::start_with`], with further config lines (`settings`).
    pub fn start_configured(
        ward: &Path,
        ns: &Netns,
        role: Role,
        interfaces: &[String],
        policy: &Path,
        settings: &str,
    ) -> Result<WardAgent> {
        Self::launch(ward, ns, None, role, interfaces, policy, settings)
    }

    /// Like [`WardAgent::start_configured`], on a host of its own name: the agent runs
    /// in a UTS namespace whose host name is `hostname` (what its events and syslog
    /// messages name), as one machine of a fleet would.
    pub fn start_named(
        hostname: &str,
        ns: &Netns,
        role: Role,
        interfaces: &[String],
        policy: &Path,
        settings: &str,
    ) -> Result<WardAgent> {
        let ward = ward_bin();
        Self::launch(
            &ward,
            ns,
            Some(hostname),
            role,
            interfaces,
            policy,
            settings,
        )
    }

    fn launch(
        ward: &Path,
        ns: &Netns,
        hostname: Option<&str>,
        role: Role,
        interfaces: &[String],
        policy: &Path,
        settings: &str,
    ) -> Result<WardAgent> {
        crate::util::require_root("running the agent");
        clean_stale_pin_dirs();
        let n = AGENTS.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{n}", std::process::id());
        let pin_dir = Path::new(BPFFS).join(format!("ward-test-{id}"));
        let policy = std::fs::canonicalize(policy)
            .with_context(|| format!("policy {}", policy.display()))?;
        let config_path = std::env::temp_dir().join(format!("ward-test-{id}.toml"));
        // One socket per agent: two agents on one machine must not share one.
        let control_socket = std::env::temp_dir().join(format!("ward-test-{id}.sock"));
        std::fs::write(
            &config_path,
            config_toml(
                role,
                interfaces,
                &policy,
                &pin_dir,
                &control_socket,
                settings,
            ),
        )
        .with_context(|| format!("writing {}", config_path.display()))?;
        let (child, log, reader) = spawn(ward, &ns.path(), hostname, &config_path, &[])?;
        Ok(WardAgent {
            child: Some(child),
            log,
            ward: ward.to_owned(),
            ns_path: ns.path(),
            ns_name: ns.name().to_string(),
            hostname: hostname.map(str::to_owned),
            config_path,
            control_socket,
            pin_dir,
            run_args: Vec::new(),
            reader: Some(reader),
        })
    }

    /// Stops the agent (SIGTERM) and starts it again with the same configuration and
    /// pin directory, so the new process adopts the old one's pinned maps.
    pub fn restart(&mut self) -> Result<()> {
        let st = self.stop()?;
        if !st.success() {
            bail!("ward in {} exited with {st} on SIGTERM", self.ns_name);
        }
        self.respawn()
    }

    /// Kills the agent with SIGKILL, as a crash would: nothing of its own clean-up runs.
    pub fn crash(&mut self) -> Result<()> {
        let mut child = self.child.take().context("ward already stopped")?;
        child.kill().context("SIGKILL")?;
        child.wait().context("waiting for the killed agent")?;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Ok(())
    }

    /// Starts the agent again with the same configuration and pin directory (after
    /// [`WardAgent::crash`] or [`WardAgent::stop`]); its log starts afresh.
    pub fn respawn(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("ward in {} is still running", self.ns_name);
        }
        let (child, log, reader) = spawn(
            &self.ward,
            &self.ns_path,
            self.hostname.as_deref(),
            &self.config_path,
            &self.run_args,
        )?;
        self.child = Some(child);
        self.log = log;
        self.reader = Some(reader);
        Ok(())
    }

    /// Sets further `ward run` arguments (e.g. `--detach-on-exit`) for the next
    /// [`WardAgent::respawn`].
    pub fn set_run_args(&mut self, args: &[&str]) {
        self.run_args = args.iter().map(|a| a.to_string()).collect();
    }

    /// The agent's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Its config file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Runs `ward ARGS --socket SOCKET` (a control command against this agent).
    pub fn cli(&self, args: &[&str]) -> Result<std::process::Output> {
        std::process::Command::new(&self.ward)
            .args(args)
            .arg("--socket")
            .arg(&self.control_socket)
            .output()
            .with_context(|| format!("running ward {}", args.join(" ")))
    }

    /// [`WardAgent::cli`]: whether it succeeded, and its standard output then error.
    /// Panics if `ward` cannot be run at all.
    pub fn cli_outcome(&self, args: &[&str]) -> (bool, String) {
        let out = self.cli(args).expect("run ward");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Runs `ward uninstall --config CONFIG` in the agent's namespace, the one way to
    /// remove enforcement; fails (with its output) when the command fails.
    pub fn uninstall(&self) -> Result<String> {
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net={}", self.ns_path.display()))
            .arg("--")
            .arg(&self.ward)
            .args(["uninstall", "--config"])
            .arg(&self.config_path)
            .output()
            .context("running ward uninstall")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "ward uninstall in {} exited with {}: {stdout}{}",
                self.ns_name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    }

    /// Its control socket (unique to this agent).
    pub fn control_socket(&self) -> &Path {
        &self.control_socket
    }

    /// The pin directory given to it.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Its `state_dir`, unless the settings named another.
    pub fn state_dir(&self) -> PathBuf {
        state_dir(&self.pin_dir)
    }

    /// Everything it logged so far (stderr), after the command line.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until its log contains `pattern`; an error (with the log) if it exits
    /// first or `timeout` passes.
    pub fn wait_for(&mut self, pattern: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(pattern) {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(c) => c.try_wait().context("waiting for ward")?,
                None => bail!("ward in {} was already stopped", self.ns_name),
            };
            if let Some(st) = exited {
                // Let the reader drain the last lines.
                std::thread::sleep(Duration::from_millis(100));
                if self.log().contains(pattern) {
                    return Ok(());
                }
                bail!(
                    "ward in {} exited ({st}) before logging {pattern:?}; its log:\n{}",
                    self.ns_name,
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "ward in {} did not log {pattern:?} within {timeout:?}; its log:\n{}",
                    self.ns_name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGHUP (reload).
    pub fn sighup(&self) -> Result<()> {
        signal(self.pid(), libc::SIGHUP)
    }

    /// Sends SIGUSR1 (reopen the event log).
    pub fn sigusr1(&self) -> Result<()> {
        signal(self.pid(), libc::SIGUSR1)
    }

    /// Sends SIGTERM and waits up to 10 s for the exit (then SIGKILL and an error).
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().context("ward already stopped")?;
        let _ = signal(child.id(), libc::SIGTERM);
        let st = match wait_within(&mut child, Duration::from_secs(10))? {
            Some(st) => st,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "ward in {} ignored SIGTERM for 10 s; killed. Its log:\n{}",
                    self.ns_name,
                    self.log()
                );
            }
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Ok(st)
    }
}

impl Drop for WardAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = signal(child.id(), libc::SIGTERM);
            if !matches!(wait_within(&mut child, Duration::from_secs(5)), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- ward log ({}) ----\n{}---- end of ward log ----",
                self.ns_name,
                self.log()
            );
        }
        let _ = std::fs::remove_file(&self.config_path);
        let _ = std::fs::remove_file(&self.control_socket);
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        let _ = std::fs::remove_dir_all(state_dir(&self.pin_dir));
    }
}
