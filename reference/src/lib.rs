//! Ward's reference dataplane and fuzz entry points: development code, kept out of the
//! shipped `ward` binary.
//!
//! [`ReferenceDataplane`] judges Ethernet frames exactly as `docs/dataplane.md` says,
//! in plain Rust; the differential test (`tests/tests/differential.rs`) holds the kernel
//! programs to it. [`fuzz`] holds the entry points of the fuzz targets in `fuzz/`.
pub mod build;
mod dataplane;
mod frame;
pub mod fuzz;
#[cfg(test)]
mod tests;

pub use dataplane::ReferenceDataplane;
