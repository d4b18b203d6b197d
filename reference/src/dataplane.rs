//! The reference dataplane: judges whole frames exactly as `docs/dataplane.md` says,
//! as the ingress (XDP) program of a host does, for differential tests against the
//! kernel programs. Timeouts, budgets, the failsafe, quarantine and the gateway's
//! reverse-path check are not modelled (the differential test configures none).
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ward_common::{addr_to_bytes, family, proto, tcp_state, Addr, CtKey, FragKey, Reason, Verdict};

use crate::frame::{self, addr_bytes, Body, Endpoint, Flow, Net, Parsed, Upper};
use ward::policy::{Policy, ZoneIndex};

/// A tracked connection: who opened it, which generation last allowed it, its TCP state.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    initiator_is_a: bool,
    generation: u64,
    tcp_state: u8,
}

/// A plain-Rust model of the kernel dataplane, with its own connection and fragment tables.
#[derive(Clone, Debug, Default)]
pub struct ReferenceDataplane {
    policy: Option<(Policy, ZoneIndex)>,
    generation: u64,
    connections: HashMap<CtKey, Tracked>,
    fragments: HashSet<FragKey>,
    own: HashSet<IpAddr>,
}

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const FIN: u8 = 0x01;
const ACK: u8 = 0x10;
const ICMPV6: u8 = 58;

/// Whether a TCP segment may open a connection: SYN without ACK, RST or FIN.
fn opens_tcp(flags: u8) -> bool {
    flags & (SYN | ACK | RST | FIN) == SYN
}

/// Whether `frame` is a TCP segment with a lone SYN, which the rules judge before
/// connection tracking (`docs/dataplane.md`, step 7).
pub(crate) fn is_lone_syn(frame: &[u8]) -> bool {
    matches!(
        frame::parse(frame),
        Parsed::Ip {
            body: Body::Packet {
                upper: Some(Upper::Flow(flow)),
                ..
            },
            ..
        } if flow.proto == proto::TCP && opens_tcp(flow.tcp_flags)
    )
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

    /// Counts `addr` among the host's own addresses (what the agent writes to the
    /// kernel's host address table).
    pub fn add_own_address(&mut self, addr: IpAddr) {
        self.own.insert(addr);
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
        let (net, body) = match frame::parse(frame) {
            Parsed::NotIp => return Reason::NotIp,
            Parsed::Malformed => return Reason::Malformed,
            Parsed::Ip { net, body } => (net, body),
        };
        if self.spoofed(&net) {
            return Reason::Spoofed;
        }
        if self.generation == 0 {
            return Reason::NoPolicy;
        }
        let (first_fragment, upper) = match body {
            Body::NonFirstFragment(key) if self.fragments.contains(&key) => {
                return Reason::FragmentOfAllowed
            }
            Body::NonFirstFragment(_) => return Reason::FragmentWithoutFirst,
            Body::Packet { upper: None, .. } => return Reason::Malformed,
            Body::Packet {
                first_fragment,
                upper: Some(upper),
            } => (first_fragment, upper),
        };
        let reason = match upper {
            Upper::NeighbourDiscovery(ty) => self.neighbour(&net, ty),
            Upper::Mld => mld(&net),
            Upper::Other => Reason::NoRule,
            Upper::Error(quoted) => self.icmp_error(&net, quoted),
            Upper::EchoReply(flow) => self.tracked(&flow).unwrap_or(Reason::NoRule),
            Upper::Flow(flow) if self.dhcp_client(&net, &flow) => Reason::BuiltIn,
            // A lone SYN is judged by the rules first: one no rule allows is denied
            // whatever the connection table holds for its tuple (step 7).
            Upper::Flow(flow)
                if flow.proto == proto::TCP
                    && opens_tcp(flow.tcp_flags)
                    && self.rule_for(&flow).is_none() =>
            {
                Reason::NoRule
            }
            Upper::Flow(flow) => match self.tracked(&flow) {
                Some(reason) => reason,
                None if flow.proto == proto::TCP && !opens_tcp(flow.tcp_flags) => {
                    self.stateless(&flow)
                }
                None => self.new_flow(&flow),
            },
        };
        if let (Verdict::Allow, Some(key)) = (reason.verdict(), first_fragment) {
            if matches!(
                reason,
                Reason::AllowedByRule | Reason::Established | Reason::Related
            ) {
                self.fragments.insert(key);
            }
        }
        reason
    }

    /// Anti-spoofing on ingress: martian sources, loopback destinations, own sources.
    fn spoofed(&self, net: &Net) -> bool {
        let martian = match (net.src, net.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let (s0, d0) = (src.octets()[0], dst.octets()[0]);
                if d0 == 127 || s0 == 127 || s0 >= 224 {
                    true
                } else if s0 == 0 {
                    let dhcp = net.ip_proto == proto::UDP && net.ports == Some((68, 67));
                    !(src.is_unspecified() && dhcp)
                } else {
                    false
                }
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                src.octets()[0] == 0xff
                    || src.is_loopback()
                    || dst.is_loopback()
                    || src.to_ipv4_mapped().is_some()
                    || (src.is_unspecified() && net.ip_proto != ICMPV6)
            }
            _ => unreachable!("one family per packet"),
        };
        martian || self.own.contains(&net.src)
    }

    /// Neighbour discovery: hop limit 255, to this link, RA and redirect from link-local.
    fn neighbour(&self, net: &Net, ty: u8) -> Reason {
        let from_link_local = is_link_local(net.src);
        if net.hop_limit != 255 || (matches!(ty, 134 | 137) && !from_link_local) {
            return Reason::NotOnLink;
        }
        if !(is_link_local(net.dst) || is_link_multicast(net.dst) || self.own.contains(&net.dst)) {
            return Reason::NotOnLink;
        }
        Reason::NeighbourDiscovery
    }

    /// The DHCP server's answers to this host's client, on ingress.
    fn dhcp_client(&self, net: &Net, flow: &Flow) -> bool {
        if flow.proto != proto::UDP {
            return false;
        }
        match net.dst {
            IpAddr::V4(dst) => {
                (flow.src.port, flow.dst.port) == (67, 68)
                    && (dst == Ipv4Addr::BROADCAST || self.own.contains(&net.dst))
            }
            IpAddr::V6(_) => {
                (flow.src.port, flow.dst.port) == (547, 546)
                    && (is_link_local(net.dst) || self.own.contains(&net.dst))
            }
        }
    }

    /// An ICMP error: related when it goes back to the quoted packet's sender, is no
    /// longer than RFC 1812 / RFC 4443 allow and quotes a tracked connection; otherwise
    /// judged by the policy as ordinary ICMP between its own addresses.
    fn icmp_error(&mut self, net: &Net, quoted: Option<Flow>) -> Reason {
        let max = if net.src.is_ipv4() { 576 } else { 1280 };
        let plain = Flow::new(net.src, net.dst, proto::ICMP, 0, 0);
        let Some(quoted) = quoted.filter(|q| q.src.addr == net.dst && net.len <= max) else {
            return self.stateless(&plain);
        };
        match self.tracked(&quoted) {
            Some(Reason::Established) => Reason::Related,
            Some(other) => other,
            None => self.stateless(&plain),
        }
    }

    /// Step 6: the verdict on a tracked connection, `None` when it is not tracked (or
    /// a SYN starts a new connection on its tuple).
    fn tracked(&mut self, flow: &Flow) -> Option<Reason> {
        let (key, src_is_a) = ct_key(flow);
        let mut entry = *self.connections.get(&key)?;
        if flow.proto == proto::TCP {
            let from_initiator = entry.initiator_is_a == src_is_a;
            let closed = matches!(entry.tcp_state, tcp_state::CLOSING | tcp_state::CLOSED);
            if opens_tcp(flow.tcp_flags) && (!from_initiator || closed) {
                return None;
            }
            entry.tcp_state = advance_tcp(entry.tcp_state, from_initiator, flow.tcp_flags);
            self.connections.insert(key, entry);
        }
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
        let mut opened = Flow::new(initiator.addr, responder.addr, flow.proto, 0, 0);
        opened.src = initiator;
        opened.dst = responder;
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
        let tcp_state = if flow.proto == proto::TCP {
            tcp_state::SYN_SENT
        } else {
            tcp_state::NONE
        };
        self.connections.insert(
            key,
            Tracked {
                initiator_is_a: src_is_a,
                generation: self.generation,
                tcp_state,
            },
        );
        Reason::AllowedByRule
    }

    /// A packet that may not open a connection, judged by the rules alone.
    fn stateless(&self, flow: &Flow) -> Reason {
        match self.rule_for(flow) {
            Some(_) => Reason::AllowedByRule,
            None => Reason::NoRule,
        }
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

/// MLD: hop limit 1, to a link-scope group, from a link-local or unspecified source.
fn mld(net: &Net) -> Reason {
    let unspecified = matches!(net.src, IpAddr::V6(a) if a.is_unspecified());
    if net.hop_limit == 1 && is_link_multicast(net.dst) && (is_link_local(net.src) || unspecified) {
        Reason::BuiltIn
    } else {
        Reason::NotOnLink
    }
}

/// The TCP state after a segment with `flags` (`docs/dataplane.md`, step 6).
fn advance_tcp(state: u8, from_initiator: bool, flags: u8) -> u8 {
    if flags & RST != 0 {
        tcp_state::CLOSED
    } else if flags & FIN != 0 && state != tcp_state::CLOSED {
        tcp_state::CLOSING
    } else if state == tcp_state::SYN_SENT && !from_initiator && flags & (SYN | ACK) == SYN | ACK {
        tcp_state::SYN_RECV
    } else if state == tcp_state::SYN_RECV && from_initiator && flags & (SYN | ACK) == ACK {
        tcp_state::ESTABLISHED
    } else {
        state
    }
}

/// fe80::/10.
fn is_link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
}

/// ff02::/16.
fn is_link_multicast(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(a) if a.segments()[0] == 0xff02)
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
