//! Attaching the programs to an interface: XDP on ingress, TC on egress, links pinned.
//!
//! A link pinned by an earlier agent process (one that crashed, or was killed) is
//! adopted: the new program replaces the old one in the same link with one
//! `bpf_link_update`, so the interface is never without a program.
use std::path::{Path, PathBuf};

use aya::{
    programs::{
        links::{FdLink, PinnedLink},
        tc::{self, SchedClassifierLink},
        xdp::XdpLink,
        SchedClassifier, TcAttachType, Xdp, XdpMode,
    },
    Ebpf,
};
use tracing::{info, warn};
use ward_common::program_names;

use super::DataplaneError;

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
    if !tcx_supported() {
        if let Err(e) = tc::qdisc_add_clsact(interface) {
            if !matches!(&e, tc::TcError::IoError(io) if io.kind() == std::io::ErrorKind::AlreadyExists)
            {
                attachment.detach();
                return Err(fail(format!("adding clsact qdisc: {e}")));
            }
        }
    }
    let adopted = adopt(&pin, interface, "TC").and_then(|old| {
        let link = SchedClassifierLink::try_from(old).ok()?;
        classifier
            .attach_to_link(link)
            .map_err(|e| {
                warn!("{interface}: replacing the TC program failed ({e}); attaching anew")
            })
            .ok()
    });
    let attached = match adopted {
        Some(id) => Ok(id),
        None => classifier.attach(interface, TcAttachType::Egress),
    };
    let id = match attached {
        Ok(id) => id,
        Err(e) => {
            attachment.detach();
            return Err(fail(format!("TC egress attach: {e}")));
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
