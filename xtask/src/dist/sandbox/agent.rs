//! The `ward run` of the sandbox check: started from the scratch root under the unit's
//! grants and traced, watched for its readiness, stopped, and cleaned up after.
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use ward_tests::netns::Netns;
use ward_tests::util::{run, signal};

use super::{configure, Installed, Unit};

/// A `ward run` from the scratch root; on drop it is killed if still running, then
/// `ward uninstall` removes what it left.
pub(super) struct Agent {
    pub(super) child: Child,
    pub(super) notify: UnixDatagram,
    pub(super) log: PathBuf,
    pub(super) ward: PathBuf,
    pub(super) config: PathBuf,
    pub(super) socket: PathBuf,
    pub(super) pin_dir: PathBuf,
    pub(super) ns_name: String,
    pub(super) ns_path: PathBuf,
}

impl Agent {
    /// Starts the agent named `name` with the capabilities `caps`, traced into
    /// `trace` when given.
    pub(super) fn start(
        i: &Installed,
        unit: &Unit,
        ns: &Netns,
        name: &str,
        caps: &[String],
        trace: Option<&Path>,
    ) -> Result<Agent> {
        let ward = i.path("usr/bin/ward");
        let pin_dir = Path::new(ward_tests::agent::BPFFS)
            .join(format!("ward-test-{}-dist-{name}", std::process::id()));
        let socket = i.work.join(format!("{name}.sock"));
        let config = i.work.join(format!("{name}.toml"));
        std::fs::write(&config, configure(i, name, &pin_dir, &socket)?)?;
        let notify_path = i.work.join(format!("{name}.notify"));
        let _ = std::fs::remove_file(&notify_path);
        let notify = UnixDatagram::bind(&notify_path)
            .with_context(|| format!("binding {}", notify_path.display()))?;
        let log = i.work.join(format!("{name}.log"));
        let bounding: String = caps.iter().map(|c| format!(",+{c}")).collect();
        let mut cmd = match trace {
            Some(trace) => {
                let mut c = Command::new("strace");
                c.args(["-f", "-qq", "-o"])
                    .arg(trace)
                    .arg("--")
                    .arg("nsenter");
                c
            }
            None => Command::new("nsenter"),
        };
        cmd.arg(format!("--net={}", ns.path().display()))
            .args(["--", "setpriv"])
            .arg(format!("--bounding-set=-all{bounding}"))
            .args(["--inh-caps=-all", "--no-new-privs", "--"])
            .arg(&ward)
            .args(["run", "--config"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &notify_path);
        for setting in unit.words("Environment") {
            let (k, v) = setting
                .split_once('=')
                .context("Environment= without `=`")?;
            cmd.env(k, v);
        }
        let out = std::fs::File::create(&log)?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run `{}`", crate::cmdline(&cmd)))?;
        Ok(Agent {
            child,
            notify,
            log,
            ward,
            config,
            socket,
            pin_dir,
            ns_name: ns.name().to_owned(),
            ns_path: ns.path(),
        })
    }

    pub(super) fn log(&self) -> Result<String> {
        std::fs::read_to_string(&self.log).with_context(|| format!("{}", self.log.display()))
    }

    /// Waits for a notification with the line `expected`; an error (with the log)
    /// when the agent exits first or `limit` passes.
    pub(super) fn wait_for(&mut self, expected: &str, limit: Duration) -> Result<()> {
        self.notify
            .set_read_timeout(Some(Duration::from_millis(200)))?;
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        loop {
            match self.notify.recv(&mut buf) {
                Ok(n) => {
                    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if message.lines().any(|l| l == expected) {
                        return Ok(());
                    }
                    seen.push(message);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e).context("reading NOTIFY_SOCKET"),
            }
            if let Some(st) = self.child.try_wait()? {
                bail!(
                    "ward run exited ({st}) before {expected} (got {seen:?}):\n{}",
                    self.log()?
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "no {expected} within {limit:?} (got {seen:?}):\n{}",
                    self.log()?
                );
            }
        }
    }

    /// The agent's pid: the one process in its network namespace (nsenter and setpriv
    /// exec into it; strace stays outside).
    pub(super) fn pid(&self) -> Result<u32> {
        let pids = run(Command::new("ip").args(["netns", "pids", &self.ns_name]))?;
        match pids.split_whitespace().collect::<Vec<_>>().as_slice() {
            [one] => Ok(one.parse()?),
            other => bail!("expected one process in {}, found {other:?}", self.ns_name),
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            if let Ok(pid) = self.pid() {
                let _ = signal(pid, libc::SIGKILL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let uninstall = Command::new("nsenter")
            .arg(format!("--net={}", self.ns_path.display()))
            .arg("--")
            .arg(&self.ward)
            .args(["uninstall", "--config"])
            .arg(&self.config)
            .output();
        if !matches!(&uninstall, Ok(o) if o.status.success()) {
            eprintln!(
                "dist check: ward uninstall --config {} failed: {uninstall:?}",
                self.config.display()
            );
        }
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}
