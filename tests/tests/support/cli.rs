//! `ward` commands that need no agent (signing, verifying, checking), run from tests.
use std::ffi::OsStr;

use ward_tests::ward_bin;

/// `ward ARGS`; its stdout, or a panic with its output.
pub fn ward<S: AsRef<OsStr>>(args: &[S]) -> String {
    let out = std::process::Command::new(ward_bin())
        .args(args)
        .output()
        .expect("run ward");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ward failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
