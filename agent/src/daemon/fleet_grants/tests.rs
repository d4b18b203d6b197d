//! How the fleet grant list is brought into the grants in force beside local ones.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{plan_grants, GrantPlan};
use crate::{
    breakglass::{FleetMark, Grant},
    distribution::{FleetGrant, FleetLists},
};

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_601_600)
}

fn listed(service: &str, secs: u64, hosts: Option<&[&str]>) -> FleetGrant {
    FleetGrant {
        from: "imaging".into(),
        to: "billing".into(),
        service: service.into(),
        reason: "INC-9".into(),
        author: "netsec".into(),
        expires: now() + Duration::from_secs(secs),
        hosts: hosts.map(|h| h.iter().map(|s| s.to_string()).collect()),
    }
}

/// A grant in force: fleet (of `version`) or local (`None`).
fn in_force(id: u32, service: &str, secs: u64, version: Option<u64>) -> Grant {
    Grant {
        id,
        from: "imaging".into(),
        to: "billing".into(),
        service: service.into(),
        reason: "INC-9".into(),
        by: version.map_or("alice (uid 0)".into(), |v| format!("fleet v{v}")),
        since: now(),
        expires: now() + Duration::from_secs(secs),
        expires_ns: 0,
        fleet: version.map(|version| FleetMark {
            version,
            author: String::new(),
        }),
    }
}

fn list(version: u64, grants: Vec<FleetGrant>) -> FleetLists {
    FleetLists {
        version: Some(version),
        entries: Vec::new(),
        grants,
    }
}

fn names() -> Vec<String> {
    vec!["gw-1".into(), "gw-1.clinic".into()]
}

#[test]
fn listed_grants_start_once_and_unlisted_fleet_grants_end() {
    let l = list(
        2,
        vec![listed("https", 60, None), listed("tcp/22", 60, None)],
    );
    // https is in force already as the same fleet grant (of v1): kept, not restarted.
    let t = vec![
        in_force(0, "https", 60, Some(1)),
        in_force(1, "tcp/8080", 60, Some(1)),
        in_force(2, "tcp/9000", 60, None),
    ];
    let plan = plan_grants(&l, &t, &names(), true, now());
    assert_eq!(
        plan,
        GrantPlan {
            end: vec![(
                t[1].clone(),
                "ended: not in force in fleet bundle version 2".into()
            )],
            start: vec![listed("tcp/22", 60, None)],
            refused: Vec::new(),
        }
    );
    // A changed expiry or reason starts it anew (and ends the old one).
    let later = list(3, vec![listed("https", 120, None)]);
    let plan = plan_grants(&later, &t[..1], &names(), true, now());
    assert_eq!(plan.start, [listed("https", 120, None)]);
    assert_eq!(plan.end.len(), 1);
}

#[test]
fn hosts_expiry_and_a_disabled_break_glass_decide_what_this_agent_does() {
    let l = list(
        4,
        vec![
            listed("https", 60, Some(&["gw-2"])),
            listed("tcp/22", 60, Some(&["gw-1.clinic"])),
            listed("tcp/23", 0, None),
        ],
    );
    let plan = plan_grants(&l, &[], &names(), true, now());
    assert_eq!(plan.start, [listed("tcp/22", 60, Some(&["gw-1.clinic"]))]);
    // Disabled: the grants meant for this agent are refused, fleet grants in force end,
    // local ones stay.
    let t = vec![
        in_force(0, "tcp/22", 60, Some(3)),
        in_force(1, "tcp/80", 60, None),
    ];
    let plan = plan_grants(&l, &t, &names(), false, now());
    let disabled = "break-glass is disabled on this host (`[breakglass] enabled = false`)";
    assert_eq!(
        plan,
        GrantPlan {
            end: vec![(t[0].clone(), format!("ended: {disabled}"))],
            start: Vec::new(),
            refused: vec![(
                listed("tcp/22", 60, Some(&["gw-1.clinic"])),
                disabled.into()
            )],
        }
    );
}

#[test]
fn a_fleet_grant_replaces_a_local_grant_of_the_same_service_and_an_unsigned_policy_ends_all() {
    let l = list(5, vec![listed("https", 60, None)]);
    let t = vec![in_force(0, "https", 600, None)];
    let plan = plan_grants(&l, &t, &names(), true, now());
    assert_eq!(
        plan.end,
        [(
            t[0].clone(),
            "ended: replaced by a grant of fleet bundle version 5".into()
        )]
    );
    assert_eq!(plan.start, [listed("https", 60, None)]);
    let t = vec![
        in_force(3, "https", 60, Some(5)),
        in_force(4, "tcp/1", 60, None),
    ];
    let plan = plan_grants(&FleetLists::default(), &t, &names(), true, now());
    assert_eq!(
        plan.end,
        [(
            t[0].clone(),
            "ended: not in force in fleet: unsigned policy".into()
        )]
    );
}
