//! Builds the kernel programs in `agent-ebpf` with the pinned toolchain
//! (`agent-ebpf/toolchain.toml`) and bpf-linker, after checking that both carry the
//! same LLVM major (a mismatch otherwise surfaces as bpf-linker's "Invalid record").
use anyhow::{anyhow, Context as _};
use aya_build::{Package, Toolchain};

#[path = "build/toolchain.rs"]
mod toolchain;

fn main() {
    // One line, not a backtrace: the messages say what is wrong and how to fix it.
    if let Err(e) = build() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn build() -> anyhow::Result<()> {
    let metadata =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["locate-project", "--workspace", "--message-format=plain"])
            .output()
            .context("cargo locate-project")?;
    let manifest = String::from_utf8(metadata.stdout)?;
    let workspace = std::path::Path::new(manifest.trim())
        .parent()
        .ok_or_else(|| anyhow!("workspace root not found"))?;
    let root = workspace.join("agent-ebpf");
    let root = root.to_str().ok_or_else(|| anyhow!("non-UTF-8 path"))?;
    // aya-build watches the kernel crate; the types it shares with us change it too.
    println!("cargo:rerun-if-changed={root}/../agent-common");
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join(toolchain::PIN_FILE).display()
    );
    let pin = toolchain::Pin::read(workspace)?;
    pin.check()?;
    aya_build::build_ebpf(
        [Package {
            name: "ward-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        Toolchain::Custom(&pin.toolchain),
    )
    .with_context(|| {
        format!(
            "building the kernel programs with {} and bpf-linker (LLVM {})",
            pin.toolchain, pin.llvm_major
        )
    })
}
