//! Loading, pinning and attaching the kernel programs; writing their maps.
