//! Bundles (encoding, signing, tampering), keys, the anti-rollback floor and the
//! daemon-facing source.
mod bundle;
mod fleet;
mod fleet_grants;
mod source;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{Bundle, BundleFile, SecretKey};

/// A directory removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ward-dist-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A valid two-file policy: zones in one file, a rule in the other.
pub(super) fn files(port: u16) -> Vec<BundleFile> {
    vec![
        BundleFile {
            name: "10-rules.toml".into(),
            content: format!("[[allow]]\nfrom = \"a\"\nto = \"b\"\ntcp = [{port}]\n"),
        },
        BundleFile {
            name: "00-zones.toml".into(),
            content:
                "[zones.a]\ncidrs = [\"198.18.1.0/24\"]\n[zones.b]\ncidrs = [\"198.18.2.0/24\"]\n"
                    .into(),
        },
    ]
}

/// A key from a fixed seed, so that signatures are reproducible.
pub(super) fn key(seed: u8) -> SecretKey {
    let dir = TempDir::new("key");
    let path = dir.path().join("k.key");
    use base64::Engine as _;
    let line = base64::engine::general_purpose::STANDARD.encode([seed; 32]);
    std::fs::write(&path, line).expect("key file");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    SecretKey::read(&path).expect("key")
}

/// [`files`] signed as `version` with `key(seed)`.
pub(super) fn signed(version: u64, port: u16, seed: u8) -> Bundle {
    Bundle::sign(version, files(port), &key(seed)).expect("sign")
}
