//! The lock-out preflight in the daemon: a policy about to be put in force (reload,
//! apply, start) is refused when it would cut an established session to a management
//! port, unless forced (`crate::preflight`).
use tracing::warn;

use super::Agent;
use crate::{
    policy::Loaded,
    preflight::{self, PreflightError, Session},
};

/// This namespace's established connections, read on a thread of their own while the
/// policy loads (the socket table's read walks the kernel's whole connection hash,
/// milliseconds on a large machine): what [`Agent::lock_out`] judges.
pub(super) struct Sessions(std::thread::JoinHandle<Result<Vec<Session>, PreflightError>>);

impl Sessions {
    /// Starts reading the socket tables.
    pub(super) fn read() -> Self {
        Sessions(std::thread::spawn(preflight::established))
    }

    /// The connections read, or why they could not be.
    fn take(self) -> Result<Vec<Session>, PreflightError> {
        self.0
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

impl Agent {
    /// Whether `new` may replace `current` (`None`: nothing known in force, every
    /// session counts): the refusal, naming each session it would cut, unless `force`
    /// (then logged). `how_to_force` ends the refusal: how to put it in force anyway.
    /// `sessions` is the read of the established connections started for this change.
    pub(super) fn lock_out(
        &self,
        new: &Loaded,
        current: Option<&Loaded>,
        sessions: Sessions,
        force: bool,
        how_to_force: &str,
    ) -> Result<(), String> {
        let current = current.map(|c| &c.policy);
        match preflight::check(&new.policy, current, &self.config, sessions.take()) {
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
