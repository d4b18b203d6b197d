//! The two policy slots: the kernel reads the one of the generation in force, a new
//! policy is written into the other, then one write of the generation switches to it.
//! Which slot is next or in force is computed here and nowhere else.
use std::sync::Arc;

use tracing::debug;
use ward_common::Config;

use super::{
    policy_maps,
    slot_entries::{SlotEntries, ZoneFlags},
    Dataplane, DataplaneError,
};
use crate::{breakglass::Grant, policy::CompiledPolicy};

/// Where the next policy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextSlot {
    /// The generation it will have.
    pub generation: u64,
    /// The idle slot it is written into.
    pub slot: u8,
}

impl Dataplane {
    /// The generation and slot the next [`Dataplane::publish`] writes.
    pub fn next_slot(&self) -> Result<NextSlot, DataplaneError> {
        let generation = self.config()?.generation + 1;
        Ok(NextSlot {
            generation,
            slot: ward_common::slot_of(generation),
        })
    }

    /// The slot of the generation in force.
    pub fn slot_in_force(&self) -> Result<u8, DataplaneError> {
        Ok(ward_common::slot_of(self.config()?.generation))
    }

    /// Writes `policy` into the idle slot and publishes it; returns the new generation.
    /// Packets see the old policy until the publishing write, the new one after it.
    /// The idle slot's break-glass entries are left as they are ([`Dataplane::publish`]
    /// writes them too).
    pub fn apply(&mut self, policy: &CompiledPolicy) -> Result<u64, DataplaneError> {
        let next = self.next_slot()?;
        self.write_policy(next, policy)
    }

    /// [`Dataplane::apply`] with `grants` written into the idle slot first, so that
    /// the grants in force stay in force across the switch; returns the new generation.
    pub fn publish(
        &mut self,
        policy: &CompiledPolicy,
        grants: &[Grant],
    ) -> Result<u64, DataplaneError> {
        let next = self.next_slot()?;
        self.write_grants(next.slot, policy, grants)?;
        self.write_policy(next, policy)
    }

    /// Writes `grants` into the slot in force, whose policy is `policy`.
    pub fn write_grants_in_force(
        &mut self,
        policy: &CompiledPolicy,
        grants: &[Grant],
    ) -> Result<(), DataplaneError> {
        let slot = self.slot_in_force()?;
        self.write_grants(slot, policy, grants)
    }

    /// The generation in force if it is exactly `policy` (with this agent's zone flags),
    /// as when an agent restarts with an unchanged policy: nothing needs rewriting.
    pub fn in_force(&self, policy: &CompiledPolicy) -> Result<Option<u64>, DataplaneError> {
        let config = self.config()?;
        let slot = usize::from(ward_common::slot_of(config.generation));
        let digest = self.zone_flags(policy)?.digest(policy);
        Ok(
            (config.generation != 0 && config.slot_digest[slot] == digest)
                .then_some(config.generation),
        )
    }

    /// Writes `policy` into `next`'s slot, then switches to its generation.
    fn write_policy(
        &mut self,
        next: NextSlot,
        policy: &CompiledPolicy,
    ) -> Result<u64, DataplaneError> {
        let flags = self.zone_flags(policy)?;
        // A reload that changed only rules takes the zone entries of what a slot holds.
        let known: Vec<&SlotEntries> = self.held.iter().flatten().map(Arc::as_ref).collect();
        let entries = Arc::new(SlotEntries::of_like(policy, &flags, &known));
        let mut config = self.fill(next.slot, entries, flags.digest(policy))?;
        config.generation = next.generation;
        self.set_config(config)?;
        Ok(next.generation)
    }

    /// Brings the idle slot to the policy in force, `policy`, without switching to
    /// it: the next [`Dataplane::publish`] then writes only its difference from the
    /// policy in force, whatever the slot held before (a full replace, or nothing
    /// this agent knows of after a restart). Packets do not read the idle slot.
    pub fn sync_idle(&mut self, policy: &CompiledPolicy) -> Result<(), DataplaneError> {
        let (idle, in_force) = (
            usize::from(self.next_slot()?.slot),
            usize::from(self.slot_in_force()?),
        );
        let flags = self.zone_flags(policy)?;
        let digest = flags.digest(policy);
        let config = self.config()?;
        // The entries in force are shared with its slot when this agent wrote them.
        let entries = match &self.held[in_force] {
            Some(held) if config.slot_digest[in_force] == digest => held.clone(),
            _ => Arc::new(SlotEntries::of(policy, &flags)),
        };
        // The slot digests vouch for what an earlier agent wrote (as for
        // `Dataplane::in_force`): after a restart, nothing needs writing, and the
        // zone lookup's skips (zeroed at load) are those of the entries vouched for.
        let mut vouched = config;
        if config.slot_digest[in_force] == digest {
            vouched.zone_skip[in_force] = entries.zone_skip();
            self.held[in_force] = Some(entries.clone());
        }
        if config.slot_digest[idle] == digest {
            vouched.zone_skip[idle] = entries.zone_skip();
            self.held[idle] = Some(entries);
            return self.set_config(vouched);
        }
        self.set_config(vouched)?;
        let config = self.fill(idle as u8, entries, digest)?;
        self.set_config(config)
    }

    /// Makes `slot` hold `entries`, whose digest is `digest`, writing the difference
    /// from what it holds when known. Returns the configuration with that digest, for
    /// the caller to write (with the generation that switches to the slot, if it does).
    fn fill(
        &mut self,
        slot: u8,
        entries: Arc<SlotEntries>,
        digest: u64,
    ) -> Result<Config, DataplaneError> {
        let mut config = self.config()?;
        let i = usize::from(slot);
        // The slot is about to hold something else: a restart must not trust it, nor
        // this agent until the write is complete; nor may the programs skip a place
        // of its zone lookup that the write may fill.
        config.slot_digest[i] = 0;
        config.zone_skip[i] = 0;
        self.set_config(config)?;
        let held = self.held[i].take();
        let how = if held.is_some() {
            "the difference"
        } else {
            "every entry"
        };
        let written = policy_maps::write_slot(&mut self.ebpf, slot, &entries, held.as_deref())?;
        drop(held);
        debug!(
            "slot {slot}: {} entries removed, {} written ({how}; the policy has {})",
            written.removed,
            written.written,
            entries.len()
        );
        config.slot_digest[i] = digest;
        config.zone_skip[i] = entries.zone_skip();
        self.held[i] = Some(entries);
        Ok(config)
    }

    /// The configuration's zone flags, resolved against `policy`'s zone ids.
    fn zone_flags(&self, policy: &CompiledPolicy) -> Result<ZoneFlags, DataplaneError> {
        let mut quarantine_allow = Vec::with_capacity(self.quarantine_allow.len());
        for name in &self.quarantine_allow {
            let id = policy.zone_id(name);
            quarantine_allow.push(id.ok_or_else(|| DataplaneError::UnknownZone(name.clone()))?);
        }
        Ok(ZoneFlags { quarantine_allow })
    }
}
