//! What arrives at an interface: incoming frames carrying this process's markers.
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::inject::{packet_socket, ETH_P_ALL};
use super::{contains, describe, marker_prefix};
use crate::clinic::Host;
use crate::netns::Netns;

/// Frames kept at most by a sniffer (a flood test counts more than it keeps).
const KEEP_AT_MOST: usize = 20_000;

/// Incoming frames of one interface that carry this process's marker prefix,
/// collected by a thread until dropped.
pub struct Sniffer {
    stop: Arc<AtomicBool>,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<JoinHandle<()>>,
    what: String,
}

impl Sniffer {
    /// Starts sniffing `ifname` in `ns` (packets it sends itself are ignored).
    pub fn start(ns: &Netns, ifname: &str) -> Result<Sniffer> {
        let fd = packet_socket(ns, ifname, ETH_P_ALL)?;
        let big: libc::c_int = 16 << 20;
        // SAFETY: setsockopt with a c_int option value. Failure leaves the default.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&big as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(Mutex::new(Vec::new()));
        let (s, f) = (Arc::clone(&stop), Arc::clone(&frames));
        let prefix = marker_prefix();
        let thread = std::thread::spawn(move || sniff(fd, &prefix, &s, &f));
        Ok(Sniffer {
            stop,
            frames,
            thread: Some(thread),
            what: format!("{ifname} in {}", ns.name()),
        })
    }

    /// Sniffs `host`'s own interface.
    pub fn on(host: &Host) -> Result<Sniffer> {
        Sniffer::start(&host.ns, host.host_if)
    }

    /// Frames seen so far carrying `marker`.
    pub fn count(&self, marker: &[u8]) -> usize {
        self.lock().iter().filter(|f| contains(f, marker)).count()
    }

    /// Waits until `n` frames carrying `marker` were seen or `limit` passed; returns
    /// how many were.
    pub fn wait_for(&self, marker: &[u8], n: usize, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let c = self.count(marker);
            if c >= n || Instant::now() >= deadline {
                return c;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The frames seen carrying `marker`, described one a line.
    pub fn report(&self, marker: &[u8]) -> String {
        let g = self.lock();
        let mut lines: Vec<String> = g
            .iter()
            .filter(|f| contains(f, marker))
            .take(20)
            .map(|f| format!("  {}", describe(f)))
            .collect();
        if lines.is_empty() {
            lines.push("  (none)".into());
        }
        format!("on {}:\n{}", self.what, lines.join("\n"))
    }

    /// The interface and namespace, for messages.
    pub fn what(&self) -> &str {
        &self.what
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.frames.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sniff(fd: OwnedFd, prefix: &[u8], stop: &AtomicBool, frames: &Mutex<Vec<Vec<u8>>>) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
            continue;
        }
        loop {
            // SAFETY: buf and sll are valid for the sizes given.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            let n = unsafe {
                libc::recvfrom(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n <= 0 {
                break;
            }
            if sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let f = &buf[..n as usize];
            if contains(f, prefix) {
                let mut g = frames.lock().unwrap_or_else(|p| p.into_inner());
                if g.len() < KEEP_AT_MOST {
                    g.push(f.to_vec());
                }
            }
        }
    }
}
