//! rsyslogd (the Debian package) as a test's syslog collector: in a namespace of the
//! test, on a TCP port, writing every message it receives (without its frame) to a
//! file the test reads.
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

/// The collector's port (no clinic service uses it).
pub const PORT: u16 = 10514;

/// rsyslogd in a namespace, writing every message it receives (without its frame)
/// to `received.log`; killed on drop.
pub struct Rsyslog {
    child: Option<Child>,
    dir: PathBuf,
}

impl Rsyslog {
    pub fn start(ns: &ward_tests::Netns, dir: &Path, listen: IpAddr) -> Rsyslog {
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{dir}\" maxMessageSize=\"64k\")\n\
                 module(load=\"imtcp\")\n\
                 template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
                 ruleset(name=\"ward\") {{\n  \
                   action(type=\"omfile\" file=\"{dir}/received.log\" template=\"raw\")\n}}\n\
                 input(type=\"imtcp\" address=\"{listen}\" port=\"{PORT}\" ruleset=\"ward\")\n",
                dir = dir.display()
            ),
        )
        .expect("rsyslog.conf");
        let child = ns
            .nsenter("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd (apt-get install rsyslog; see `cargo xtask setup`)");
        let rsyslog = Rsyslog {
            child: Some(child),
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let wanted = format!("{listen}:{PORT}");
        while !ns
            .run(&["ss", "-Hltn"])
            .unwrap_or_default()
            .contains(&wanted)
        {
            assert!(
                Instant::now() < deadline,
                "rsyslogd does not listen on {wanted}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        rsyslog
    }

    /// Every message received so far.
    pub fn received(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("received.log")).unwrap_or_default();
        text.lines().map(str::to_owned).collect()
    }

    /// SIGTERM, and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = ward_tests::util::signal(child.id(), libc::SIGTERM);
            let _ = child.wait();
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Rsyslog {
    /// SIGKILL: it closes nothing itself.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
