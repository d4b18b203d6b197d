//! The break-glass table: emergency allows the programs consult when no rule allows a
//! new flow. Each grant has one entry per (slot, protocol, port); every entry holds the
//! whole grant, so the pinned map alone tells a restarted agent what is in force.
use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use aya::maps::HashMap;
use ward_common::{map_names, BreakglassKey, BreakglassValue, FLAG_BREAKGLASS, RULE_BREAKGLASS};

use super::{
    map_err,
    quarantine::{text, untext, FLEET_BY},
    Dataplane, DataplaneError,
};
use crate::{
    breakglass::{FleetMark, Grant},
    clock::unix_seconds,
    policy::CompiledPolicy,
};

type Table<'a> = HashMap<&'a mut aya::maps::MapData, BreakglassKey, BreakglassValue>;

impl Dataplane {
    /// The grants in the slot of the policy in force, expired ones included until
    /// [`Dataplane::end_grant`] removes them.
    pub fn grants(&mut self) -> Result<Vec<Grant>, DataplaneError> {
        let slot = self.slot_in_force()?;
        let mut grants = BTreeMap::new();
        for (key, value) in self.breakglass_table()?.iter().filter_map(Result::ok) {
            if key.slot == slot {
                grants
                    .entry(value.rule_id)
                    .or_insert_with(|| grant_of(&value));
            }
        }
        Ok(grants.into_values().collect())
    }

    /// Writes `grants` into `slot` with the zone ids of `policy` (the policy in force
    /// there, or about to be), then removes the slot's other entries: a grant in force
    /// in the slot never misses a packet.
    pub(super) fn write_grants(
        &mut self,
        slot: u8,
        policy: &CompiledPolicy,
        grants: &[Grant],
    ) -> Result<(), DataplaneError> {
        let mut wanted = BTreeMap::new();
        for grant in grants {
            let zone = |name: &str| {
                policy
                    .zone_id(name)
                    .ok_or_else(|| DataplaneError::UnknownZone(name.to_owned()))
            };
            let (src_zone, dst_zone) = (zone(&grant.from)?, zone(&grant.to)?);
            for (proto, port) in grant.ports() {
                let key = BreakglassKey {
                    src_zone,
                    dst_zone,
                    port,
                    proto,
                    slot,
                };
                wanted.insert(key, value_of(grant));
            }
        }
        let mut table = self.breakglass_table()?;
        for (key, value) in &wanted {
            table
                .insert(key, value, 0)
                .map_err(map_err(map_names::BREAKGLASS))?;
        }
        let stale: Vec<BreakglassKey> = table
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.slot == slot && !wanted.contains_key(k))
            .collect();
        for key in stale {
            table.remove(&key).map_err(map_err(map_names::BREAKGLASS))?;
        }
        self.flag_grants()
    }

    /// Removes every entry of grant `id`, in both slots.
    pub fn end_grant(&mut self, id: u32) -> Result<(), DataplaneError> {
        let mut table = self.breakglass_table()?;
        let entries: Vec<BreakglassKey> = table
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, v)| v.rule_id == RULE_BREAKGLASS | id)
            .map(|(k, _)| k)
            .collect();
        for key in entries {
            table.remove(&key).map_err(map_err(map_names::BREAKGLASS))?;
        }
        self.flag_grants()
    }

    fn breakglass_table(&mut self) -> Result<Table<'_>, DataplaneError> {
        let name = map_names::BREAKGLASS;
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(DataplaneError::Missing(name))?;
        HashMap::try_from(map).map_err(map_err(name))
    }

    /// Tells the programs whether the table has entries (else they skip its lookups).
    fn flag_grants(&mut self) -> Result<(), DataplaneError> {
        let any = self.breakglass_table()?.keys().any(|k| k.is_ok());
        let mut config = self.config()?;
        let flags = match any {
            true => config.flags | FLAG_BREAKGLASS,
            false => config.flags & !FLAG_BREAKGLASS,
        };
        if flags != config.flags {
            config.flags = flags;
            self.set_config(config)?;
        }
        Ok(())
    }
}

fn value_of(grant: &Grant) -> BreakglassValue {
    BreakglassValue {
        expires_ns: grant.expires_ns.max(1),
        rule_id: RULE_BREAKGLASS | grant.id,
        _pad: 0,
        since_unix: unix_seconds(grant.since),
        expires_unix: unix_seconds(grant.expires),
        from: text(&grant.from),
        to: text(&grant.to),
        service: text(&grant.service),
        by: text(&grant.by),
        reason: text(&grant.reason),
    }
}

fn grant_of(value: &BreakglassValue) -> Grant {
    let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    Grant {
        id: value.rule_id & !RULE_BREAKGLASS,
        from: untext(&value.from),
        to: untext(&value.to),
        service: untext(&value.service),
        reason: untext(&value.reason),
        by: untext(&value.by),
        since: at(value.since_unix),
        expires: at(value.expires_unix),
        expires_ns: value.expires_ns,
        fleet: fleet_mark(&untext(&value.by)),
    }
}

/// The mark of a fleet grant, whose `by` in the table is `fleet v<version>` (a local
/// grant's never is: it ends with the requester's uid).
fn fleet_mark(by: &str) -> Option<FleetMark> {
    let version = by.strip_prefix(FLEET_BY)?.parse().ok()?;
    Some(FleetMark {
        version,
        author: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_round_trips_through_its_table_value() {
        let grant = Grant {
            id: 3,
            from: "imaging".into(),
            to: "billing".into(),
            service: "https".into(),
            reason: "INC-4711 vendor support".into(),
            by: "alice (uid 0)".into(),
            since: SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000),
            expires: SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_007_200),
            expires_ns: 42,
            fleet: None,
        };
        let value = value_of(&grant);
        assert_eq!(value.rule_id, RULE_BREAKGLASS | 3);
        assert!(ward_common::is_breakglass(value.rule_id));
        assert_eq!(grant_of(&value), grant);
    }

    #[test]
    fn a_fleet_grant_is_known_by_its_by_in_the_table() {
        let local = Grant {
            id: 1,
            from: "imaging".into(),
            to: "billing".into(),
            service: "https".into(),
            reason: "INC-1".into(),
            by: "fleet v7 (uid 0)".into(),
            since: SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000),
            expires: SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_007_200),
            expires_ns: 42,
            fleet: None,
        };
        // An operator who calls themselves `fleet v7` still makes a local grant.
        assert_eq!(grant_of(&value_of(&local)), local);
        let fleet = Grant {
            by: "fleet v7".into(),
            fleet: Some(FleetMark {
                version: 7,
                author: String::new(),
            }),
            ..local
        };
        assert_eq!(grant_of(&value_of(&fleet)), fleet);
    }
}
