//! Builds the kernel programs in `agent-ebpf` with the nightly toolchain and bpf-linker.
use anyhow::{anyhow, Context as _};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let metadata =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["locate-project", "--workspace", "--message-format=plain"])
            .output()
            .context("cargo locate-project")?;
    let manifest = String::from_utf8(metadata.stdout)?;
    let root = std::path::Path::new(manifest.trim())
        .parent()
        .ok_or_else(|| anyhow!("workspace root not found"))?
        .join("agent-ebpf");
    let root = root.to_str().ok_or_else(|| anyhow!("non-UTF-8 path"))?;
    // aya-build watches the kernel crate; the types it shares with us change it too.
    println!("cargo:rerun-if-changed={root}/../agent-common");
    aya_build::build_ebpf(
        [Package {
            name: "ward-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        Toolchain::Nightly,
    )
    .context("building the kernel programs (run `cargo xtask setup` first)")
}
