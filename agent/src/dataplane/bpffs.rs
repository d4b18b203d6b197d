//! Making sure the pin directory lies on a bpf filesystem.
use std::{io, path::Path};

use nix::{
    mount::{mount, MsFlags},
    sys::statfs::{statfs, BPF_FS_MAGIC},
};

const SYS_FS_BPF: &str = "/sys/fs/bpf";

/// Creates `pin_dir`, first mounting bpffs where needed: on `/sys/fs/bpf` when the
/// directory lies below it (as after `ip netns exec`, which remounts `/sys`), else on
/// the directory itself.
pub fn ensure_pin_dir(pin_dir: &Path) -> io::Result<()> {
    if !is_bpffs(pin_dir)? {
        let mount_point = if pin_dir.starts_with(SYS_FS_BPF) {
            Path::new(SYS_FS_BPF)
        } else {
            pin_dir
        };
        std::fs::create_dir_all(mount_point)?;
        mount_bpffs(mount_point)?;
    }
    std::fs::create_dir_all(pin_dir)?;
    if is_bpffs(pin_dir)? {
        Ok(())
    } else {
        Err(io::Error::other(
            "not on a bpf filesystem after mounting one",
        ))
    }
}

/// Whether the nearest existing ancestor of `path` is on bpffs.
fn is_bpffs(path: &Path) -> io::Result<bool> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    Ok(statfs(existing)?.filesystem_type() == BPF_FS_MAGIC)
}

fn mount_bpffs(at: &Path) -> io::Result<()> {
    mount(Some("bpf"), at, Some("bpf"), MsFlags::empty(), None::<&str>)?;
    Ok(())
}
