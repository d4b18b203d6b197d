//! The Markdown report: the tables, the targets (`targets.rs`) and how to read them.
use std::fmt::Write as _;

use serde_json::{json, Value};

pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

pub fn size(cidrs: &Value, rules: &Value) -> String {
    format!(
        "{} / {}",
        thousands(cidrs.as_u64().unwrap_or(0)),
        thousands(rules.as_u64().unwrap_or(0))
    )
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn mib(v: &Value) -> String {
    format!("{:.1} MiB", f(v) / 1048576.0)
}

pub fn cell(c: &Value) -> String {
    format!("{:.0} ({:+.0})", f(&c["ward_ns"]), f(&c["delta_ns"]))
}

/// The per-packet row of a policy size and family.
pub fn pp<'a>(v: &'a Value, cidrs: u64, rules: u64, fam: &str) -> Option<&'a Value> {
    v["per_packet"].as_array()?.iter().find(|r| {
        r["cidrs"].as_u64() == Some(cidrs)
            && r["rules"].as_u64() == Some(rules)
            && r["family"] == fam
    })
}

pub fn tp<'a>(v: &'a Value, filter: &str, n: u64) -> Option<&'a Value> {
    v["throughput"]
        .as_array()?
        .iter()
        .find(|r| r["filter"] == filter && r["entries"].as_u64() == Some(n))
}

/// The whole report as Markdown; adds the evaluated targets to `v`.
pub fn markdown(v: &mut Value) -> String {
    let mut m = String::new();
    let mc = &v["machine"];
    let s = &v["settings"];
    let _ = writeln!(m, "Ward benchmark ({} run, {:.0} s) on {} CPUs ({}), {} GiB, kernel {}; load average at start {}.\n",
        v["mode"].as_str().unwrap_or(""), f(&v["duration_s"]), mc["cpus"], mc["cpu_model"].as_str().unwrap_or(""),
        mc["memory_gib"], mc["kernel"].as_str().unwrap_or(""), mc["loadavg_at_start"].as_str().unwrap_or(""));
    let rounds = s["rounds"].as_u64().unwrap_or(1).max(1);
    let _ = writeln!(m, "**Per-packet cost** (`BPF_PROG_TEST_RUN`; ns per packet, Ward (Ward − floor); median of {} runs of repeat {}; new flows: median of {} first packets at repeat 1, against the floor at repeat 1; {}):\n",
        s["reps"], thousands(s["repeat"].as_u64().unwrap_or(0)), s["new_flows"].as_u64().unwrap_or(0) / rounds,
        if rounds > 1 { format!("{rounds} rounds over every policy in turn, each figure the median of the rounds'") } else { "one round".to_owned() });
    m.push_str("| CIDRs per family / rules | family | floor (repeat N / 1) | established | denied | malformed | new allowed (repeat 1) | established (repeat 1) |\n|---|---|---|---|---|---|---|---|\n");
    for r in v["per_packet"].as_array().cloned().unwrap_or_default() {
        let _ = writeln!(
            m,
            "| {} | {} | {:.0} / {:.0} | {} | {} | {} | {} | {} |",
            size(&r["cidrs"], &r["rules"]),
            r["family"].as_str().unwrap_or(""),
            f(&r["established"]["floor_ns"]),
            f(&r["new"]["floor_ns"]),
            cell(&r["established"]),
            cell(&r["denied"]),
            cell(&r["malformed"]),
            cell(&r["new"]),
            cell(&r["established_repeat1"])
        );
    }
    let ct = &v["conntrack"];
    if !ct.is_null() {
        let _ = writeln!(
            m,
            "| 10 / 10, conntrack holding {} entries | IPv4 | {:.0} / {:.0} | {} | | | {} | {} |",
            thousands(ct["entries_present"].as_u64().unwrap_or(0)),
            f(&ct["established"]["floor_ns"]),
            f(&ct["new"]["floor_ns"]),
            cell(&ct["established"]),
            cell(&ct["new"]),
            cell(&ct["established_repeat1"])
        );
    }
    let cap = &v["conntrack_at_capacity"];
    if !cap.is_null() {
        let n = |x: &Value| thousands(x.as_u64().unwrap_or(0));
        for (k, label) in [("empty", "empty"), ("full", "full, inserts evict")] {
            let r = &cap[k];
            let _ = writeln!(m, "| 10 / 10, conntrack of {} {label} ({} → {} entries) | IPv4 | {:.0} / {:.0} | {} | | | {} | {} |",
                n(&cap["capacity"]), n(&r["entries_before"]), n(&r["entries_after"]),
                f(&r["established"]["floor_ns"]), f(&r["new"]["floor_ns"]),
                cell(&r["established"]), cell(&r["new"]), cell(&r["established_repeat1"]));
        }
        let ratio = |c: &str| f(&cap["full"][c]["ward_ns"]) / f(&cap["empty"][c]["ward_ns"]);
        let mean = |k: &str| f(&cap[k]["new_mean_ns"]);
        let _ = writeln!(m, "\nConntrack at capacity ({} entries), measured side by side, full ÷ empty: new allowed flow {:.2}× (median; mean {:.0} ÷ {:.0} ns = {:.2}×, the mean including the kernel's batched evictions), established flow {:.2}×.",
            n(&cap["capacity"]), ratio("new"), mean("full"), mean("empty"), mean("full") / mean("empty"), ratio("established"));
    }
    let generator = match v["throughput"][0]["generator"].as_str() {
        Some("live-frames") => "`ward_bench_tx` with live frames on the sender",
        _ => "an `AF_PACKET` TX ring with `PACKET_QDISC_BYPASS` on the sender",
    };
    let _ = writeln!(m, "\n**Throughput** through a veth pair (load: {generator}, pinned to CPU {}; the same frames for every filter; packets the receiver judged per second and CPU ns per packet, the generator's own cost included; median of {} × {} s; allowed = the last allow-list entry, denied = a source in no entry):\n",
        s["generator_cpu"], s["throughput_reps"], s["throughput_secs"]);
    m.push_str("| entries | filter | allowed: pps | CPU ns/pkt | denied: pps | CPU ns/pkt | Ward ÷ this, per CPU-second (allowed / denied) | Ward ÷ this, wall pps (allowed / denied) |\n|---|---|---|---|---|---|---|---|\n");
    for r in v["throughput"].as_array().cloned().unwrap_or_default() {
        let n = r["entries"].as_u64().unwrap_or(0);
        let w = tp(v, "Ward", n).cloned().unwrap_or(Value::Null);
        let cpu = |x: &Value, t: &str| f(&x[t]["cpu_ns_per_packet"]);
        let pps = |x: &Value, t: &str| f(&x[t]["pps"]);
        let _ = writeln!(
            m,
            "| {} | {} | {} | {:.0} | {} | {:.0} | {:.2} / {:.2} | {:.2} / {:.2} |",
            thousands(n),
            r["filter"].as_str().unwrap_or(""),
            thousands(pps(&r, "allowed") as u64),
            cpu(&r, "allowed"),
            thousands(pps(&r, "denied") as u64),
            cpu(&r, "denied"),
            cpu(&r, "allowed") / cpu(&w, "allowed"),
            cpu(&r, "denied") / cpu(&w, "denied"),
            pps(&w, "allowed") / pps(&r, "allowed"),
            pps(&w, "denied") / pps(&r, "denied")
        );
    }
    m.push_str("\n**Policy operations**:\n\n| CIDRs per family / rules | zones | zone prefixes (v4 + v6) + rule ranges | parse + check + compile | write to maps | total |\n|---|---|---|---|---|---|\n");
    for r in v["policy_ops"].as_array().cloned().unwrap_or_default() {
        let _ = writeln!(
            m,
            "| {} | {} | {} + {} + {} | {:.3} s | {:.3} s | {:.3} s |",
            size(&r["cidrs"], &r["rules"]),
            r["zones"],
            r["v4_prefixes"],
            r["v6_prefixes"],
            r["rule_entries"],
            f(&r["compile_s"]),
            f(&r["apply_s"]),
            f(&r["total_s"])
        );
    }
    let a = &v["agent"];
    if !a.is_null() {
        let _ = writeln!(m, "\n| `ward run` at {} | start → enforcing | one-rule change: file write → enforced (median; all) | one-rule change: SIGHUP → enforced (median; all) | full replace: file write → enforced (median; all) | VmRSS (after reloads) | peak VmHWM | map memlock |\n|---|---|---|---|---|---|---|---|",
            size(&a["cidrs"], &a["rules"]));
        let all = |k: &str| {
            a[k].as_array()
                .map(|x| {
                    x.iter()
                        .map(|d| format!("{:.3}", f(d)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        let _ = writeln!(
            m,
            "| | {:.2} s | {:.3} s ({}) | {:.3} s ({}) | {:.2} s ({}) | {} ({}) | {} | {} |",
            f(&a["start_s"]),
            f(&a["reload_file_s"]),
            all("reload_file_all_s"),
            f(&a["reload_sighup_s"]),
            all("reload_sighup_all_s"),
            f(&a["full_replace_s"]),
            all("full_replace_all_s"),
            mib(&a["rss_bytes"]),
            mib(&a["rss_after_reloads_bytes"]),
            mib(&a["hwm_bytes"]),
            mib(&a["map_memlock_bytes"])
        );
    }
    if !ct.is_null() {
        let _ = writeln!(m, "\n| conntrack | capacity | inserted (into an empty table) | present after | fill time | memlock (empty → full) |\n|---|---|---|---|---|---|\n| LRU hash | {} | {} | {} | {:.2} s | {} → {} |",
            thousands(ct["capacity"].as_u64().unwrap_or(0)), thousands(ct["inserted"].as_u64().unwrap_or(0)), thousands(ct["entries_present"].as_u64().unwrap_or(0)),
            f(&ct["fill_s"]), mib(&ct["memlock_bytes_empty"]), mib(&ct["memlock_bytes"]));
    }
    m.push_str("\n**Targets** (read against the numbers above; not asserted):\n\n| target | measured | |\n|---|---|---|\n");
    let mut tj = Vec::new();
    for (name, r) in crate::targets::targets(v) {
        let (measured, mark) = match &r {
            Some((s, true)) => (s.clone(), "met"),
            Some((s, false)) => (s.clone(), "**missed**"),
            None => ("not measured in this run".into(), "n/a"),
        };
        let _ = writeln!(m, "| {name} | {measured} | {mark} |");
        tj.push(json!({ "target": name, "measured": measured, "result": mark.trim_matches('*') }));
    }
    v["targets"] = Value::Array(tj);
    m.push_str(NOTES);
    if let Some(errs) = v["errors"].as_array().filter(|e| !e.is_empty()) {
        m.push_str("\n**Errors** (these sections did not complete):\n\n");
        for e in errs {
            let _ = writeln!(m, "- {}", e.as_str().unwrap_or(""));
        }
    }
    m
}

/// How each number was obtained, and what is approximate about it.
const NOTES: &str = "
**How to read it**

- *Per-packet*: the kernel's own mean per run (`BPF_PROG_TEST_RUN` duration ÷ repeat, whole
  nanoseconds), on the same frame for Ward's XDP program and for `ward_bench_floor`
  (`XDP_PASS` only), their repetitions interleaved; medians. Established: one TCP
  connection opened by a handshake through Ward (SYN, SYN-ACK, ACK), then its client's
  next segment (ACK) repeated: after the first run, the fast path's one lookup. Denied: a TCP port no rule allows between two
  addresses of the policy's zones (both zone lookups and the rule lookup run). Malformed:
  a truncated IP header. New allowed: `repeat` cannot be used (the first run opens the
  flow), so each of the distinct frames (distinct source ports) runs once, against the
  floor run once; a single run includes the test-run timer and a colder cache, so the
  *established (repeat 1)* column shows what the same single run costs without opening a
  flow. `log_level` is off (a fresh pin directory's default), so event emission is not
  measured; the verdict counters are. This host's own addresses (one per family) are
  written as `ward run` writes them at start, with the filter in front of them.
- *Policies*: \"N CIDRs\" means N IPv4 /32s **and** N IPv6 /64s (the 100,000 policy holds
  200,000 prefixes), in clamp(N/10, 10, 1000) zones; every rule has a TCP port, a TCP
  range and a UDP range between two zones, overlapping as real rule sets do.
- *Throughput*: one frame repeated (the generator cannot vary it), so Ward's allowed
  traffic is one established flow while nftables and iptables are stateless; allowed
  frames go on into the stack (UDP, no socket: the same work in every row), denied ones
  stop at the filter. Every filter was checked: at least 90% of the allowed frames and
  at most 1% of the denied ones reached the IP layer (`InDelivers`). The sender and the
  receiver's NAPI poll share the pinned CPU, so CPU per packet (generator thread plus
  that CPU's `ksoftirqd`) covers generating, the veth, the receiver's XDP hook (the
  floor in front of nftables/iptables, needed to receive XDP_TX'd frames), the filter
  and the stack: compare rows, not absolute values. Wall-clock pps depends on how much
  of the CPU the generator got on a shared machine, hence the targets use packets per
  CPU-second. Filters are measured in interleaved rounds. `iptables` is Debian's
  default (nf_tables backend); `iptables-legacy` is the x_tables one.
- *Agent*: release `ward run` in a namespace, host role, `log_level` off, no automatic
  quarantine; reload latency is the time from the policy write (a rename into place, or
  SIGHUP after it) until a UDP datagram, sent every millisecond to the port the new
  version allows, arrives. A one-rule change changes one rule's port; a full replace
  adds or removes a zone whose name sorts first, so every zone id, hence every zone and
  rule entry, changes. The file path includes the agent's file watch (inotify, events
  gathered for a few ms; the old 250 ms poll only where a watch cannot be set up).
  VmRSS from `/proc/PID/status` after start and after the reloads, peak VmHWM; map
  memlock summed over the agent's map fds (`/proc/PID/fdinfo`).
- *Conntrack*: a preallocated LRU hash, so its memlock is the same empty and full.
  *At capacity*: two programs loaded side by side with tables of the same capacity,
  one empty and one filled from user space past its capacity; each new flow's first
  packet runs through both (alternating which goes first; `new_flows` of them), so
  every insert into the full table needs room that eviction makes (entries are counted
  before → after); then one established flow through each. The kernel's LRU evicts in
  batches when a CPU's free list runs dry, hence the count after can be below capacity
  and a few inserts pay for many: the mean shows that cost, the median does not.
";
