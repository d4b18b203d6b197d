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
use nix::errno::Errno;
use tracing::{info, warn};
use ward_common::program_names;

use super::{
    uninstall::{detach_classifier, unpin_link, TC_LINK_PREFIX, XDP_LINK_PREFIX},
    DataplaneError,
};

/// Priority of Ward's egress classifier on a clsact qdisc (kernels before 6.6): fixed,
/// so that a restarted agent finds its predecessor's; unusual (`WD`), so that it is
/// Ward's it replaces.
const CLSACT_PRIORITY: u16 = 0x5744;
/// Handle of that classifier (the only one at its priority).
const CLSACT_HANDLE: TcHandle = TcHandle::new(0, 1);

/// Where a program runs on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// The XDP program, on ingress.
    XdpIngress,
    /// The TC classifier, on egress.
    TcEgress,
}

impl Hook {
    /// Both hooks, in the order they are attached.
    pub const ALL: [Hook; 2] = [Hook::XdpIngress, Hook::TcEgress];

    /// `xdp-ingress` or `tc-egress`, as in `ward status` and the metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Hook::XdpIngress => "xdp-ingress",
            Hook::TcEgress => "tc-egress",
        }
    }

    /// The pin of this hook's link on `interface`.
    fn pin(self, pin_dir: &Path, interface: &str) -> PathBuf {
        match self {
            Hook::XdpIngress => pin_dir.join(format!("{XDP_LINK_PREFIX}{interface}")),
            Hook::TcEgress => pin_dir.join(format!("{TC_LINK_PREFIX}{interface}")),
        }
    }
}

/// The programs attached to one interface; their links are pinned so that enforcement
/// outlives the agent process until [`Attachment::detach`].
pub struct Attachment {
    /// Interface name.
    pub interface: String,
    /// Its index when attached: a re-created interface of the same name has another.
    pub ifindex: u32,
    /// Hooks found without the program and not attached again yet.
    pub down: Vec<Hook>,
    pin_dir: PathBuf,
}

/// Attaches both programs to `interface` (adopting links an earlier agent pinned) and
/// pins their links in `pin_dir`.
pub fn attach(
    ebpf: &mut Ebpf,
    pin_dir: &Path,
    interface: &str,
) -> Result<Attachment, DataplaneError> {
    if interface.contains('\0') {
        return Err(DataplaneError::Interface {
            interface: interface.to_owned(),
            message: "the name contains a NUL byte".into(),
        });
    }
    let ifindex = match nix::net::if_::if_nametoindex(interface) {
        Ok(index) => index,
        Err(_) => {
            return Err(DataplaneError::Interface {
                interface: interface.to_owned(),
                message: "no such interface (in this network namespace)".into(),
            })
        }
    };
    let attachment = Attachment {
        interface: interface.to_owned(),
        ifindex,
        down: Vec::new(),
        pin_dir: pin_dir.to_owned(),
    };
    for hook in Hook::ALL {
        if let Err(e) = attachment.attach_hook(ebpf, hook, true) {
            attachment.detach();
            return Err(e);
        }
    }
    Ok(attachment)
}

impl Attachment {
    /// Attaches `hook`'s program anew after it was found missing: the stale pin (of a
    /// link someone detached) goes first, then a new link is made and pinned.
    pub fn reattach(&mut self, ebpf: &mut Ebpf, hook: Hook) -> Result<(), DataplaneError> {
        self.remove_pin(hook);
        self.attach_hook(ebpf, hook, false)?;
        self.down.retain(|h| *h != hook);
        Ok(())
    }

    /// Detaches by removing the pinned links (the last reference to each link).
    pub fn detach(self) {
        for hook in Hook::ALL {
            self.remove_pin(hook);
        }
        if !tcx_supported() {
            detach_classifier(&self.interface);
        }
    }

    fn remove_pin(&self, hook: Hook) {
        unpin_link(&hook.pin(&self.pin_dir, &self.interface));
    }

    /// Attaches one hook's program, adopting a pinned link when `adopt`.
    fn attach_hook(&self, ebpf: &mut Ebpf, hook: Hook, adopt: bool) -> Result<(), DataplaneError> {
        let interface = self.interface.as_str();
        let fail = |message: String| DataplaneError::Interface {
            interface: interface.to_owned(),
            message,
        };
        let pin = hook.pin(&self.pin_dir, interface);
        let old = adopt.then(|| adopt_pinned(&pin, interface, hook)).flatten();
        let link = match hook {
            Hook::XdpIngress => {
                let xdp: &mut Xdp = program(ebpf, program_names::XDP_INGRESS)?;
                let adopted = old.and_then(|old| {
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
                        .map_err(|e| fail(format!("XDP attach: {}", why(e))))?,
                };
                let link = xdp
                    .take_link(id)
                    .map_err(|e| fail(format!("XDP link: {}", why(e))))?;
                FdLink::try_from(link).map_err(|e| fail(format!("XDP link: {}", why(e))))?
            }
            Hook::TcEgress => {
                let classifier: &mut SchedClassifier = program(ebpf, program_names::TC_EGRESS)?;
                // TCX links below 6.6 do not exist: there the classifier hangs off a clsact qdisc.
                let id = if tcx_supported() {
                    let adopted = old.and_then(|old| {
                        let link = SchedClassifierLink::try_from(old).ok()?;
                        classifier
                            .attach_to_link(link)
                            .map_err(|e| {
                                warn!("{interface}: replacing the TC program failed ({e}); attaching anew")
                            })
                            .ok()
                    });
                    match adopted {
                        Some(id) => id,
                        None => classifier
                            .attach(interface, TcAttachType::Egress)
                            .map_err(|e| fail(format!("TC egress attach: {}", why(e))))?,
                    }
                } else {
                    attach_clsact(classifier, interface).map_err(fail)?
                };
                let link = classifier
                    .take_link(id)
                    .map_err(|e| fail(format!("TC link: {}", why(e))))?;
                // A netlink-attached classifier (before 6.6) stays on the qdisc without a
                // link to pin.
                match FdLink::try_from(link) {
                    Ok(fd_link) => fd_link,
                    Err(_) => return Ok(()),
                }
            }
        };
        // The old pin (of an adopted link) goes; the link lives on through our descriptor.
        let _ = std::fs::remove_file(&pin);
        link.pin(&pin)
            .map_err(|e| fail(format!("pinning {}: {}", pin.display(), why(e))))?;
        Ok(())
    }
}

/// The link an earlier agent pinned at `pin`, if there is one.
/// Below 6.6: a clsact qdisc (added unless there is one) with the classifier at
/// [`CLSACT_PRIORITY`] and [`CLSACT_HANDLE`]. A classifier an earlier agent left there
/// (netlink filters outlive their process) gets the new program in place, in one
/// change, as a pinned link would; only when there is none is one created.
fn attach_clsact(
    classifier: &mut SchedClassifier,
    interface: &str,
) -> Result<SchedClassifierLinkId, String> {
    if let Err(e) = tc::qdisc_add_clsact(interface) {
        let exists = matches!(&e, tc::TcError::NetlinkError(n) if n.raw_os_error() == Some(Errno::EEXIST as i32));
        if !exists {
            return Err(format!("adding clsact qdisc: {}", why(e)));
        }
    }
    let attach = TcAttachType::Egress;
    let old =
        SchedClassifierLink::attached(interface, attach, CLSACT_PRIORITY, CLSACT_HANDLE, None)
            .map_err(|e| format!("TC egress attach: {}", why(e)))?;
    match classifier.attach_to_link(old) {
        Ok(id) => {
            info!("{interface}: adopting the TC classifier left by an earlier agent");
            return Ok(id);
        }
        // ENOENT: no classifier there to replace.
        Err(e) if !is_os_error(&e, Errno::ENOENT) => {
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
        .map_err(|e| format!("TC egress attach: {}", why(e)))
}

/// Whether a netlink attach failed with the OS error `code`.
fn is_os_error(e: &ProgramError, code: Errno) -> bool {
    matches!(e, ProgramError::TcError(tc::TcError::NetlinkError(n)) if n.raw_os_error() == Some(code as i32))
}

fn adopt_pinned(pin: &Path, interface: &str, hook: Hook) -> Option<FdLink> {
    let old = PinnedLink::from_pin(pin).ok()?;
    let kind = match hook {
        Hook::XdpIngress => "XDP",
        Hook::TcEgress => "TC",
    };
    info!("{interface}: adopting the {kind} link left pinned by an earlier agent");
    Some(FdLink::from(old))
}

/// An error with its causes, on one line.
fn why(e: impl std::error::Error + Send + Sync + 'static) -> String {
    format!("{:#}", anyhow::Error::from(e))
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

/// Whether the kernel has TCX links (6.6 and later); below, the classifier is a
/// netlink filter on a clsact qdisc.
pub fn tcx_supported() -> bool {
    use aya::util::KernelVersion;
    KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0))
}
