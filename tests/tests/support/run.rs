//! A temporary directory for one agent run: its event log and policy copy.
use std::path::PathBuf;

use ward::events::FlowRecord;

/// Files of one agent run, removed on drop.
pub struct Run {
    dir: PathBuf,
}

impl Run {
    /// A fresh directory named after the test process and `tag`.
    pub fn new(tag: &str) -> Run {
        let dir = std::env::temp_dir().join(format!("ward-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Run { dir }
    }

    /// The directory itself.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The event log the agent is told to write.
    pub fn events(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    /// Writes a policy file and returns its path.
    pub fn policy(&self, contents: &str) -> PathBuf {
        let p = self.dir.join("policy.toml");
        std::fs::write(&p, contents).expect("policy");
        p
    }

    /// `event_log = …` followed by `extra` config lines.
    pub fn settings(&self, extra: &str) -> String {
        format!(
            "event_log = {:?}\n{extra}",
            self.events().display().to_string()
        )
    }

    /// Every record written so far.
    pub fn records(&self) -> Vec<FlowRecord> {
        let text = std::fs::read_to_string(self.events()).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l}: {e}")))
            .collect()
    }
}

impl Run {
    /// Waits up to 10 s for an `alert` record with `action` that `also` accepts.
    pub fn wait_alert(
        &self,
        action: &str,
        also: impl Fn(&FlowRecord) -> bool,
    ) -> Option<FlowRecord> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let found = self
                .records()
                .into_iter()
                .find(|r| r.verdict() == "alert" && r.unmapped.ward.reason == action && also(r));
            if found.is_some() || std::time::Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
