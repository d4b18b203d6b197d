//! Making sure the pin directory lies on a bpf filesystem.
use std::{ffi::CString, io, os::unix::ffi::OsStrExt, path::Path};

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
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
    let c = CString::new(existing.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stat.f_type as i64 == BPF_FS_MAGIC)
}

fn mount_bpffs(at: &Path) -> io::Result<()> {
    let target = CString::new(at.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let fstype = c"bpf";
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
