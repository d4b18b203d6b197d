//! One-shot CLI commands, independent of the argument parser: `main.rs` calls them.
mod assets;
mod check;
mod explain;
mod flows;
mod quarantine;
mod reload;
mod status;
mod top;
mod uninstall;

pub use assets::generate_assets;
pub use check::check;
pub use explain::explain;
pub use flows::flows;
pub use quarantine::{list_quarantines, quarantine, release};
pub use reload::{confirm, reload};
pub use status::status;
pub use top::top;
pub use uninstall::uninstall;

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;

    const CLINIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/clinic.toml");

    #[test]
    fn check_exit_codes() {
        assert_eq!(super::check(&[PathBuf::from(CLINIC)]), ExitCode::SUCCESS);
        let missing = PathBuf::from(CLINIC).with_file_name("does-not-exist.toml");
        assert_eq!(super::check(&[missing]), ExitCode::FAILURE);
    }

    #[test]
    fn explain_answers_queries_and_rejects_bad_input() {
        let clinic = Path::new(CLINIC);
        assert_eq!(
            super::explain(clinic, "198.18.20.5", "198.18.21.1", "tcp/104").ok(),
            Some(ExitCode::SUCCESS)
        );
        assert_eq!(
            super::explain(clinic, "198.18.20.5", "198.18.23.1", "tcp/443").ok(),
            Some(ExitCode::SUCCESS)
        );
        let err = super::explain(clinic, "198.18.20.500", "198.18.21.1", "tcp/104").unwrap_err();
        assert_eq!(err.to_string(), "bad source address `198.18.20.500`");
        assert!(super::explain(clinic, "198.18.20.5", "2001:db8::1", "tcp/104").is_err());
        assert!(super::explain(clinic, "198.18.20.5", "198.18.21.1", "tcp/http").is_err());
    }
}
