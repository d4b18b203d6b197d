//! The reference dataplane: judges whole frames exactly as `docs/dataplane.md` says,
//! for differential tests against the kernel programs. Timeouts are not modelled.
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ward_common::{addr_to_bytes, family, proto, Addr, CtKey, FragKey, Reason, Verdict};

use super::evaluate::ZoneIndex;
use super::frame::{self, addr_bytes, Endpoint, Flow, Parsed, Upper};
use super::Policy;

/// A tracked connection: who opened it and which generation last allowed it.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    initiator_is_a: bool,
    generation: u64,
}

/// A plain-Rust model of the kernel dataplane, with its own connection and fragment tables.
#[derive(Clone, Debug, Default)]
pub struct ReferenceDataplane {
    policy: Option<(Policy, ZoneIndex)>,
    generation: u64,
    connections: HashMap<CtKey, Tracked>,
    fragments: HashSet<FragKey>,
}

impl ReferenceDataplane {
    /// A dataplane enforcing `policy` (generation 1).
    pub fn new(policy: &Policy) -> Self {
        let mut dataplane = Self::without_policy();
        dataplane.set_policy(policy);
        dataplane
    }

    /// A dataplane with no policy yet (generation 0): every IP packet is denied.
    pub fn without_policy() -> Self {
        Self::default()
    }

    /// Replaces the policy and bumps the generation; tracked connections are re-judged
    /// on their next packet.
    pub fn set_policy(&mut self, policy: &Policy) {
        self.policy = Some((policy.clone(), ZoneIndex::new(policy)));
        self.generation += 1;
    }

    /// The generation in force (0: no policy).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Judges one Ethernet frame, updating the connection and fragment tables.
    pub fn judge(&mut self, frame: &[u8]) -> (Verdict, Reason) {
        let reason = self.reason(frame);
        (reason.verdict(), reason)
    }

    fn reason(&mut self, frame: &[u8]) -> Reason {
        let (first_fragment, upper) = match frame::parse(frame) {
            Parsed::NotIp => return Reason::NotIp,
            Parsed::Malformed => return Reason::Malformed,
            _ if self.generation == 0 => return Reason::NoPolicy,
            Parsed::NonFirstFragment(key) if self.fragments.contains(&key) => {
                return Reason::FragmentOfAllowed
            }
            Parsed::NonFirstFragment(_) => return Reason::FragmentWithoutFirst,
            Parsed::Packet {
                first_fragment,
                upper,
            } => (first_fragment, upper),
        };
        let reason = match upper {
            Upper::NeighbourDiscovery => Reason::NeighbourDiscovery,
            Upper::Other | Upper::Error(None) => Reason::NoRule,
            Upper::Error(Some(flow)) if self.connections.contains_key(&ct_key(&flow).0) => {
                Reason::Related
            }
            Upper::Error(Some(_)) => Reason::NoRule,
            Upper::EchoReply(flow) => self.tracked(&flow).unwrap_or(Reason::NoRule),
            Upper::Flow(flow) => match self.tracked(&flow) {
                Some(reason) => reason,
                None => self.new_flow(&flow),
            },
        };
        if let (Verdict::Allow, Some(key)) = (reason.verdict(), first_fragment) {
            self.fragments.insert(key);
        }
        reason
    }

    /// Step 6: the verdict on a tracked connection, `None` when it is not tracked.
    fn tracked(&mut self, flow: &Flow) -> Option<Reason> {
        let (key, _) = ct_key(flow);
        let entry = *self.connections.get(&key)?;
        if entry.generation == self.generation {
            return Some(Reason::Established);
        }
        let a = Endpoint {
            addr: key_addr(&key.addr_a, key.family),
            port: key.port_a,
        };
        let b = Endpoint {
            addr: key_addr(&key.addr_b, key.family),
            port: key.port_b,
        };
        let (initiator, responder) = if entry.initiator_is_a { (a, b) } else { (b, a) };
        let opened = Flow {
            src: initiator,
            dst: responder,
            proto: flow.proto,
        };
        if self.rule_for(&opened).is_some() {
            self.connections.insert(
                key,
                Tracked {
                    generation: self.generation,
                    ..entry
                },
            );
            Some(Reason::Established)
        } else {
            self.connections.remove(&key);
            Some(Reason::PolicyRevoked)
        }
    }

    /// Step 7: a new flow, tracked when a rule allows it.
    fn new_flow(&mut self, flow: &Flow) -> Reason {
        if self.rule_for(flow).is_none() {
            return Reason::NoRule;
        }
        let (key, src_is_a) = ct_key(flow);
        self.connections.insert(
            key,
            Tracked {
                initiator_is_a: src_is_a,
                generation: self.generation,
            },
        );
        Reason::AllowedByRule
    }

    /// The first rule allowing `flow` as opened by its source.
    fn rule_for(&self, flow: &Flow) -> Option<u32> {
        let (policy, zones) = self.policy.as_ref()?;
        let port = if flow.proto == proto::ICMP {
            0
        } else {
            flow.dst.port
        };
        policy.first_rule(
            zones.zone_of(flow.src.addr),
            zones.zone_of(flow.dst.addr),
            flow.proto,
            port,
        )
    }
}

/// The direction-free connection key of `flow`, and whether its source is endpoint `a`.
fn ct_key(flow: &Flow) -> (CtKey, bool) {
    let src = (addr_bytes(flow.src.addr), flow.src.port);
    let dst = (addr_bytes(flow.dst.addr), flow.dst.port);
    let src_is_a = src <= dst;
    let ((addr_a, port_a), (addr_b, port_b)) = if src_is_a { (src, dst) } else { (dst, src) };
    let fam = if flow.src.addr.is_ipv4() {
        family::V4
    } else {
        family::V6
    };
    (
        CtKey {
            addr_a,
            addr_b,
            port_a,
            port_b,
            proto: flow.proto,
            family: fam,
            _pad: [0; 2],
        },
        src_is_a,
    )
}

fn key_addr(addr: &Addr, fam: u8) -> IpAddr {
    let bytes = addr_to_bytes(*addr);
    if fam == family::V4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(bytes))
    }
}
