//! The lock-out preflight in the daemon: a policy about to be put in force (reload,
//! apply, start) is refused when it would cut an established session to a management
//! port, unless forced (`crate::preflight`).
use tracing::warn;

use super::Agent;
use crate::{
    policy::Loaded,
    preflight::{self, PreflightError},
};

impl Agent {
    /// Whether `new` may replace `current` (`None`: nothing known in force, every
    /// session counts): the refusal, naming each session it would cut, unless `force`
    /// (then logged). `how_to_force` ends the refusal: how to put it in force anyway.
    pub(super) fn lock_out(
        &self,
        new: &Loaded,
        current: Option<&Loaded>,
        force: bool,
        how_to_force: &str,
    ) -> Result<(), String> {
        let current = current.map(|c| &c.policy);
        match preflight::check(&new.policy, current, &self.config) {
            Ok(()) => Ok(()),
            Err(e) if force => {
                warn!("lock-out preflight overridden (forced): {e}");
                Ok(())
            }
            Err(e @ PreflightError::WouldCut(_)) => Err(format!(
                "{e}; nothing was changed ({how_to_force} puts it in force anyway)"
            )),
            Err(e) => Err(format!(
                "the lock-out preflight cannot see the established sessions: {e}; nothing \
                 was changed ({how_to_force} puts it in force anyway)"
            )),
        }
    }
}
