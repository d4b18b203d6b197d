//! End-to-end: a flood of flow events never takes the daemon from its other duties
//! (root, namespaces, the kernel). With every event budget lifted, several denied
//! floods keep the event reader busy while `ward status` answers and `ward reload`
//! goes through within a second or two. Run with `--test-threads=1`.
use std::{
    thread,
    time::{Duration, Instant},
};

mod support;

use support::{
    gateway::{clinic_policy, prepare, start_gateway},
    run::Run,
};
use ward_tests::{reach, Clinic, Proto};

/// How long the floods last at most.
const FLOOD_MS: u64 = 8_000;
/// How long a control request may take while the floods run.
const ANSWER_LIMIT: Duration = Duration::from_secs(2);

#[test]
fn the_control_socket_and_reloads_answer_during_an_event_flood() {
    prepare("the flood end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("flood");
    // Every denied datagram is an event: no budget per source, none per CPU.
    let settings = run.settings("[events]\nper_source = 4294967295\nper_second = 0\n");
    let agent = start_gateway(&clinic, &clinic_policy(), &settings);
    // Events the kernel wrote to the ring buffer, and those it found no room for.
    let events = || -> (u64, u64) {
        let out = agent.cli(&["status", "--json"]).expect("ward status");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
        let counter = |name: &str| v["counters"][name].as_u64().expect(name);
        (counter("events_emitted"), counter("events_lost"))
    };
    let before = events();

    // Denied UDP from three hosts at once (no rule allows udp/9999 anywhere), while
    // this thread asks for the status and a reload over and over.
    let mut slowest = Duration::ZERO;
    let mut answered = 0;
    thread::scope(|s| {
        let floods: Vec<_> = [
            ("imaging", "billing"),
            ("billing", "pacs"),
            ("world", "ehr"),
        ]
        .into_iter()
        .map(|(from, to)| {
            let (from, to) = (&clinic.host(from).ns, clinic.host(to).v4);
            s.spawn(move || ward_tests::flood(from, to.into(), 9999, 50_000_000, FLOOD_MS))
        })
        .collect();
        thread::sleep(Duration::from_secs(1));
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(FLOOD_MS - 3_000) {
            for args in [&["status"][..], &["reload"][..]] {
                let asked = Instant::now();
                let (ok, text) = agent.cli_outcome(args);
                slowest = slowest.max(asked.elapsed());
                assert!(ok, "ward {args:?} during the flood: {text}");
                answered += 1;
            }
            thread::sleep(Duration::from_millis(200));
        }
        for f in floods {
            let sent = f.join().expect("flood thread").expect("flood");
            eprintln!("flood: {}", sent.trim());
        }
    });
    let after = events();
    let (emitted, lost) = (after.0 - before.0, after.1 - before.1);
    eprintln!(
        "{answered} status and reload requests during the flood, the slowest {slowest:?}; \
         {emitted} events read, {lost} lost"
    );
    assert!(
        lost > 0,
        "the flood must be more than the reader can take (the ring buffer full): {emitted} \
         events read, none lost"
    );
    assert!(
        slowest < ANSWER_LIMIT,
        "a control request took {slowest:?} during the flood"
    );
    // Enforcement went on all along.
    let (imaging, billing) = (clinic.host("imaging"), clinic.host("billing"));
    assert!(!reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443));
}
