//! The installed `ward run` under what `ward.service` grants (its capability bounding
//! set through `setpriv`, no new privileges, its `Environment=`), with the shipped
//! configuration (interfaces and policy swapped in), in a network namespace with a
//! veth pair, traced by strace. systemd itself is not PID 1 here, so:
//! - `READY=1` must reach `NOTIFY_SOCKET` only once the XDP program is attached,
//!   `STOPPING=1` on SIGTERM, and the agent must exit 0;
//! - every system call it made must be one `SystemCallFilter=` allows, every socket
//!   family one `RestrictAddressFamilies=` allows, no mapping may be writable and
//!   executable (`MemoryDenyWriteExecute=`), and no `/proc` file it opened may lie
//!   outside its own processes' (`ProcSubset=pid`);
//! - without any one of the granted capabilities it must fail, and tell systemd nothing;
//! - the paths the default configuration writes must be writable under the unit.
use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use ward_tests::netns::{self, veth, Netns};
use ward_tests::util::{run, signal, wait_within};

use super::check::Installed;
use super::unit::Unit;

mod agent;

use agent::Agent;

/// How long `ward run` may take to enforce (strace slows it down).
const READY_WITHIN: Duration = Duration::from_secs(60);
/// The interface the agent enforces on (one end of the veth pair).
const INTERFACE: &str = "wdist0";

pub fn check(i: &Installed) -> Result<()> {
    let unit = Unit::load(&i.path("usr/lib/systemd/system/ward.service"))?;
    writable_paths(i, &unit)?;
    ensure!(
        unit.value("NoNewPrivileges")? == "yes",
        "NoNewPrivileges= is not yes"
    );
    let caps: Vec<String> = unit
        .words("CapabilityBoundingSet")
        .iter()
        .map(|c| c.trim_start_matches("CAP_").to_ascii_lowercase())
        .collect();
    ensure!(
        !caps.is_empty(),
        "ward.service sets no CapabilityBoundingSet="
    );

    let prefix = netns::prefix();
    netns::clean_leftovers(&prefix);
    let ns = Netns::create(&format!("{prefix}dist"))?;
    let peer = Netns::create(&format!("{prefix}distpeer"))?;
    veth(&ns, INTERFACE, &peer, "wdist1")?;
    ns.configure_if(INTERFACE, &[])?;
    peer.configure_if("wdist1", &[])?;

    let trace = i.work.join("strace.txt");
    let mut agent = Agent::start(i, &unit, &ns, "granted", &caps, Some(&trace))?;
    agent.wait_for("READY=1", READY_WITHIN)?;
    let link = ns.ip(&["link", "show", INTERFACE])?;
    ensure!(
        link.contains("xdp"),
        "READY=1 before the XDP program was attached:\n{link}"
    );
    ensure!(
        agent.log()?.contains("enforcing generation="),
        "READY=1 before `enforcing`"
    );
    run(Command::new(i.path("usr/bin/ward"))
        .args(["status", "--socket"])
        .arg(&agent.socket))?;
    signal(agent.pid()?, libc::SIGTERM)?;
    agent.wait_for("STOPPING=1", Duration::from_secs(20))?;
    let st =
        wait_within(&mut agent.child, Duration::from_secs(20))?.context("no exit on SIGTERM")?;
    ensure!(
        st.success(),
        "ward run exited with {st} on SIGTERM:\n{}",
        agent.log()?
    );
    drop(agent);
    traced_within_unit(
        &unit,
        &std::fs::read_to_string(&trace)?,
        &i.path("usr/bin/ward"),
    )?;

    for cap in &caps {
        let fewer: Vec<String> = caps.iter().filter(|c| *c != cap).cloned().collect();
        let upper = cap.to_ascii_uppercase();
        let mut agent = Agent::start(i, &unit, &ns, &format!("no-{cap}"), &fewer, None)?;
        let st = wait_within(&mut agent.child, READY_WITHIN)?.with_context(|| {
            format!("ward run without CAP_{upper} still runs: it is not needed")
        })?;
        ensure!(
            !st.success(),
            "ward run without CAP_{upper} exited with {st}"
        );
        agent.notify.set_nonblocking(true)?;
        let mut buf = [0u8; 256];
        match agent.notify.recv(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => bail!("ward run without CAP_{upper} notified systemd: {other:?}"),
        }
        let log = agent.log()?;
        ensure!(
            log.contains("not permitted") || log.contains("Permission denied"),
            "ward run without CAP_{upper} failed without saying so:\n{log}"
        );
        println!("dist check: without CAP_{upper}: refused as expected");
    }
    Ok(())
}

/// The shipped configuration with the test's interface, policy, pin directory and
/// control socket, an event log and a metrics endpoint (so the trace covers them).
fn configure(i: &Installed, name: &str, pin_dir: &Path, socket: &Path) -> Result<String> {
    let shipped = std::fs::read_to_string(i.path("etc/ward/agent.toml"))?;
    let policy = i.path("usr/share/doc/ward/examples/clinic.toml");
    let events = i.work.join(format!("{name}-events.jsonl"));
    // Top-level keys first, before any table.
    let mut text = format!(
        "pin_dir = \"{}\"\ncontrol_socket = \"{}\"\nevent_log = \"{}\"\n\
         metrics_listen = \"127.0.0.1:0\"\n",
        pin_dir.display(),
        socket.display(),
        events.display()
    );
    let mut swapped = 0;
    for line in shipped.lines() {
        let line = if line.starts_with("interfaces = ") {
            swapped += 1;
            format!("interfaces = [\"{INTERFACE}\"]")
        } else if line.starts_with("policy = ") {
            swapped += 1;
            format!("policy = \"{}\"", policy.display())
        } else {
            line.to_owned()
        };
        text.push_str(&line);
        text.push('\n');
    }
    ensure!(
        swapped == 2,
        "agent.toml: expected one `interfaces = ` and one `policy = ` line"
    );
    Ok(text)
}

/// The default pin directory, control socket and event log (commented defaults in the
/// shipped agent.toml) are writable under the unit, and the pin directory is created
/// before the namespace is set up.
fn writable_paths(i: &Installed, unit: &Unit) -> Result<()> {
    let shipped = std::fs::read_to_string(i.path("etc/ward/agent.toml"))?;
    let default = |key: &str| -> Result<String> {
        let prefix = format!("#{key} = \"");
        shipped
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.strip_suffix('"'))
            .map(str::to_owned)
            .with_context(|| format!("agent.toml shows no `{prefix}…\"`"))
    };
    let pin_dir = default("pin_dir")?;
    ensure!(
        unit.words("ReadWritePaths").contains(&pin_dir.as_str()),
        "ReadWritePaths= does not include {pin_dir}"
    );
    ensure!(
        unit.lines("ExecStartPre")
            .iter()
            .any(|l| l.ends_with(&format!("mkdir -p {pin_dir}"))),
        "no ExecStartPre= creates {pin_dir}"
    );
    for (key, setting, base) in [
        ("control_socket", "RuntimeDirectory", "/run"),
        ("event_log", "LogsDirectory", "/var/log"),
    ] {
        let path = default(key)?;
        let dir = Path::new(base).join(unit.value(setting)?);
        ensure!(
            Path::new(&path).parent() == Some(dir.as_path()),
            "{key} {path} is not in {setting}= ({})",
            dir.display()
        );
    }
    let state_dir = default("state_dir")?;
    let dir = Path::new("/var/lib").join(unit.value("StateDirectory")?);
    ensure!(
        Path::new(&state_dir) == dir,
        "state_dir {state_dir} is not StateDirectory= ({})",
        dir.display()
    );
    Ok(())
}

/// The `/proc` files the traced process opened (an `open`/`openat` that did not
/// fail) in `lines` of `strace -f` output. A call another thread interrupted is split
/// in two lines, `openat(… <unfinished ...>` and `<... openat resumed>) = N`, for the
/// same pid: its result is on the second (one never resumed counts as opened).
fn proc_files_opened<'a>(lines: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    let mut opened = BTreeSet::new();
    let mut pending: std::collections::HashMap<&str, &str> = Default::default();
    for line in lines {
        let Some((pid, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("<... open") {
            if let Some(path) = pending.remove(pid) {
                if !rest.contains(" = -1 ") {
                    opened.insert(path.to_owned());
                }
            }
            continue;
        }
        let Some(args) = (rest.strip_prefix("openat(")).or_else(|| rest.strip_prefix("open("))
        else {
            continue;
        };
        let Some(path) = args.split('"').nth(1).filter(|p| p.starts_with("/proc/")) else {
            continue;
        };
        if rest.ends_with("<unfinished ...>") {
            pending.insert(pid, path);
        } else if !rest.contains(") = -1 ") {
            opened.insert(path.to_owned());
        }
    }
    opened.extend(pending.into_values().map(str::to_owned));
    opened
}

/// Every system call after `ward`'s execve in `trace` is allowed by the unit, every
/// socket family too, no memory was made writable and executable, and no `/proc` file
/// outside a process directory was opened.
fn traced_within_unit(unit: &Unit, trace: &str, ward: &Path) -> Result<()> {
    let exec = format!("execve(\"{}\"", ward.display());
    let start = trace
        .lines()
        .position(|l| l.contains(&exec))
        .with_context(|| format!("the trace has no {exec}"))?;
    let (mut calls, mut families) = (BTreeSet::new(), BTreeSet::new());
    let proc_files = proc_files_opened(trace.lines().skip(start));
    let mut write_exec = Vec::new();
    for line in trace.lines().skip(start) {
        let Some((_pid, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let rest = rest.trim_start();
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `<... resumed>`, signals, exits
        }
        calls.insert(name.to_owned());
        if name == "socket" {
            families.insert(args.split(',').next().unwrap_or("").to_owned());
        }
        // What MemoryDenyWriteExecute= refuses: W+X mappings, making memory executable.
        let exec = args.contains("PROT_EXEC");
        if exec && (name.ends_with("mprotect") || (name == "mmap" && args.contains("PROT_WRITE"))) {
            write_exec.push(rest.to_owned());
        }
    }
    ensure!(
        calls.contains("bpf"),
        "the trace shows no bpf(2) call: {calls:?}"
    );
    let allowed = unit.allowed_syscalls()?;
    let refused: Vec<&String> = calls.iter().filter(|c| !allowed.contains(*c)).collect();
    ensure!(
        refused.is_empty(),
        "SystemCallFilter= would refuse {refused:?}"
    );
    ensure!(
        unit.value("MemoryDenyWriteExecute")? != "yes" || write_exec.is_empty(),
        "MemoryDenyWriteExecute= would refuse {write_exec:?}"
    );
    let allowed_families = unit.words("RestrictAddressFamilies");
    let refused: Vec<&String> = families
        .iter()
        .filter(|f| !allowed_families.contains(&f.as_str()))
        .collect();
    ensure!(
        refused.is_empty(),
        "RestrictAddressFamilies= would refuse {refused:?}"
    );
    let outside: Vec<&String> = proc_files
        .iter()
        .filter(|p| {
            let first = p
                .trim_start_matches("/proc/")
                .split('/')
                .next()
                .unwrap_or("");
            !(first == "self"
                || first == "thread-self"
                || first.chars().all(|c| c.is_ascii_digit()))
        })
        .collect();
    ensure!(outside.is_empty(), "ProcSubset=pid would hide {outside:?}");
    println!(
        "dist check: ward run made {} distinct system calls ({} socket families), all within ward.service",
        calls.len(),
        families.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::proc_files_opened;

    #[test]
    fn an_open_split_by_another_thread_is_judged_by_its_resumed_result() {
        let trace = r#"100 openat(AT_FDCWD, "/proc/self/maps", O_RDONLY|O_CLOEXEC) = 3
101 openat(AT_FDCWD, "/proc/version_signature", O_RDONLY|O_CLOEXEC <unfinished ...>
100 openat(AT_FDCWD, "/proc/version_signature", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)
101 <... openat resumed>) = -1 ENOENT (No such file or directory)
102 openat(AT_FDCWD, "/proc/sys/kernel/osrelease", O_RDONLY <unfinished ...>
100 read(3, "", 4096) = 0
102 <... openat resumed>) = 4
103 openat(AT_FDCWD, "/proc/stat", O_RDONLY <unfinished ...>
104 open("/proc/meminfo", O_RDONLY) = 5
"#;
        let opened: Vec<String> = proc_files_opened(trace.lines()).into_iter().collect();
        assert_eq!(
            opened,
            [
                "/proc/meminfo",
                "/proc/self/maps",
                "/proc/stat",
                "/proc/sys/kernel/osrelease"
            ]
        );
    }
}
