//! One-shot CLI commands, independent of the argument parser: `main.rs` calls them.
mod assets;
mod breakglass;
mod check;
mod explain;
mod fleet;
mod fleet_view;
mod flows;
mod flows_history;
mod policy;
mod policy_diff;
mod policy_input;
mod policy_services;
mod policy_test;
mod quarantine;
mod reload;
mod status;
mod status_json;
mod table;
mod top;
mod uninstall;

pub use assets::generate_assets;
pub use breakglass::{breakglass, end_breakglass, list_breakglass, BreakglassArgs};
pub use check::{check, CheckOptions};
pub use explain::{explain, ExplainArgs};
pub use fleet::fleet_status;
pub use flows::{flows, FlowsOptions};
pub use policy::{keygen, sign, verify, SignOptions};
pub use policy_diff::policy_diff;
pub use policy_services::policy_services;
pub use policy_test::policy_test;
pub use quarantine::{list_quarantines, quarantine, release};
pub use reload::{confirm, reload};
pub use status::status;
pub use top::top;
pub use uninstall::uninstall;

#[cfg(test)]
mod bundle_input_tests;
#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod control_tests;
#[cfg(test)]
mod explain_tests;
#[cfg(test)]
mod fleet_tests;
#[cfg(test)]
mod flows_tests;
#[cfg(test)]
mod policy_sign_tests;
#[cfg(test)]
mod policy_test_tests;
#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;

    const CLINIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/clinic.toml");

    #[test]
    fn check_exit_codes() {
        let options = super::CheckOptions::default();
        assert_eq!(
            super::check(&[PathBuf::from(CLINIC)], &options),
            ExitCode::SUCCESS
        );
        let missing = PathBuf::from(CLINIC).with_file_name("does-not-exist.toml");
        assert_eq!(super::check(&[missing], &options), ExitCode::FAILURE);
    }

    const DIFF_FIXTURES: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/policy-diff");

    /// Runs `ward policy diff` on two paths: exit code and output.
    fn diff(old: &Path, new: &Path, json: bool) -> (ExitCode, String) {
        let mut out = Vec::new();
        let code = super::policy_diff(old, new, json, &[], &mut out).expect("diff runs");
        (code, String::from_utf8(out).expect("UTF-8"))
    }

    #[test]
    fn policy_diff_exit_codes_and_output() {
        let dir = Path::new(DIFF_FIXTURES);
        let (old, new) = (dir.join("old.toml"), dir.join("new.toml"));
        let (code, text) = diff(&old, &new, false);
        assert_eq!(code, ExitCode::FAILURE);
        let first = format!(
            "  + allow admin -> ehr tcp/8000-8004,8006-8020  [by {}:32]",
            new.display()
        );
        assert_eq!(text.lines().nth(1), Some(first.as_str()));
        let (code, json) = diff(&old, &new, true);
        assert_eq!(code, ExitCode::FAILURE);
        let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(json["format"], "ward-policy-diff/1");
        assert_eq!(json["changed"], true);

        // A directory holding the same policy: no difference.
        let same = std::env::temp_dir().join(format!("ward-diff-{}", std::process::id()));
        std::fs::create_dir_all(&same).unwrap();
        std::fs::copy(&new, same.join("policy.toml")).unwrap();
        let (code, text) = diff(&new, &same, false);
        assert_eq!(
            (code, text.as_str()),
            (
                ExitCode::SUCCESS,
                "No difference in what the policies allow.\n"
            )
        );

        std::fs::write(
            same.join("policy.toml"),
            "[zones.a]\ncidrs = [\"10.0.0.0/33\"]\n",
        )
        .unwrap();
        let (code, text) = diff(&old, &same, false);
        assert_eq!((code, text.as_str()), (ExitCode::from(2), ""));
        std::fs::remove_dir_all(&same).unwrap();
    }

    #[test]
    fn policy_services_lists_the_catalogue() {
        let mut out = Vec::new();
        assert_eq!(
            super::policy_services(false, &mut out).unwrap(),
            ExitCode::SUCCESS
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("dicom ") && l.contains("104,11112")),
            "{text}"
        );
        let mut out = Vec::new();
        super::policy_services(true, &mut out).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let dns = json
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "dns")
            .expect("dns");
        assert_eq!(
            (dns["tcp"].clone(), dns["udp"].clone()),
            (serde_json::json!([53]), serde_json::json!([53]))
        );
    }
}
