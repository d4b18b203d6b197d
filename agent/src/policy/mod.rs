//! Zone policy: model, loading and merge, checker, compiler, reference evaluator.
//! (placeholder until the policy branch lands)
use ipnet::{Ipv4Net, Ipv6Net};

/// One rule trie entry.
pub struct RuleEntry {
    pub src_zone: u32,
    pub dst_zone: u32,
    pub proto: u8,
    pub port: u16,
    pub port_bits: u8,
    pub rule_id: u32,
}

/// Compiled policy.
pub struct CompiledPolicy {
    pub v4: Vec<(Ipv4Net, u32)>,
    pub v6: Vec<(Ipv6Net, u32)>,
    pub rules: Vec<RuleEntry>,
}
