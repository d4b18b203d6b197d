//! Attaching the programs to an interface: XDP on ingress, TC on egress, links pinned.
//!
//! A link pinned by an earlier agent process (one that crashed, or was killed) is
//! adopted: the new program replaces the old one in the same link with one
//! `bpf_link_update`, so the interface is never without a program.
use std::path::{Path, PathBuf};

use aya::{
    programs::{
        links::{FdLink, PinnedLink},
        tc::{
            self, NlOptions, SchedClassifierLink, SchedClassifierLinkId, TcAttachOptions, TcHandle,
        },
        xdp::XdpLink,
        ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode,
    },
    Ebpf,
};
use tracing::{info, warn};
use ward_common::program_names;

use super::DataplaneError;

/// Priority of Ward's egress classifier on a clsact qdisc (kernels before 6.6): fixed,
/// so that a restarted agent finds its predecessor's; unusual (`WD`), so that it is
/// Ward's it replaces.
const CLSACT_PRIORITY: u16 = 0x5744;
/// Handle of that classifier (the only one at its priority).
const CLSACT_HANDLE: TcHandle = TcHandle::new(0, 1);

/// The programs attached to one interface; their links are pinned so that enforcement
/// outlives the agent process until [`Attachment::detach`].
pub struct Attachment {
    interface: String,
    pins: Vec<PathBuf>,
}

/// Attaches both programs to `interface` (adopting links an earlier agent pinned) and
/// pins their links in `pin_dir`.
pub fn attach(
    ebpf: &mut Ebpf,
    pin_dir: &Path,
    interface: &str,
) -> Result<Attachment, DataplaneError> {
    let fail = |message: String| DataplaneError::Interface {
        interface: interface.to_owned(),
        message,
    };
    let mut attachment = Attachment {
        interface: interface.to_owned(),
        pins: Vec::new(),
    };

    let xdp: &mut Xdp = program(ebpf, program_names::XDP_INGRESS)?;
    let pin = pin_dir.join(format!("link_xdp_{interface}"));
    let adopted = adopt(&pin, interface, "XDP").and_then(|old| {
        let link = XdpLink::try_from(old).ok()?;
        xdp.attach_to_link(link)
            .map_err(|e| {
                warn!("{interface}: replacing the XDP program failed ({e}); attaching anew")
            })
            .ok()
    });
    let id = match adopted {
        Some(id) => id,
        None => xdp
            .attach(interface, XdpMode::Default)
            .map_err(|e| fail(format!("XDP attach: {e}")))?,
    };
    let link = xdp
        .take_link(id)
        .map_err(|e| fail(format!("XDP link: {e}")))?;
    pin_link(
        FdLink::try_from(link).map_err(|e| fail(format!("XDP link: {e}")))?,
        &pin,
        &fail,
    )?;
    attachment.pins.push(pin);

    let classifier: &mut SchedClassifier = program(ebpf, program_names::TC_EGRESS)?;
    let pin = pin_dir.join(format!("link_tc_{interface}"));
    // TCX links below 6.6 do not exist: there the classifier hangs off a clsact qdisc.
    let attached = if tcx_supported() {
        attach_tcx(classifier, &pin, interface)
    } else {
        attach_clsact(classifier, interface)
    };
    let id = match attached {
        Ok(id) => id,
        Err(message) => {
            attachment.detach();
            return Err(fail(message));
        }
    };
    let link = classifier
        .take_link(id)
        .map_err(|e| fail(format!("TC link: {e}")))?;
    // A netlink-attached classifier (before 6.6) stays on the qdisc without a link to pin.
    if let Ok(fd_link) = FdLink::try_from(link) {
        pin_link(fd_link, &pin, &fail)?;
        attachment.pins.push(pin);
    }
    Ok(attachment)
}

/// TCX (6.6 and later): replaces the program of the link an earlier agent pinned at
/// `pin`, else attaches anew.
fn attach_tcx(
    classifier: &mut SchedClassifier,
    pin: &Path,
    interface: &str,
) -> Result<SchedClassifierLinkId, String> {
    let adopted = adopt(pin, interface, "TC").and_then(|old| {
        let link = SchedClassifierLink::try_from(old).ok()?;
        classifier
            .attach_to_link(link)
            .map_err(|e| {
                warn!("{interface}: replacing the TC program failed ({e}); attaching anew")
            })
            .ok()
    });
    match adopted {
        Some(id) => Ok(id),
        None => classifier
            .attach(interface, TcAttachType::Egress)
            .map_err(|e| format!("TC egress attach: {e}")),
    }
}

/// Below 6.6: a clsact qdisc (added unless there is one) with the classifier at
/// [`CLSACT_PRIORITY`] and [`CLSACT_HANDLE`]. A classifier an earlier agent left there
/// (netlink filters outlive their process) gets the new program in place, in one
/// change, as a pinned link would; only when there is none is one created.
fn attach_clsact(
    classifier: &mut SchedClassifier,
    interface: &str,
) -> Result<SchedClassifierLinkId, String> {
    if let Err(e) = tc::qdisc_add_clsact(interface) {
        let exists =
            matches!(&e, tc::TcError::NetlinkError(n) if n.raw_os_error() == Some(libc::EEXIST));
        if !exists {
            return Err(format!("adding clsact qdisc: {e}"));
        }
    }
    let attach = TcAttachType::Egress;
    let old =
        SchedClassifierLink::attached(interface, attach, CLSACT_PRIORITY, CLSACT_HANDLE, None)
            .map_err(|e| format!("TC egress attach: {e}"))?;
    match classifier.attach_to_link(old) {
        Ok(id) => {
            info!("{interface}: adopting the TC classifier left by an earlier agent");
            return Ok(id);
        }
        // ENOENT: no classifier there to replace.
        Err(e) if !is_os_error(&e, libc::ENOENT) => {
            warn!("{interface}: replacing the TC classifier failed ({e}); attaching anew")
        }
        Err(_) => {}
    }
    let options = NlOptions {
        priority: CLSACT_PRIORITY,
        handle: CLSACT_HANDLE,
        ..NlOptions::default()
    };
    classifier
        .attach_with_options(interface, attach, TcAttachOptions::Netlink(options))
        .map_err(|e| format!("TC egress attach: {e}"))
}

/// Whether a netlink attach failed with the OS error `code`.
fn is_os_error(e: &ProgramError, code: i32) -> bool {
    matches!(e, ProgramError::TcError(tc::TcError::NetlinkError(n)) if n.raw_os_error() == Some(code))
}

/// The link an earlier agent pinned at `pin`, if there is one.
fn adopt(pin: &Path, interface: &str, hook: &str) -> Option<FdLink> {
    let old = PinnedLink::from_pin(pin).ok()?;
    info!("{interface}: adopting the {hook} link left pinned by an earlier agent");
    Some(FdLink::from(old))
}

impl Attachment {
    /// Detaches by removing the pinned links (the last reference to each link).
    pub fn detach(self) {
        for pin in &self.pins {
            if let Ok(link) = PinnedLink::from_pin(pin) {
                if let Ok(fd_link) = link.unpin() {
                    drop(fd_link);
                }
            }
            let _ = std::fs::remove_file(pin);
        }
        if !tcx_supported() {
            let _ = tc::qdisc_detach_program(
                &self.interface,
                TcAttachType::Egress,
                program_names::TC_EGRESS,
            );
        }
    }
}

fn pin_link(
    link: FdLink,
    pin: &Path,
    fail: &dyn Fn(String) -> DataplaneError,
) -> Result<(), DataplaneError> {
    // The old pin (of an adopted link) goes; the link lives on through our descriptor.
    let _ = std::fs::remove_file(pin);
    link.pin(pin)
        .map_err(|e| fail(format!("pinning {}: {e}", pin.display())))?;
    Ok(())
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, DataplaneError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(DataplaneError::Missing(name))?
        .try_into()
        .map_err(|source| DataplaneError::Program { name, source })
}

fn tcx_supported() -> bool {
    use aya::util::KernelVersion;
    KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0))
}
