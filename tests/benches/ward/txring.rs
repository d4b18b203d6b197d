//! The throughput load: an `AF_PACKET` socket with a `TPACKET_V2` TX ring bound to the
//! sending veth, `PACKET_QDISC_BYPASS` set, the same frame in every slot. Each `send`
//! hands the kernel every slot marked for sending; the veth passes each frame to its
//! peer, whose XDP hook and stack judge it (in the sending thread's softirq, or in
//! `ksoftirqd` when deferred).
//!
//! This replaces `BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`, which the
//! kernels here refuse with EPERM; it needs nothing but a raw socket.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Context as _, Result};

/// Slots in the ring.
const FRAMES: u32 = 512;
/// Bytes per slot (header and frame).
const FRAME_SIZE: u32 = 2048;
/// Bytes per block: two slots.
const BLOCK_SIZE: u32 = 4096;
/// Where the frame starts in a slot: `TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)`,
/// the aligned `tpacket2_hdr`.
const DATA_OFFSET: usize = 32;
/// `tp_status` values of a TX slot.
const TP_STATUS_AVAILABLE: u32 = 0;
const TP_STATUS_SEND_REQUEST: u32 = 1;
const TP_STATUS_WRONG_FORMAT: u32 = 4;

/// A TX ring on one interface, every slot holding the same frame.
pub struct TxRing {
    fd: OwnedFd,
    ring: *mut u8,
    len: usize,
    frame_len: u32,
}

fn check(what: &str, r: libc::c_int) -> Result<()> {
    if r < 0 {
        bail!("{what}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn setsockopt<T>(fd: &OwnedFd, name: libc::c_int, v: &T, what: &str) -> Result<()> {
    // SAFETY: `v` points to a live T of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(what, r)
}

impl TxRing {
    /// Opens the ring on interface `ifindex` of the calling thread's network namespace
    /// and writes `frame` into every slot.
    pub fn open(ifindex: u32, frame: &[u8]) -> Result<TxRing> {
        if frame.len() + DATA_OFFSET > FRAME_SIZE as usize {
            bail!("a {}-byte frame does not fit a ring slot", frame.len());
        }
        // Protocol 0: this socket sends only, it receives nothing.
        // SAFETY: socket(2) with constant arguments.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        check("socket(AF_PACKET)", raw)?;
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt(
            &fd,
            libc::PACKET_VERSION,
            &libc::tpacket_versions::TPACKET_V2,
            "PACKET_VERSION",
        )?;
        setsockopt(&fd, libc::PACKET_QDISC_BYPASS, &1i32, "PACKET_QDISC_BYPASS")?;
        let req = libc::tpacket_req {
            tp_block_size: BLOCK_SIZE,
            tp_block_nr: FRAMES * FRAME_SIZE / BLOCK_SIZE,
            tp_frame_size: FRAME_SIZE,
            tp_frame_nr: FRAMES,
        };
        setsockopt(&fd, libc::PACKET_TX_RING, &req, "PACKET_TX_RING")?;
        let len = (FRAMES * FRAME_SIZE) as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket; unmapped in Drop.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            bail!("mmap of the TX ring: {}", std::io::Error::last_os_error());
        }
        let tx = TxRing {
            fd,
            ring: ring.cast(),
            len,
            frame_len: frame.len() as u32,
        };
        // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a sockaddr_ll of the size passed.
        let r = unsafe {
            libc::bind(
                tx.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        check("bind to the sending interface", r)?;
        for i in 0..FRAMES {
            let slot = tx.slot(i);
            // SAFETY: the frame fits the slot (checked above); the slot is in the ring.
            unsafe {
                std::ptr::copy_nonoverlapping(frame.as_ptr(), slot.add(DATA_OFFSET), frame.len())
            };
        }
        Ok(tx)
    }

    /// The start of slot `i` (its `tpacket2_hdr`).
    fn slot(&self, i: u32) -> *mut u8 {
        // SAFETY: i < FRAMES, so the offset stays inside the mapping of `len` bytes.
        unsafe { self.ring.add((i * FRAME_SIZE) as usize) }
    }

    /// The slot's `tp_status`, which the kernel writes concurrently.
    fn status(&self, i: u32) -> &std::sync::atomic::AtomicU32 {
        // SAFETY: `tp_status` is the aligned first u32 of a slot that lives as long as
        // `self`; the kernel and this thread access it only as a whole word.
        unsafe { &*(self.slot(i) as *const std::sync::atomic::AtomicU32) }
    }

    /// Marks every free slot for sending and sends them; returns the frames handed to
    /// the kernel. Blocks until the kernel has taken them.
    pub fn burst(&mut self) -> Result<u64> {
        use std::sync::atomic::Ordering;
        let mut queued = 0;
        for i in 0..FRAMES {
            let status = self.status(i).load(Ordering::Acquire);
            if status & TP_STATUS_WRONG_FORMAT != 0 {
                bail!("the kernel refused a ring frame as malformed");
            }
            if status != TP_STATUS_AVAILABLE {
                continue;
            }
            // tp_len, the second u32 of the header.
            // SAFETY: inside the slot's header; the kernel reads it only once the status
            // below says so.
            unsafe { (self.slot(i).add(4) as *mut u32).write_volatile(self.frame_len) };
            self.status(i)
                .store(TP_STATUS_SEND_REQUEST, Ordering::Release);
            queued += 1;
        }
        // SAFETY: send(2) with no buffer: the ring holds the frames.
        let r = unsafe { libc::send(self.fd.as_raw_fd(), std::ptr::null(), 0, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            // ENOBUFS: the peer's queue was full; the frames stay queued for the next send.
            if e.raw_os_error() != Some(libc::ENOBUFS) {
                return Err(e).context("send on the TX ring");
            }
        }
        Ok(queued)
    }
}

impl Drop for TxRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`.
        unsafe { libc::munmap(self.ring.cast(), self.len) };
    }
}
