//! rsyslogd (the Debian package) as a test's syslog collector: in a namespace of the
//! test, on a TCP port, writing every message it receives (without its frame) to a
//! file the test reads.
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// The collector's port (no clinic service uses it).
pub const PORT: u16 = 10514;

/// rsyslogd in a namespace, writing every message it receives (without its frame)
/// to `received.log`; killed on drop.
pub struct Rsyslog {
    child: Option<Child>,
    dir: PathBuf,
}

/// The collector's certificate for TLS (RFC 5425): the CA that signed it (what the
/// agent's `ca_file` must hold), the certificate and its key, PEM files.
pub struct TlsFiles {
    /// The CA certificate.
    pub ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl TlsFiles {
    /// A CA made for the test and a certificate it signs for `ip`, in `dir`.
    pub fn create(dir: &Path, ip: IpAddr) -> TlsFiles {
        let ca_params = {
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p
        };
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let key = KeyPair::generate().expect("collector key");
        let cert = CertificateParams::new(vec![ip.to_string()])
            .expect("collector params")
            .signed_by(&key, &ca)
            .expect("collector certificate");
        let files = TlsFiles {
            ca: dir.join("collector-ca.pem"),
            cert: dir.join("collector.pem"),
            key: dir.join("collector-key.pem"),
        };
        std::fs::write(&files.ca, ca.pem()).expect("CA file");
        std::fs::write(&files.cert, cert.pem()).expect("certificate file");
        std::fs::write(&files.key, key.serialize_pem()).expect("key file");
        files
    }
}

impl Rsyslog {
    /// rsyslogd listening on `listen`:[`PORT`], plain TCP.
    pub fn start(ns: &ward_tests::Netns, dir: &Path, listen: IpAddr) -> Rsyslog {
        Self::start_with(ns, dir, listen, None)
    }

    /// rsyslogd listening on `listen`:[`PORT`], with TLS (the `gtls` driver of
    /// rsyslog-gnutls) when `tls` is given.
    pub fn start_with(
        ns: &ward_tests::Netns,
        dir: &Path,
        listen: IpAddr,
        tls: Option<&TlsFiles>,
    ) -> Rsyslog {
        let conf = dir.join("rsyslog.conf");
        let (global, driver) = match tls {
            Some(t) => (
                format!(
                    " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{}\" \
                     defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\"",
                    t.ca.display(),
                    t.cert.display(),
                    t.key.display()
                ),
                " streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\"",
            ),
            None => (String::new(), ""),
        };
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{dir}\" maxMessageSize=\"64k\"{global})\n\
                 module(load=\"imtcp\"{driver})\n\
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
            .stderr(std::fs::File::create(dir.join("rsyslogd.err")).expect("rsyslogd.err"))
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
