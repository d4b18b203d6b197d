//! The merge of the fleet quarantine list into the kernel table beside local entries.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{plan, refusal, Plan};
use crate::{
    dataplane::{FleetOrigin, QuarantineEntry},
    distribution::{FleetEntry, FleetLists},
};

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_601_600)
}

fn listed(ip: &str, reason: &str, secs: u64) -> FleetEntry {
    FleetEntry {
        ip: ip.parse().unwrap(),
        cidr: None,
        reason: reason.into(),
        author: "alice".into(),
        expires: now() + Duration::from_secs(secs),
    }
}

/// A table entry: fleet (of `version`) or local (`None`).
fn table(ip: &str, reason: &str, secs: u64, version: Option<u64>) -> QuarantineEntry {
    QuarantineEntry {
        ip: ip.parse().unwrap(),
        reason: reason.into(),
        by: version.map_or("ward quarantine (uid 0)".into(), |v| format!("fleet v{v}")),
        since: now(),
        expires: Some(now() + Duration::from_secs(secs)),
        fleet: version.map(|version| FleetOrigin {
            version,
            author: String::new(),
            cidr: None,
        }),
    }
}

fn list(version: u64, entries: Vec<FleetEntry>) -> FleetLists {
    FleetLists {
        version: Some(version),
        entries,
        grants: Vec::new(),
    }
}

#[test]
fn new_entries_are_set_and_entries_unchanged_are_kept() {
    let l = list(
        8,
        vec![
            listed("198.18.20.7", "beacon", 600),
            listed("198.18.20.8", "scan", 600),
        ],
    );
    let t = [table("198.18.20.7", "beacon", 600, Some(7))];
    assert_eq!(
        plan(&l, &t, now()),
        Plan {
            set: vec![listed("198.18.20.8", "scan", 600)],
            release: vec![],
        }
    );
    // A changed reason or expiry is written again.
    let t = [table("198.18.20.7", "old", 600, Some(7))];
    let l = list(8, vec![listed("198.18.20.7", "beacon", 600)]);
    assert_eq!(
        plan(&l, &t, now()).set,
        vec![listed("198.18.20.7", "beacon", 600)]
    );
    let t = [table("198.18.20.7", "beacon", 60, Some(7))];
    assert_eq!(plan(&l, &t, now()).set.len(), 1);
}

#[test]
fn fleet_entries_missing_from_a_newer_list_are_released_but_local_ones_stay() {
    let t = [
        table("198.18.20.7", "beacon", 600, Some(7)),
        table("198.18.20.10", "by hand", 600, None),
    ];
    assert_eq!(
        plan(&list(8, vec![]), &t, now()),
        Plan {
            set: vec![],
            release: vec!["198.18.20.7".parse().unwrap()],
        }
    );
    // An unsigned policy carries no list: every fleet entry ends.
    assert_eq!(
        plan(&FleetLists::default(), &t, now()).release,
        vec!["198.18.20.7".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn expired_entries_are_neither_set_nor_kept_and_the_list_overrides_a_local_entry() {
    let l = list(9, vec![listed("198.18.20.7", "beacon", 0)]);
    let t = [table("198.18.20.7", "beacon", 0, Some(9))];
    assert_eq!(
        plan(&l, &t, now()),
        Plan {
            set: vec![],
            release: vec!["198.18.20.7".parse().unwrap()],
        }
    );
    let l = list(9, vec![listed("198.18.20.10", "beacon", 60)]);
    let t = [table("198.18.20.10", "by hand", 600, None)];
    assert_eq!(
        plan(&l, &t, now()).set,
        vec![listed("198.18.20.10", "beacon", 60)]
    );
}

#[test]
fn a_local_request_on_a_fleet_entry_is_refused_with_the_bundle_version() {
    let entry = table("198.18.20.7", "beacon", 600, Some(7));
    let why = "only a newer bundle without it, or its expiry, ends it";
    assert_eq!(
        refusal(&entry, why).to_string(),
        "198.18.20.7 is in the fleet quarantine of signed bundle version 7: only a newer bundle without it, or its expiry, ends it"
    );
}
