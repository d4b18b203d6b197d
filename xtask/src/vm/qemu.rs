//! Booting a kernel and initramfs under QEMU/TCG (never KVM: it hangs here), serial
//! console to a log file that is echoed as it grows, killed past its time limit.
//!
//! One vCPU: with two, 6.12 once died of `Oops: int3` in `ip6_input_finish` while
//! another vCPU patched a static key (`netstamp_needed_key`, which every `ping`
//! toggles) under the end-to-end tests' traffic; TCG's cross-vCPU code patching is
//! not to be trusted, and one vCPU costs the matrix about 100 s per kernel.
use std::fs::{self, File};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::cmdline;

/// How a boot ended.
pub struct Boot {
    /// QEMU's exit status; `None` when it was killed at the time limit.
    pub status: Option<ExitStatus>,
    /// Seconds from QEMU's start to its end.
    pub seconds: f64,
    /// Seconds from QEMU's start to the first line containing the start marker.
    pub boot_seconds: Option<f64>,
}

/// Boots `vmlinuz` with `initrd`; the serial console goes to `log` and, line by line
/// with `prefix`, to stdout; QEMU's own messages go to `log` + `.qemu`.
pub fn boot(
    vmlinuz: &Path,
    initrd: &Path,
    log: &Path,
    limit: Duration,
    prefix: &str,
    start_marker: &str,
) -> Result<Boot> {
    let _ = fs::remove_file(log);
    File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let qemu_out = File::create(log.with_extension("qemu"))?;
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", "tcg", "-m", "2048", "-smp", "1", "-nographic"])
        .args(["-no-reboot", "-nic", "none", "-monitor", "none"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .stdin(Stdio::null())
        .stdout(qemu_out.try_clone()?)
        .stderr(qemu_out);
    println!("==> {}", cmdline(&cmd));
    let started = Instant::now();
    let mut child = cmd.spawn().context("cannot run qemu-system-x86_64")?;
    let mut tail = Tail::open(log)?;
    let mut boot_seconds = None;
    let status = loop {
        let exited = child.try_wait().context("waiting for QEMU")?;
        for line in tail.new_lines()? {
            if boot_seconds.is_none() && line.contains(start_marker) {
                boot_seconds = Some(started.elapsed().as_secs_f64());
            }
            println!("{prefix}{line}");
        }
        if let Some(st) = exited {
            break Some(st);
        }
        if started.elapsed() >= limit {
            println!(
                "{prefix}(killing QEMU: no end within {} s)",
                limit.as_secs()
            );
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for line in tail.new_lines()?.into_iter().chain(tail.rest()) {
        println!("{prefix}{line}");
    }
    Ok(Boot {
        status,
        seconds: started.elapsed().as_secs_f64(),
        boot_seconds,
    })
}

/// Reads a growing file line by line.
struct Tail {
    file: File,
    pos: u64,
    partial: String,
}

impl Tail {
    fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            file: File::open(path)?,
            pos: 0,
            partial: String::new(),
        })
    }

    /// Complete lines written since the last call, without `\r`.
    fn new_lines(&mut self) -> Result<Vec<String>> {
        let mut buf = Vec::new();
        self.file.seek(SeekFrom::Start(self.pos))?;
        self.pos += self.file.read_to_end(&mut buf)? as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut lines = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            lines.push(plain(line.trim_end_matches(['\r', '\n'])));
        }
        Ok(lines)
    }

    /// A last line without a newline.
    fn rest(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.partial);
        (!rest.trim().is_empty()).then(|| plain(rest.trim_end()))
    }
}

/// `line` without terminal escape sequences (the firmware clears the screen) and `\r`.
pub fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters… final letter; other escapes: one more character.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() || c == '@' || c == '~' {
                        break;
                    }
                }
            }
        } else if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn strips_escapes() {
        assert_eq!(
            super::plain("Booting from ROM..\x1bc\x1b[?7l\x1b[2JWARD-VM: start"),
            "Booting from ROM..WARD-VM: start"
        );
    }
}
