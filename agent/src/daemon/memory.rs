//! Giving back to the system the heap a policy load used and freed. Checking and
//! compiling a large policy needs many times the memory of its compiled form for a
//! moment; the C allocator keeps what was freed for later use (its resident size stays
//! near that peak) unless asked to return it, which this does after each load.

/// Large allocations (the policy text, the compiled entry lists) are mapped on their
/// own from this size on, so that freeing one returns it at once.
#[cfg(target_env = "gnu")]
const MMAP_THRESHOLD: nix::libc::c_int = 128 * 1024;

/// Sets the allocator up for the daemon: large allocations mapped on their own,
/// always (glibc otherwise raises the threshold as they are freed, and a later policy
/// load then spreads its large buffers over the heap it fragments); and one arena for
/// every thread. The threads that load the programs and write the rule tables would
/// otherwise get arenas of their own, whose heaps glibc shrinks after reading
/// `/proc/sys/vm/overcommit_memory`, which `ProcSubset=pid` hides from the service
/// (the resident size measured the same with one arena).
pub(super) fn configure() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes tuning parameters of the allocator (called before
    // any thread starts).
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
    }
}

/// Returns the free heap pages to the system (`malloc_trim`, glibc only).
pub(super) fn release_freed() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases memory the allocator holds free; no pointer
    // of this process is affected.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}
