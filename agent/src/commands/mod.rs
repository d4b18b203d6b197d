//! One-shot CLI commands, independent of the argument parser: `main.rs` calls them.
mod check;
mod explain;

pub use check::check;
pub use explain::explain;
