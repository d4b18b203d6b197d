//! Helpers shared by the kernel tests.
#![allow(dead_code)]
pub mod cli;
pub mod conntrack;
pub mod containment;
pub use ward_reference::build as frames;
pub mod gateway;
pub mod https;
pub mod late;
pub mod metrics;
pub mod prometheus;
pub mod rsyslog;
pub mod run;
pub mod signed;
pub mod status;

use std::path::{Path, PathBuf};

use ward::{
    dataplane::{Dataplane, LoadOptions},
    policy,
};

/// A dataplane loaded into a pin directory of its own, removed on drop.
pub struct TestDataplane {
    /// The loaded programs and maps.
    pub dp: Dataplane,
    dir: PathBuf,
}

impl TestDataplane {
    /// Loads the programs; fails loudly when not root or the kernel refuses them.
    pub fn new(tag: &str) -> Self {
        Self::with_options(tag, &LoadOptions::default())
    }

    /// [`TestDataplane::new`] with maps sized by `options`.
    pub fn with_options(tag: &str, options: &LoadOptions) -> Self {
        assert!(
            unsafe { libc_geteuid() } == 0,
            "kernel verdict tests need root (BPF_PROG_LOAD, BPF_PROG_TEST_RUN): run `cargo xtask test` as root"
        );
        let dir = PathBuf::from(format!(
            "/sys/fs/bpf/ward-test-{}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let dp = Dataplane::load_with(&dir, options).unwrap_or_else(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            panic!("{:#}", anyhow::Error::from(e))
        });
        Self { dp, dir }
    }

    /// Applies a policy given as TOML text.
    pub fn apply_str(&mut self, text: &str) -> policy::Loaded {
        let loaded =
            policy::load_str("test.toml", text).unwrap_or_else(|d| panic!("policy: {d:?}"));
        self.dp.apply(&loaded.compiled).expect("apply");
        loaded
    }

    /// Configures the programs as an agent whose config holds `extra` lines would.
    pub fn configure(&mut self, extra: &str) {
        let text = format!("role = \"host\"\ninterfaces = [\"lo\"]\npolicy = \"p.toml\"\n{extra}");
        let config =
            ward::config::AgentConfig::parse(Path::new("agent.toml"), &text).expect("config");
        self.dp.configure(&config).expect("configure");
    }

    /// XDP action for a frame: `XDP_PASS` (2) or `XDP_DROP` (1).
    pub fn xdp(&self, frame: &[u8]) -> u32 {
        self.dp.test_run_xdp(frame, 1).expect("BPF_PROG_TEST_RUN").0
    }

    /// The pin directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestDataplane {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// `XDP_PASS`.
pub const PASS: u32 = 2;
/// `XDP_DROP`.
pub const DROP: u32 = 1;

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
