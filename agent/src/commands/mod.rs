//! One-shot CLI commands.
