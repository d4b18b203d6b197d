//! systemd readiness (`Type=notify`): `READY=1` once enforcement is in place,
//! `STOPPING=1` when the agent stops. Nothing is sent without `NOTIFY_SOCKET`.
use sd_notify::NotifyState;
use tracing::warn;

/// Tells systemd the agent enforces (`READY=1`).
pub fn ready() {
    notify(NotifyState::Ready);
}

/// Tells systemd the agent is stopping (`STOPPING=1`).
pub fn stopping() {
    notify(NotifyState::Stopping);
}

fn notify(state: NotifyState) {
    let message = state.to_string();
    if let Err(e) = sd_notify::notify(&[state]) {
        warn!("cannot notify systemd ({message}): {e}");
    }
}
