//! The commands against the control server (with the fakes of its tests): what they
//! print and how they fail.
use std::{fs, io::Write, os::unix::net::UnixListener, process::ExitCode, time::Duration};

use crate::{
    commands,
    control::{tests::*, FlowFilter, FlowVerdict, PERMISSION_DENIED},
    daemon::ReloadOutcome,
};

#[tokio::test]
async fn status_prints_a_summary() {
    let h = Harness::start(16, vec![]);
    let socket = h.socket.clone();
    let (result, text) = blocking(move || run(|out| commands::status(&socket, false, out))).await;
    assert_eq!(result, Ok(ExitCode::SUCCESS));
    let expected = "\
WARNING     role = \"host\" and `[failsafe] management` is empty: no management access is \
guaranteed, so a policy mistake can lock the administrators out of this host; list the \
management prefixes in [failsafe] management (and the ports in tcp_ports)
role        host
mode        enforce
interfaces  eth0: xdp-ingress attached, tc-egress attached
            wg0: REFUSED, link type NONE is not Ethernet
tamper      1 hooks found detached or replaced since the start (alerts in the event log)
policy      /etc/ward/policy
            generation 1, hash 0123456789ab, loaded 2023-11-14T22:13:20Z
failsafe    none ([failsafe] management lists no prefix)
BREAK-GLASS local grant 0: imaging -> billing https until 2023-11-15T00:13:20Z by alice (uid 0): INC-4711 vendor support
BREAK-GLASS fleet grant 2: imaging -> billing tcp/22 until 2023-11-15T00:13:20Z by signed bundle version 7 (author netsec@clinic): INC-4711 vendor support
BREAK-GLASS fleet imaging -> ehr ssh of fleet bundle version 7 refused: the 16 grant numbers are all in use
started     2023-11-14T22:12:20Z
last reload refused at 2023-11-14T22:13:25Z:
              a.toml:3:1: unknown zone `x`
quarantine  0 hosts now; set 0 automatically, 0 by hand; 0 ended; 0 exempt alerts; 0 over the rate limit
packets     allowed 100  denied 32  audited 5
events      emitted 37  suppressed 1  lost 0  skipped by scan detection 0
conntrack   12 of 65536 entries
sink        syslog+tcp://198.18.24.10:10514: NOT connected; sent 30  dropped 2  lost 1
";
    assert_eq!(text, expected);
}

#[tokio::test]
async fn status_json_has_rfc3339_times() {
    let h = Harness::start(16, vec![]);
    let socket = h.socket.clone();
    let (result, text) = blocking(move || run(|out| commands::status(&socket, true, out))).await;
    assert_eq!(result, Ok(ExitCode::SUCCESS));
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let s = &json["status"];
    assert_eq!(s["started_at"], "2023-11-14T22:12:20Z");
    assert_eq!(s["loaded_at"], "2023-11-14T22:13:20Z");
    assert_eq!(s["last_reload_error"]["at"], "2023-11-14T22:13:25Z");
    assert_eq!(s["breakglass"][0]["expires"], "2023-11-15T00:13:20Z");
    assert!(!text.contains("secs_since_epoch"), "{text}");
    // A host without [failsafe] management: the warning, in the reply's `warnings`.
    assert_eq!(
        json["warnings"],
        serde_json::json!([
            "role = \"host\" and `[failsafe] management` is empty: no management access is \
             guaranteed, so a policy mistake can lock the administrators out of this host; list \
             the management prefixes in [failsafe] management (and the ports in tcp_ports)"
        ])
    );
}

#[tokio::test]
async fn reload_prints_the_outcome_and_fails_when_refused() {
    let outcome = |ok, changed, messages: &[&str]| ReloadOutcome {
        ok,
        changed,
        generation: 2,
        hash: HASH.into(),
        messages: messages.iter().map(|m| m.to_string()).collect(),
        confirm_by: None,
    };
    let outcomes = vec![
        outcome(true, true, &[]),
        outcome(true, false, &[]),
        outcome(false, false, &["a.toml:3:1: unknown zone `x`"]),
    ];
    let h = Harness::start(16, outcomes);
    let socket = h.socket.clone();
    let reload = move || run(|out| commands::reload(&socket, None, false, out));
    let results = blocking(move || [(); 4].map(|()| reload())).await;
    let ok = |text: &str| (Ok(ExitCode::SUCCESS), text.to_owned());
    assert_eq!(
        results[0],
        ok("reloaded: generation 2 policy 0123456789ab\n")
    );
    assert_eq!(
        results[1],
        ok("unchanged: generation 2 policy 0123456789ab\n")
    );
    let refused = "refused: the policy in force stays generation 2 policy 0123456789ab\n  \
                   a.toml:3:1: unknown zone `x`\n";
    assert_eq!(results[2], (Ok(ExitCode::FAILURE), refused.to_owned()));
    // The fake handler has no outcome left and drops the request.
    let dropped = "the ward daemon answered: the daemon dropped the policy request";
    assert_eq!(results[3], (Err(dropped.to_owned()), String::new()));
}

#[tokio::test]
async fn apply_names_the_confirmation_deadline_and_confirm_answers_the_generation() {
    let deadline = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_060);
    let pending = ReloadOutcome {
        ok: true,
        changed: true,
        generation: 3,
        hash: HASH.into(),
        messages: Vec::new(),
        confirm_by: Some(deadline),
    };
    let h = Harness::start(16, vec![pending]);
    let socket = h.socket.clone();
    let (applied, confirmed) = blocking(move || {
        let window = Some(Duration::from_secs(60));
        (
            run(|out| commands::reload(&socket, window, false, out)),
            run(|out| commands::confirm(&socket, out)),
        )
    })
    .await;
    let expected = "reloaded: generation 3 policy 0123456789ab
  run `ward confirm` before \
                    2023-11-14T22:14:20Z, or the previous policy comes back
";
    assert_eq!(applied, (Ok(ExitCode::SUCCESS), expected.to_owned()));
    assert_eq!(
        confirmed,
        (
            Ok(ExitCode::SUCCESS),
            "confirmed: generation 3 stays in force\n".to_owned()
        )
    );
}

#[tokio::test]
async fn apply_of_a_policy_already_in_force_unconfirmed_says_it_awaits_confirmation() {
    let deadline = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_060);
    let message = "it went in force on policy file change without confirmation; it now \
                   awaits confirmation, or policy fedcba987654 comes back";
    let confirming = ReloadOutcome {
        ok: true,
        changed: false,
        generation: 2,
        hash: HASH.into(),
        messages: vec![message.into()],
        confirm_by: Some(deadline),
    };
    let h = Harness::start(16, vec![confirming]);
    let socket = h.socket.clone();
    let window = Some(Duration::from_secs(60));
    let applied = blocking(move || run(|out| commands::reload(&socket, window, false, out))).await;
    let expected = format!(
        "awaits confirmation: generation 2 policy 0123456789ab\n  {message}\n  run `ward \
         confirm` before 2023-11-14T22:14:20Z, or the previous policy comes back\n"
    );
    assert_eq!(applied, (Ok(ExitCode::SUCCESS), expected));
}

#[tokio::test]
async fn a_reload_the_lock_out_preflight_refuses_fails_with_the_session_named() {
    let refusal = "the new policy would cut 1 established session to a management port: \
                   198.18.24.10 → 198.18.24.1:22 (deny admin -> admin tcp/22: no rule allows \
                   it); nothing was changed (`ward reload --force` or `ward apply --force` \
                   puts it in force anyway)";
    let refused = ReloadOutcome {
        ok: false,
        changed: false,
        generation: 1,
        hash: HASH.into(),
        messages: vec![refusal.into()],
        confirm_by: None,
    };
    let h = Harness::start(16, vec![refused]);
    let socket = h.socket.clone();
    let out = blocking(move || run(|out| commands::reload(&socket, None, true, out))).await;
    let expected = format!(
        "refused: the policy in force stays generation 1 policy 0123456789ab\n  {refusal}\n"
    );
    assert_eq!(out, (Ok(ExitCode::FAILURE), expected));
}

#[test]
fn force_is_on_the_reload_request_line_only_when_asked() {
    use crate::control::Request;
    let line = |force| {
        let r = Request::Reload {
            confirm_within_secs: Some(60),
            force,
        };
        serde_json::to_string(&r).expect("serializes")
    };
    assert_eq!(line(false), r#"{"cmd":"reload","confirm_within_secs":60}"#);
    assert_eq!(
        line(true),
        r#"{"cmd":"reload","confirm_within_secs":60,"force":true}"#
    );
    let parsed: Request = serde_json::from_str(r#"{"cmd":"reload"}"#).expect("parses");
    assert_eq!(
        parsed,
        Request::Reload {
            confirm_within_secs: None,
            force: false
        }
    );
}

#[tokio::test(flavor = "current_thread")]
async fn flows_prints_a_table_until_the_daemon_goes_away() {
    let h = Harness::start(16, vec![]);
    let socket = h.socket.clone();
    let options = commands::FlowsOptions {
        filter: FlowFilter {
            verdict: Some(FlowVerdict::Deny),
            ..FlowFilter::default()
        },
        follow: true,
        ..commands::FlowsOptions::default()
    };
    let client = tokio::task::spawn_blocking(move || {
        run(|out| commands::flows(&socket, &options, out, &mut std::io::sink()))
    });
    h.subscribed(1).await;
    h.send(&[
        record(0, "allow", "clinic", "records"),
        record(1, "deny", "guest", "records"),
    ]);
    while !h.events.is_empty() {
        tokio::task::yield_now().await; // the connection writes each event as it takes it
    }
    h.server.abort();
    let (result, text) = client.await.unwrap();
    let closed = format!(
        "the ward daemon at {} closed the connection",
        h.socket.display()
    );
    assert_eq!(result, Err(closed));
    let expected = "\
TIME                      VERDICT  REASON          PROTO   SRC (ZONE) -> DST (ZONE)  RULE
2023-11-14T22:13:20.001Z  deny     no-rule         tcp     198.18.22.7:51000 (guest) -> 198.18.21.1:104 (records)  -
";
    assert_eq!(text, expected);
}

#[tokio::test]
async fn top_once_shows_rates_most_denied_first() {
    let h = Harness::start(16, vec![]);
    let socket = h.socket.clone();
    let interval = Duration::from_millis(50);
    let (result, text) =
        blocking(move || run(|out| commands::top(&socket, interval, true, false, out))).await;
    assert_eq!(result, Ok(ExitCode::SUCCESS));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "packets per second by zone pair, over the last 50ms"
    );
    let rows: Vec<Vec<&str>> = lines[2..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let order: Vec<_> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        order,
        [
            ("guest", "records"),
            ("clinic", "records"),
            ("lab", "world")
        ]
    );
    // 30 more denied packets, in a bit more than 50ms.
    let denied: f64 = rows[0][3].parse().unwrap();
    assert!(denied > 0.0 && denied <= 600.0, "{text}");
}

#[test]
fn commands_name_the_socket_when_the_daemon_is_not_there_or_refuses() {
    let dir = temp_dir();
    let missing = dir.join("missing.sock");
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let interval = Duration::from_millis(1);
    for socket in [&missing, &stale] {
        let unreachable = Err(format!(
            "cannot reach the ward daemon at {}: is `ward run` running?",
            socket.display()
        ));
        let all = commands::FlowsOptions {
            follow: true,
            ..commands::FlowsOptions::default()
        };
        assert_eq!(
            run(|out| commands::status(socket, false, out)).0,
            unreachable
        );
        assert_eq!(
            run(|out| commands::flows(socket, &all, out, &mut std::io::sink())).0,
            unreachable
        );
        assert_eq!(
            run(|out| commands::top(socket, interval, true, false, out)).0,
            unreachable
        );
        assert_eq!(
            run(|out| commands::reload(socket, None, false, out)).0,
            unreachable
        );
    }

    // What the daemon answers a peer that is not root (it cannot be one here: see `authorized`).
    let refusing = dir.join("refusing.sock");
    let listener = UnixListener::bind(&refusing).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        writeln!(stream, "{{\"error\":\"{PERMISSION_DENIED}\"}}").unwrap();
    });
    let denied = format!("permission denied on {}: run as root", refusing.display());
    assert_eq!(
        run(|out| commands::status(&refusing, false, out)).0,
        Err(denied)
    );
    server.join().unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn quarantine_release_and_list_print_the_entries() {
    let h = Harness::start(16, vec![]);
    let socket = h.socket.clone();
    let results = blocking(move || {
        let set = run(|out| {
            commands::quarantine(
                &socket,
                "198.18.20.10",
                Some(Duration::from_secs(7200)),
                "scan of billing",
                out,
            )
        });
        let list = run(|out| commands::list_quarantines(&socket, out));
        let release = run(|out| commands::release(&socket, "198.18.20.10", out));
        let again = run(|out| commands::release(&socket, "198.18.20.10", out));
        let bad = run(|out| commands::quarantine(&socket, "198.18.20.999", None, "x", out));
        let empty = run(|out| commands::list_quarantines(&socket, out));
        [set, list, release, again, bad, empty]
    })
    .await;
    let entry = "198.18.20.10 since 2027-01-15T08:00:00Z until 2027-01-15T10:00:00Z by ward quarantine (uid 0): scan of billing";
    assert_eq!(
        results[0],
        (Ok(ExitCode::SUCCESS), format!("quarantined {entry}\n"))
    );
    let listed = entry.replacen(" since", " local since", 1);
    assert_eq!(results[1], (Ok(ExitCode::SUCCESS), format!("{listed}\n")));
    assert_eq!(results[2].1, format!("released {entry}\n"));
    assert_eq!(
        results[3].0,
        Err("the ward daemon answered: 198.18.20.10 is not quarantined".to_owned())
    );
    assert_eq!(
        results[4].0,
        Err("`198.18.20.999` is not an IPv4 or IPv6 address: invalid IP address syntax".to_owned())
    );
    assert_eq!(
        results[5],
        (Ok(ExitCode::SUCCESS), "no host is quarantined\n".to_owned())
    );
}

#[tokio::test]
async fn breakglass_grants_lists_and_ends_with_the_operator_named() {
    let h = Harness::start(16, vec![]);
    let socket = h.socket.clone();
    let results = blocking(move || {
        let args = commands::BreakglassArgs {
            from: "imaging",
            to: "billing",
            service: "tcp/8443",
            duration: Duration::from_secs(7200),
            reason: "INC-4711 vendor support",
        };
        let granted = run(|out| commands::breakglass(&socket, &args, out));
        let list = run(|out| commands::list_breakglass(&socket, out));
        let end = run(|out| commands::end_breakglass(&socket, 0, out));
        let missing = run(|out| commands::end_breakglass(&socket, 7, out));
        [granted, list, end, missing]
    })
    .await;
    let (granted, text) = &results[0];
    assert_eq!(granted, &Ok(ExitCode::SUCCESS));
    // The daemon names the operator as the client says (login name, if the
    // environment has one) and as the kernel vouches (uid): these tests run as root.
    let prefix = "granted grant 1: imaging -> billing tcp/8443 until 2023-11-15T00:13:20Z by ";
    assert!(text.starts_with(prefix), "{text}");
    let by = &text[prefix.len()..text.len() - ": INC-4711 vendor support\n".len()];
    assert!(by == "uid 0" || by.ends_with(" (uid 0)"), "{text}");
    let in_force = "local grant 0: imaging -> billing https until 2023-11-15T00:13:20Z by alice (uid 0): INC-4711 vendor support\n\
fleet grant 2: imaging -> billing tcp/22 until 2023-11-15T00:13:20Z by signed bundle version 7 (author netsec@clinic): INC-4711 vendor support\n";
    assert_eq!(results[1], (Ok(ExitCode::SUCCESS), in_force.to_owned()));
    assert!(results[2]
        .1
        .starts_with("ended grant 0: imaging -> billing https"));
    assert_eq!(
        results[3].0,
        Err("the ward daemon answered: no break-glass grant 7 is in force".to_owned())
    );
}
