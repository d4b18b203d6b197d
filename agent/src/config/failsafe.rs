//! `[failsafe]`: management access no policy can remove, and commit-confirmed reloads.
use serde::{Deserialize, Serialize};

use super::Role;

/// `[failsafe]`: management access honoured in the kernel ahead of quarantine and
/// policy, as Calico's failsafe ports are.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FailsafeConfig {
    /// Management prefixes allowed to reach `tcp_ports` on every host Ward guards
    /// (and to get the replies); empty: no failsafe.
    pub management: Vec<ipnet::IpNet>,
    /// TCP ports the management prefixes may always reach (at most 8); the lock-out
    /// preflight looks at the established sessions to them.
    #[serde(deserialize_with = "failsafe_ports")]
    pub tcp_ports: Vec<u16>,
    /// Every reload (file change, SIGHUP, `ward reload`), and a start whose policy is
    /// not the last good (last confirmed) one, is commit-confirmed with this window, as
    /// `ward apply --confirm-within` is; absent: reloads need no confirmation.
    #[serde(with = "humantime_serde")]
    pub confirm_within: Option<std::time::Duration>,
    /// `host:port` the agent connects to while a policy awaits confirmation: when it
    /// answers, the policy is confirmed without `ward confirm`.
    pub confirm_probe: Option<std::net::SocketAddr>,
}

impl Default for FailsafeConfig {
    fn default() -> Self {
        FailsafeConfig {
            management: Vec::new(),
            tcp_ports: vec![22],
            confirm_within: None,
            confirm_probe: None,
        }
    }
}

impl FailsafeConfig {
    /// Whether any management access is guaranteed.
    pub fn is_active(&self) -> bool {
        !self.management.is_empty() && !self.tcp_ports.is_empty()
    }

    /// The warning an agent of `role` with this failsafe deserves: a host whose
    /// failsafe guarantees no management access can be cut off from its
    /// administrators by one policy mistake. A gateway's own management goes through
    /// its failsafe too, but it does not run on the administrators' only way in.
    pub fn warning(&self, role: Role) -> Option<String> {
        if role != Role::Host || self.is_active() {
            return None;
        }
        let empty = match self.management.is_empty() {
            true => "`[failsafe] management` is empty",
            false => "`[failsafe] tcp_ports` is empty",
        };
        Some(format!(
            "role = \"host\" and {empty}: no management access is guaranteed, so a policy \
             mistake can lock the administrators out of this host; list the management \
             prefixes in [failsafe] management (and the ports in tcp_ports)"
        ))
    }
}

fn failsafe_ports<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    use serde::de::Error as _;
    let ports = Vec::<u16>::deserialize(d)?;
    if ports.len() > ward_common::FAILSAFE_PORTS {
        return Err(D::Error::custom(format!(
            "at most {} failsafe ports",
            ward_common::FAILSAFE_PORTS
        )));
    }
    if ports.contains(&0) {
        return Err(D::Error::custom("port 0 cannot be a failsafe port"));
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::{FailsafeConfig, Role};

    #[test]
    fn a_host_without_management_access_is_warned_about() {
        let none = FailsafeConfig::default();
        assert_eq!(
            none.warning(Role::Host).as_deref(),
            Some(
                "role = \"host\" and `[failsafe] management` is empty: no management access is \
                 guaranteed, so a policy mistake can lock the administrators out of this host; \
                 list the management prefixes in [failsafe] management (and the ports in tcp_ports)"
            )
        );
        assert_eq!(none.warning(Role::Gateway), None);
        let managed = FailsafeConfig {
            management: vec!["198.18.24.0/24".parse().unwrap()],
            ..FailsafeConfig::default()
        };
        assert_eq!(managed.warning(Role::Host), None);
        let no_ports = FailsafeConfig {
            tcp_ports: Vec::new(),
            ..managed
        };
        assert!(no_ports
            .warning(Role::Host)
            .unwrap()
            .starts_with("role = \"host\" and `[failsafe] tcp_ports` is empty: "));
    }
}
