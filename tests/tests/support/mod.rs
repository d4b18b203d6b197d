//! Helpers shared by the kernel tests.
pub mod frames;
