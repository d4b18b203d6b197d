//! Giving back to the system the heap a policy load used and freed. Checking and
//! compiling a large policy needs many times the memory of its compiled form for a
//! moment; the C allocator keeps what was freed for later use (its resident size stays
//! near that peak) unless asked to return it, which this does after each load.

/// Returns the free heap pages to the system (`malloc_trim`, glibc only).
pub(super) fn release_freed() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases memory the allocator holds free; no pointer
    // of this process is affected.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}
