//! Types and constants shared by Ward's kernel programs and its user-space agent.
//!
//! Every type here crosses the kernel/user boundary through a BPF map, so each is
//! `#[repr(C)]` with explicit padding and no `bool`. The user side gets
//! `aya::Pod` impls through the `user` feature.
//!
//! One module per concern, all re-exported here (`ward_common::CtKey`,
//! `ward_common::map_names::CONFIG`…):
//!
//! | module | holds |
//! | --- | --- |
//! | [`maps`] | map and program names, capacities, the agent's [`Config`] |
//! | [`keys`] | addresses, zone keys, protocol and family codes |
//! | [`rules`] | the rule tables: zone pairs and their port ranges |
//! | [`hosts`] | keys of the zone hashes (exact hosts, IPv6 /64s) |
//! | [`conntrack`] | connection and fragment keys and values, timeouts |
//! | [`verdicts`] | verdicts, reasons and their counters |
//! | [`events`] | flow events and their per-source budget |
//! | [`response`] | quarantine and break-glass entries |
//! | [`own`] | the filter in front of this host's own addresses |
//!
//! # Policy slots
//! The policy lives twice in the zone and rule maps, in slot 0 and slot 1 (the slot
//! is the first byte of every trie key, a field of every hash key; the range array
//! has a half per slot). [`Config::generation`] names the policy in
//! force and its parity names its slot: the agent fills the idle slot, then
//! publishes the new generation with one aligned 8-byte write, so a packet sees
//! either the whole old or the whole new policy.
#![cfg_attr(target_arch = "bpf", no_std)]

pub mod conntrack;
pub mod events;
pub mod hosts;
pub mod keys;
pub mod maps;
pub mod own;
pub mod response;
pub mod rules;
pub mod verdicts;

pub use conntrack::*;
pub use events::*;
pub use hosts::*;
pub use keys::*;
pub use maps::*;
pub use own::*;
pub use response::*;
pub use rules::*;
pub use verdicts::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_no_implicit_padding() {
        use core::mem::size_of;
        assert_eq!(size_of::<Config>(), 8 + 8 * 4 + 2 * FAILSAFE_PORTS + 2 * 8);
        assert_eq!(size_of::<OwnFilter>(), 4 * 8 + 4 + 4);
        assert_eq!(size_of::<FlowEvent>(), 8 + 16 + 16 + 6 * 4 + 2 * 2 + 5 + 7);
        assert_eq!(size_of::<EventBudget>(), 16);
        assert_eq!(size_of::<QuarantineKey>(), 20);
        assert_eq!(
            size_of::<Quarantine>(),
            24 + QUARANTINE_REASON_LEN + QUARANTINE_BY_LEN
        );
        assert_eq!(size_of::<CtKey>(), 16 + 16 + 2 + 2 + 1 + 1 + 2);
        assert_eq!(size_of::<CtKey4>(), 4 + 4 + 2 + 2 + 1 + 3);
        assert_eq!(size_of::<CtValue>(), 8 + 8 + 4 + 4 + 4 + 1 + 1 + 2 + 8 + 16);
        assert_eq!(size_of::<FlowBudget>(), 16);
        assert_eq!(size_of::<FragKey>(), 16 + 16 + 4 + 1 + 1 + 2);
        assert_eq!(size_of::<ZonePairKey>(), 16);
        assert_eq!(size_of::<Counter>(), 16);
        assert_eq!(size_of::<BreakglassKey>(), 4 + 4 + 2 + 1 + 1);
        assert_eq!(size_of::<HostKeyV4>(), 4 + 1 + 1 + 2);
        assert_eq!(size_of::<HostKeyV6>(), 16 + 1 + 1 + 2);
        assert_eq!(size_of::<NetKeyV6>(), 8 + 1 + 1 + 2);
        assert_eq!(size_of::<RulePairKey>(), 1 + 1 + 2 + 4 + 4);
        assert_eq!(size_of::<RulePair>(), 4 + 4);
        assert_eq!(size_of::<RuleRange>(), 2 + 2 + 4);
        assert_eq!(
            size_of::<BreakglassValue>(),
            8 + 4 + 4 + 8 + 8 + 4 * BREAKGLASS_NAME_LEN + BREAKGLASS_REASON_LEN
        );
    }

    #[test]
    fn addr_bytes_round_trip() {
        let b: [u8; 16] = core::array::from_fn(|i| i as u8 * 7);
        assert_eq!(addr_to_bytes(addr_from_bytes(b)), b);
    }

    #[test]
    fn reasons_are_indexed_in_order() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        assert_eq!(Reason::NoRule.verdict(), Verdict::Deny);
        assert_eq!(Reason::Established.verdict(), Verdict::Allow);
    }
}
