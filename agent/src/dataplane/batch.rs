//! Many entries of a map written or removed in one `bpf()` call:
//! `BPF_MAP_UPDATE_BATCH` and `BPF_MAP_DELETE_BATCH`, which aya 0.14 does not offer.
//! Hash maps take them since Linux 5.6, LPM tries on the kernels that give them the
//! generic batch operations (6.18 does). Where a kernel refuses a batch for a map
//! (`EINVAL`, `ENOTSUPP`, `EOPNOTSUPP`), or stops one for memory (`ENOMEM`: the
//! allocator of `BPF_F_NO_PREALLOC` maps refills its per-CPU caches asynchronously,
//! which one long call may outrun on some machines), the entries the batch did not
//! reach are written one `bpf()` call each: the map ends up the same, and only an
//! entry refused on its own is an error.
//!
//! The attributes are the kernel's `union bpf_attr` members for these commands,
//! declared here field for field (`include/uapi/linux/bpf.h`):
//!
//! ```text
//! struct { /* BPF_MAP_*_BATCH */          struct { /* BPF_MAP_*_ELEM */
//!     __aligned_u64 in_batch;                 __u32 map_fd;
//!     __aligned_u64 out_batch;                __aligned_u64 key;
//!     __aligned_u64 keys;                     __aligned_u64 value;
//!     __aligned_u64 values;                   __u64 flags;
//!     __u32 count;                        };
//!     __u32 map_fd;
//!     __u64 elem_flags;
//!     __u64 flags;
//! } batch;
//! ```
use std::{
    io,
    mem::size_of,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
};

use aya::{
    maps::{MapData, MapError},
    Pod,
};
use nix::libc;

/// `enum bpf_cmd` values (stable kernel ABI).
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_MAP_UPDATE_BATCH: u32 = 26;
const BPF_MAP_DELETE_BATCH: u32 = 27;
/// The kernel's `ENOTSUPP` (not in libc: it never reaches user space but from `bpf()`),
/// what it answers for a map type without batch operations.
const ENOTSUPP: i32 = 524;

/// A batch or single-entry write the kernel refused for a reason other than not
/// offering batches.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The map's key and value sizes could not be read.
    #[error("reading the map's key and value sizes")]
    Info(#[source] MapError),
    /// The entries given are not of the map's key or value size.
    #[error("entries of {key} and {value} bytes for a map of {map_key} and {map_value}")]
    Size {
        /// Key size given.
        key: usize,
        /// Value size given (0 to remove).
        value: usize,
        /// The map's key size.
        map_key: u32,
        /// The map's value size.
        map_value: u32,
    },
    /// A batch stopped at an entry (map full, a key to remove missing…).
    #[error("{op} stopped after {done} of {count} entries")]
    Batch {
        /// `update` or `delete`.
        op: &'static str,
        /// Entries written or removed before it stopped.
        done: usize,
        /// Entries of the batch.
        count: usize,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A single-entry write or removal (after the kernel refused the batch).
    #[error("{op} of entry {index} (one entry a call: the kernel refused the batch)")]
    Entry {
        /// `update` or `delete`.
        op: &'static str,
        /// The entry's index among those given.
        index: usize,
        /// The kernel's answer.
        source: io::Error,
    },
}

/// How the entries went in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// One batch call.
    Batch,
    /// The kernel refused the batch: one call per entry from `from` on (those before
    /// it went in by batch).
    PerEntry {
        /// The first entry written one call each.
        from: usize,
    },
}

/// `union bpf_attr`'s `batch` member.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// `union bpf_attr`'s member for the `BPF_MAP_*_ELEM` commands.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Writes `values[i]` under `keys[i]` (create or replace) into `map`.
pub fn update<K: Pod, V: Pod>(map: &MapData, keys: &[K], values: &[V]) -> Result<Path, BatchError> {
    assert_eq!(keys.len(), values.len(), "one value per key");
    check_sizes(map, size_of::<K>(), Some(size_of::<V>()))?;
    let fd = map.fd().as_fd();
    let op = "update";
    let path = batch(BPF_MAP_UPDATE_BATCH, op, fd, keys, values.as_ptr() as u64)?;
    if let Path::PerEntry { from } = path {
        for (index, (key, value)) in keys.iter().zip(values).enumerate().skip(from) {
            let mut attr = ElemAttr {
                map_fd: fd.as_raw_fd() as u32,
                key: key as *const K as u64,
                value: value as *const V as u64,
                flags: 0,
            };
            bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map_err(|source| BatchError::Entry {
                op,
                index,
                source,
            })?;
        }
    }
    Ok(path)
}

/// Removes `keys` from `map`; every key must be there.
pub fn delete<K: Pod>(map: &MapData, keys: &[K]) -> Result<Path, BatchError> {
    check_sizes(map, size_of::<K>(), None)?;
    let fd = map.fd().as_fd();
    let op = "delete";
    let path = batch(BPF_MAP_DELETE_BATCH, op, fd, keys, 0)?;
    if let Path::PerEntry { from } = path {
        for (index, key) in keys.iter().enumerate().skip(from) {
            let mut attr = ElemAttr {
                map_fd: fd.as_raw_fd() as u32,
                key: key as *const K as u64,
                ..Default::default()
            };
            bpf(BPF_MAP_DELETE_ELEM, &mut attr).map_err(|source| BatchError::Entry {
                op,
                index,
                source,
            })?;
        }
    }
    Ok(path)
}

/// Refuses entries whose key (or value, when given) size is not the map's: the kernel
/// reads the map's sizes from the addresses passed.
fn check_sizes(map: &MapData, key: usize, value: Option<usize>) -> Result<(), BatchError> {
    let info = map.info().map_err(BatchError::Info)?;
    let (map_key, map_value) = (info.key_size(), info.value_size());
    if key != map_key as usize || value.is_some_and(|v| v != map_value as usize) {
        return Err(BatchError::Size {
            key,
            value: value.unwrap_or(0),
            map_key,
            map_value,
        });
    }
    Ok(())
}

/// One batch call of `cmd` over `keys` (and `values`, a pointer to as many values, or
/// 0). A refusal (`EINVAL`, `ENOTSUPP`, `EOPNOTSUPP`, `ENOMEM`) is not an error: the
/// entries the kernel did not reach are for the caller to write one by one.
fn batch<K: Pod>(
    cmd: u32,
    op: &'static str,
    fd: BorrowedFd<'_>,
    keys: &[K],
    values: u64,
) -> Result<Path, BatchError> {
    if keys.is_empty() {
        return Ok(Path::Batch);
    }
    let count = u32::try_from(keys.len()).expect("fewer entries than a map holds");
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        values,
        count,
        map_fd: fd.as_raw_fd() as u32,
        ..Default::default()
    };
    match bpf(cmd, &mut attr) {
        Ok(()) => Ok(Path::Batch),
        // The kernel writes back how many entries it did when it stopped at one; left
        // as given, it did none (it refused before the first).
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | ENOTSUPP | libc::EOPNOTSUPP | libc::ENOMEM)
            ) =>
        {
            let from = if attr.count < count { attr.count } else { 0 };
            Ok(Path::PerEntry {
                from: from as usize,
            })
        }
        Err(source) => Err(BatchError::Batch {
            op,
            done: attr.count.min(count) as usize,
            count: keys.len(),
            source,
        }),
    }
}

/// Marks the attribute types [`bpf`] takes.
trait Attr {}
impl Attr for BatchAttr {}
impl Attr for ElemAttr {}

/// The `bpf(2)` system call with `attr` for `cmd`.
fn bpf<A: Attr>(cmd: u32, attr: &mut A) -> io::Result<()> {
    // SAFETY: `attr` is one of this module's `#[repr(C)]` copies of a `union bpf_attr`
    // member, borrowed exclusively for the call and passed with its exact size (the
    // kernel reads that many bytes and zero-fills the rest of its union, and writes
    // back only within them: `count`). The addresses in it point into slices or values
    // the callers borrow across the call, of the sizes the map's key and value sizes
    // name (the callers' `K` and `V`, checked against the map by `check_sizes`).
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut A as *mut libc::c_void,
            size_of::<A>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
