//! The quarantine table: hosts cut off from everything but the zones allowed to reach
//! them. Entries live in a pinned map, so they outlive the agent process; the kernel
//! ignores an entry once its expiry has passed, even if no agent removes it.
use std::{
    net::IpAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aya::maps::HashMap;
use serde::{Deserialize, Serialize};
use ward_common::{addr_from_bytes, addr_to_bytes, family, map_names, Quarantine, QuarantineKey};

use super::{map_err, Dataplane, DataplaneError};
use crate::clock::{monotonic_now, unix_seconds};

/// What a fleet quarantine entry's `by` starts with in the kernel table, followed by
/// the version of the bundle that set it: local entries (`auto`, `ward quarantine
/// (uid N)`) never do.
pub const FLEET_BY: &str = "fleet v";

/// Where a fleet quarantine entry came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetOrigin {
    /// The version of the signed bundle that set it.
    pub version: u64,
    /// Who asked for it (`author` in `quarantine.toml`); empty when the agent does not
    /// hold the list that set it.
    pub author: String,
    /// The network of the `cidr` entry that listed the host; `None` for an entry of
    /// one host (or when the agent does not hold the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
}

/// A quarantined host, as people see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// The host.
    pub ip: IpAddr,
    /// Why.
    pub reason: String,
    /// Who or what set it (`auto`, or the requester).
    pub by: String,
    /// When it was set.
    pub since: SystemTime,
    /// When it ends by itself; never when `None`.
    pub expires: Option<SystemTime>,
    /// Set by the fleet quarantine list of a signed bundle; `None` for a local one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetOrigin>,
}

impl QuarantineEntry {
    /// `fleet` or `local`: where the quarantine was set.
    pub fn source(&self) -> &'static str {
        match self.fleet {
            Some(_) => "fleet",
            None => "local",
        }
    }
}

impl Dataplane {
    /// Quarantines `ip` for `ttl` (or until released); replaces an earlier quarantine.
    pub fn quarantine(
        &mut self,
        ip: IpAddr,
        ttl: Option<Duration>,
        reason: &str,
        by: &str,
    ) -> Result<QuarantineEntry, DataplaneError> {
        let since = SystemTime::now();
        let expires = ttl.map(|t| since + t);
        let value = Quarantine {
            expires_ns: ttl.map_or(0, |t| monotonic_now().saturating_add(t).as_nanos() as u64),
            since_unix: unix_seconds(since),
            expires_unix: expires.map_or(0, unix_seconds),
            reason: text(reason),
            by: text(by),
        };
        self.quarantine_map()?
            .insert(key(ip), value, 0)
            .map_err(map_err(map_names::QUARANTINE))?;
        self.count_quarantines()?;
        Ok(entry(ip, &value))
    }

    /// Ends the quarantine of `ip`; returns what it was.
    pub fn release(&mut self, ip: IpAddr) -> Result<QuarantineEntry, DataplaneError> {
        let mut map = self.quarantine_map()?;
        let value = map
            .get(&key(ip), 0)
            .map_err(|_| DataplaneError::Quarantine(format!("{ip} is not quarantined")))?;
        map.remove(&key(ip))
            .map_err(map_err(map_names::QUARANTINE))?;
        self.count_quarantines()?;
        Ok(entry(ip, &value))
    }

    /// The quarantine of `ip`, if it has one.
    pub fn quarantine_of(&mut self, ip: IpAddr) -> Result<Option<QuarantineEntry>, DataplaneError> {
        let map = self.quarantine_map()?;
        Ok(map.get(&key(ip), 0).ok().map(|v| entry(ip, &v)))
    }

    /// Every quarantined host, expired ones included until [`Dataplane::expire`] runs.
    pub fn quarantines(&mut self) -> Result<Vec<QuarantineEntry>, DataplaneError> {
        let map = self.quarantine_map()?;
        let mut out: Vec<QuarantineEntry> = map
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| Some(entry(ip_of(&k)?, &v)))
            .collect();
        out.sort_by_key(|e| e.since);
        Ok(out)
    }

    /// Removes the quarantines whose time is up; returns them.
    pub fn expire(&mut self) -> Result<Vec<QuarantineEntry>, DataplaneError> {
        let now = SystemTime::now();
        let expired: Vec<QuarantineEntry> = self
            .quarantines()?
            .into_iter()
            .filter(|e| e.expires.is_some_and(|x| x <= now))
            .collect();
        for e in &expired {
            self.release(e.ip)?;
        }
        Ok(expired)
    }

    fn quarantine_map(
        &mut self,
    ) -> Result<HashMap<&mut aya::maps::MapData, QuarantineKey, Quarantine>, DataplaneError> {
        let name = map_names::QUARANTINE;
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(DataplaneError::Missing(name))?;
        HashMap::try_from(map).map_err(map_err(name))
    }

    /// Tells the programs how many entries there are (0 lets them skip the lookups).
    fn count_quarantines(&mut self) -> Result<(), DataplaneError> {
        let count = self.quarantine_map()?.keys().filter(Result::is_ok).count() as u32;
        let mut config = self.config()?;
        config.quarantined = count;
        self.set_config(config)
    }
}

/// The key of `ip` in the address-keyed tables (quarantine, host addresses).
pub(super) fn key(ip: IpAddr) -> QuarantineKey {
    let (bytes, fam) = match ip {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            (b, family::V4)
        }
        IpAddr::V6(a) => (a.octets(), family::V6),
    };
    QuarantineKey {
        addr: addr_from_bytes(bytes),
        family: fam,
        _pad: 0,
        _pad2: 0,
    }
}

/// The address of a key of those tables (`None` for an unknown family).
pub(super) fn ip_of(k: &QuarantineKey) -> Option<IpAddr> {
    let b = addr_to_bytes(k.addr);
    match k.family {
        family::V4 => Some(IpAddr::from([b[0], b[1], b[2], b[3]])),
        family::V6 => Some(IpAddr::from(b)),
        _ => None,
    }
}

fn entry(ip: IpAddr, v: &Quarantine) -> QuarantineEntry {
    let by = untext(&v.by);
    let fleet = (by.strip_prefix(FLEET_BY))
        .and_then(|version| version.parse().ok())
        .map(|version| FleetOrigin {
            version,
            author: String::new(),
            cidr: None,
        });
    QuarantineEntry {
        ip,
        reason: untext(&v.reason),
        by,
        fleet,
        since: UNIX_EPOCH + Duration::from_secs(v.since_unix),
        expires: (v.expires_unix != 0).then(|| UNIX_EPOCH + Duration::from_secs(v.expires_unix)),
    }
}

/// UTF-8 text in a zero-padded field, cut at a character boundary if too long.
pub(super) fn text<const N: usize>(s: &str) -> [u8; N] {
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = [0u8; N];
    out[..end].copy_from_slice(&s.as_bytes()[..end]);
    out
}

pub(super) fn untext(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_common::{QUARANTINE_BY_LEN, QUARANTINE_REASON_LEN};

    #[test]
    fn text_fields_round_trip_and_cut_at_char_boundaries() {
        let t: [u8; QUARANTINE_REASON_LEN] = text("scan of billing");
        assert_eq!(untext(&t), "scan of billing");
        let long = "é".repeat(40);
        let t: [u8; QUARANTINE_BY_LEN] = text(&long);
        assert_eq!(untext(&t), "é".repeat(16));
        for ip in ["198.18.20.10", "2001:db8:20::10"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_of(&key(ip)), Some(ip));
        }
    }
}
