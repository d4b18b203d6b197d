//! What the pipeline knows of one packet besides its headers: where it was judged
//! ([`Hook`]), the agent's settings and the time ([`Settings`]), what was decided
//! ([`Decision`]), and the per-packet state kept off the stack ([`Scratch`]).
use core::cell::Cell;

use aya_ebpf::helpers::bpf_ktime_get_ns;
use ward_common::{CtKey, Reason, Verdict, ZONE_AUDIT, ZONE_ID_MASK};

use crate::parse::{l3::Ip, l4::Flow};

/// Where a packet was judged.
pub struct Hook {
    /// The program's context (`xdp_md` or `__sk_buff`), for helpers that take it.
    pub ctx: *mut core::ffi::c_void,
    /// Interface index.
    pub ifindex: u32,
    /// `direction::*`.
    pub direction: u8,
}

/// The agent's settings and the time, as one packet sees them.
pub struct Settings {
    /// Policy generation in force (0: none yet).
    pub generation: u64,
    /// `bpf_ktime_get_ns` when the packet was first asked for the time (0: not yet):
    /// read through [`Settings::now`], so that a path that needs no clock reads none.
    pub now: Clock,
    /// `Config::flags`.
    pub flags: u32,
    /// `Config::log_level`.
    pub log_level: u32,
    /// `Config::events_per_source`.
    pub events_per_source: u32,
    /// `Config::quarantined`.
    pub quarantined: u32,
    /// `Config::flows_per_source`.
    pub flows_per_source: u32,
    /// `Config::flow_burst`.
    pub flow_burst: u32,
    /// `Config::events_per_cpu`.
    pub events_per_cpu: u32,
    /// The packet's hook as `ward_common::fast_hook` encodes it: connection tracking
    /// renews the fast-path permission of the packet's endpoint with it when it finds
    /// the packet established; 0 when the packet may not renew it (a fragment, ICMP).
    pub mark: u32,
    /// The fast path looked the packet's connection up and found none: the full
    /// pipeline does not look again (`fast::Fast::Untracked`).
    pub untracked: bool,
    /// Whether any failsafe port is configured.
    pub failsafe: bool,
    /// `Config::zone_skip` of the slot in force.
    pub zone_skip: u8,
}

impl Settings {
    /// The time of this packet's judgement, read from the clock at the first call.
    #[inline(always)]
    pub fn now(&self) -> u64 {
        self.now.get()
    }
}

/// A packet's time, read from the clock when first asked for (`bpf_ktime_get_ns`).
pub struct Clock(Cell<u64>);

// SAFETY: a `Clock` lives in one CPU's scratch entry for one hook direction, which one
// program run uses at a time (see `verdict::judge`); it is never shared.
unsafe impl Sync for Clock {}

impl Clock {
    /// Not read yet.
    #[inline(always)]
    pub const fn unread() -> Self {
        Clock(Cell::new(0))
    }

    /// The time, read from the clock at the first call.
    #[inline(always)]
    pub fn get(&self) -> u64 {
        let t = self.0.get();
        if t != 0 {
            return t;
        }
        // SAFETY: a helper without arguments or preconditions.
        let t = unsafe { bpf_ktime_get_ns() };
        self.0.set(t);
        t
    }
}

/// What the core decided about a packet.
pub struct Decision {
    /// Why.
    pub reason: Reason,
    /// Whether the zone pair is known (it is not for malformed packets, fragments…).
    pub has_zones: bool,
    /// Source zone id (the initiator's, for packets of a tracked connection).
    pub src_zone: u32,
    /// Destination zone id (the responder's, for packets of a tracked connection).
    pub dst_zone: u32,
    /// Rule that allowed the flow, or `NO_RULE`.
    pub rule_id: u32,
    /// One of the zones is in audit mode, or the connection passes only because it is audited.
    pub audited: bool,
    /// Whether this packet is worth an event (the first of a flow, not its followers).
    pub notable: bool,
    /// What the connection lookup is for (`conntrack::pending`): an ordinary packet's
    /// own, an echo reply's, an ICMP error's (the quoted connection), or a lone SYN's.
    pub pending: u8,
}

impl Decision {
    /// Records the zone pair from a [`ZonePair`]'s values (flags included).
    #[inline(always)]
    pub fn set_zone_pair(&mut self, zones: ZonePair) {
        self.set_zones(zones.src(), zones.dst());
    }

    /// Records the zone pair from two zone trie values (flags included).
    #[inline(always)]
    pub fn set_zones(&mut self, src: u32, dst: u32) {
        self.has_zones = true;
        self.audited |= (src | dst) & ZONE_AUDIT != 0;
        self.src_zone = src & ZONE_ID_MASK;
        self.dst_zone = dst & ZONE_ID_MASK;
    }
}

/// Two zone values (id and `ZONE_*` flags), source then destination, in one word.
#[derive(Clone, Copy)]
pub struct ZonePair(u64);

impl ZonePair {
    /// The pair of `src`'s and `dst`'s zone values.
    #[inline(always)]
    pub fn new(src: u32, dst: u32) -> Self {
        Self(u64::from(src) | (u64::from(dst) << 32))
    }

    /// The source's zone value.
    #[inline(always)]
    pub fn src(self) -> u32 {
        self.0 as u32
    }

    /// The destination's zone value.
    #[inline(always)]
    pub fn dst(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// Everything about the judged packet that is not in its headers, for its event.
pub struct Context<'a> {
    /// Where it was judged.
    pub hook: &'a Hook,
    /// Settings and time.
    pub settings: &'a Settings,
    /// Final verdict (after audit).
    pub verdict: Verdict,
    /// Frame length.
    pub bytes: u32,
}

/// Per-packet state, kept in a per-CPU map rather than on the 512-byte stack (on 6.1 the
/// verifier rounds every frame of a call chain up to 32 bytes and counts them all).
pub struct Scratch {
    /// The agent's settings and the time.
    pub settings: Settings,
    /// What the network-layer parse found.
    pub ip: Ip,
    /// What the transport-layer parse found.
    pub flow: Flow,
    /// What was decided.
    pub d: Decision,
    /// The packet's connection key (the quoted packet's, for an ICMP error): written
    /// whole by the transport parse before anything reads it, never zeroed.
    pub key: CtKey,
    /// The TC program's frame length, passed through memory so that the verifier does
    /// not carry the skb field's bounds into the parse (`ward_tc_egress`).
    pub frame_len: u64,
}
