//! A real Prometheus server (the Debian package's `prometheus`) as a test's fleet
//! monitor: in a namespace of the test, scraping the agents' metrics endpoints every
//! second and evaluating alerting rules every second; queried through its HTTP API.
use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::TcpStream,
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use ward_tests::Netns;

/// Where it listens, inside its namespace.
pub const LISTEN: &str = "127.0.0.1:9090";

/// One series of an instant vector: its labels and value.
pub type Sample = (BTreeMap<String, String>, f64);

/// The server; killed on drop.
pub struct Prometheus<'a> {
    ns: &'a Netns,
    child: Option<Child>,
}

impl<'a> Prometheus<'a> {
    /// Starts Prometheus in `ns` with its data under `dir`: job `job` scrapes
    /// `targets` (`host:port`) every second, `rules` are evaluated every second.
    /// Returns once it answers `/-/ready`.
    pub fn start(
        ns: &'a Netns,
        dir: &Path,
        job: &str,
        targets: &[String],
        rules: &Path,
    ) -> Prometheus<'a> {
        let config = dir.join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules:?}\n\
                 scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .expect("prometheus.yml");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("prometheus.log");
        let child = ns
            .nsenter("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={LISTEN}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (apt-get install prometheus; see `cargo xtask setup`)");
        let mut server = Prometheus {
            ns,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.get("/-/ready").map(|(status, _)| status) != Some(200) {
            if let Some(st) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
                panic!("prometheus exited with {st}:\n{log}");
            }
            assert!(Instant::now() < deadline, "prometheus is not ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Its base URL, as seen inside its namespace.
    pub fn url(&self) -> String {
        format!("http://{LISTEN}")
    }

    /// `GET path` over HTTP/1.0 (so the answer is not chunked): status and body, or
    /// `None` when it does not answer.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let text = self
            .ns
            .enter(|| -> std::io::Result<String> {
                let mut s = TcpStream::connect(LISTEN)?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                write!(s, "GET {path} HTTP/1.0\r\nHost: {LISTEN}\r\n\r\n")?;
                let mut text = String::new();
                s.read_to_string(&mut text)?;
                Ok(text)
            })
            .expect("enter the namespace")
            .ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some((status, body.to_owned()))
    }

    /// The `data` of a successful API answer to `path`.
    fn api(&self, path: &str) -> Value {
        let (status, body) = self
            .get(path)
            .unwrap_or_else(|| panic!("prometheus does not answer {path}"));
        let reply: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: HTTP {status}, not JSON ({e}): {body}"));
        assert_eq!(reply["status"], "success", "{path}: HTTP {status}: {body}");
        reply["data"].clone()
    }

    /// The instant vector `promql` evaluates to now.
    pub fn query(&self, promql: &str) -> Vec<Sample> {
        let data = self.api(&format!("/api/v1/query?query={}", encode(promql)));
        assert_eq!(data["resultType"], "vector", "{promql}: {data}");
        data["result"]
            .as_array()
            .expect("result")
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .expect("metric")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                let value = r["value"][1]
                    .as_str()
                    .expect("value")
                    .parse()
                    .expect("float");
                (labels, value)
            })
            .collect()
    }

    /// The alerts that are firing now: the labels of each.
    pub fn firing(&self) -> Vec<BTreeMap<String, String>> {
        let data = self.api("/api/v1/alerts");
        data["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                a["labels"]
                    .as_object()
                    .expect("labels")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .collect()
    }

    /// Stops it (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Prometheus<'_> {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `text` percent-encoded for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
