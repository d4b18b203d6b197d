//! Ward's kernel programs: XDP on ingress, TC on egress, one verdict core.
//!
//! This file holds the hooks only; the rest is one module per concern:
//! `verdict` (the pipeline) behind `fast` (established connections by one lookup),
//! over `parse`, `spoof`, `guards`, `link`, `conntrack`,
//! `budget`, `lookup`, `counters` and `events`, with `context` (per-packet state) and
//! `maps` (every map) beneath.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod budget;
#[cfg(target_arch = "bpf")]
mod conntrack;
#[cfg(target_arch = "bpf")]
mod context;
#[cfg(target_arch = "bpf")]
mod counters;
#[cfg(target_arch = "bpf")]
mod ctmap;
#[cfg(target_arch = "bpf")]
mod events;
#[cfg(target_arch = "bpf")]
mod fast;
#[cfg(target_arch = "bpf")]
mod guards;
#[cfg(target_arch = "bpf")]
mod link;
#[cfg(target_arch = "bpf")]
mod lookup;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod parse;
#[cfg(target_arch = "bpf")]
mod spoof;
#[cfg(target_arch = "bpf")]
mod verdict;

#[cfg(target_arch = "bpf")]
mod programs {
    use aya_ebpf::{
        bindings::{xdp_action, TC_ACT_OK, TC_ACT_SHOT},
        macros::{classifier, xdp},
        programs::{TcContext, XdpContext},
    };
    use ward_common::{direction, FLAG_GATEWAY};

    use crate::{
        context::Hook,
        maps::{ATTACHED, CONFIG, SCRATCH},
        parse::Frame,
        verdict,
    };

    /// Bytes of an skb that must be linear for the parser (headers beyond are refused).
    const TC_LINEAR: u32 = 256;

    #[xdp]
    pub fn ward_xdp(ctx: XdpContext) -> u32 {
        let frame = Frame {
            data: ctx.data(),
            data_end: ctx.data_end(),
            len: ctx.data_end() - ctx.data(),
        };
        let hook = Hook {
            ctx: ctx.ctx as *mut core::ffi::c_void,
            ifindex: ctx.ingress_ifindex() as u32,
            direction: direction::INGRESS,
        };
        if verdict::judge(&frame, &hook) {
            xdp_action::XDP_PASS
        } else {
            xdp_action::XDP_DROP
        }
    }

    #[classifier]
    pub fn ward_tc_egress(ctx: TcContext) -> i32 {
        let gateway = CONFIG.get(0).is_some_and(|c| c.flags & FLAG_GATEWAY != 0);
        // A gateway's XDP program judged the packets it forwards from the interfaces it
        // guards; here its own traffic and what came in through any other interface.
        // SAFETY: `ctx.skb.skb` is the `__sk_buff` the kernel passed in, valid for the
        // program run; the field read is one the verifier allows a classifier.
        let arrived_on = unsafe { (*ctx.skb.skb).ingress_ifindex };
        // SAFETY: the entry's memory stays valid for the program run; only its presence
        // is used.
        if gateway && arrived_on != 0 && unsafe { ATTACHED.get(&arrived_on) }.is_some() {
            return TC_ACT_OK as i32;
        }
        let len = ctx.len();
        let want = if len < TC_LINEAR { len } else { TC_LINEAR };
        if ((ctx.data_end() - ctx.data()) as u32) < want {
            let _ = ctx.pull_data(want);
        }
        let Some(scratch) = SCRATCH.get_ptr_mut(u32::from(direction::EGRESS)) else {
            // Cannot happen (a per-CPU array entry within bounds); fail closed if it does.
            return TC_ACT_SHOT as i32;
        };
        // The skb's length, read back from this hook's scratch entry: the verifier then
        // knows nothing of it, as of XDP's frame length. Taken straight from the skb, its
        // 32-bit bounds made 6.1's verifier walk this program twice as far (381k
        // instructions against XDP's 192k).
        // SAFETY: this CPU's TC entry, valid for the program run and used by nothing
        // else meanwhile (see `verdict::judge`); a plain integer written, then read.
        let len = unsafe {
            core::ptr::write_volatile(&raw mut (*scratch).frame_len, u64::from(len));
            core::ptr::read_volatile(&raw const (*scratch).frame_len)
        };
        let frame = Frame {
            data: ctx.data(),
            data_end: ctx.data_end(),
            len: len as usize,
        };
        let hook = Hook {
            ctx: ctx.skb.skb as *mut core::ffi::c_void,
            // SAFETY: as for `ingress_ifindex` above.
            ifindex: unsafe { (*ctx.skb.skb).ifindex },
            direction: direction::EGRESS,
        };
        if verdict::judge(&frame, &hook) {
            TC_ACT_OK as i32
        } else {
            TC_ACT_SHOT as i32
        }
    }

    /// Benchmark floor: the cheapest XDP program, to measure Ward against.
    #[xdp]
    pub fn ward_bench_floor(_ctx: XdpContext) -> u32 {
        xdp_action::XDP_PASS
    }

    /// Benchmark load generator: run with live frames, it sends every frame out again.
    #[xdp]
    pub fn ward_bench_tx(_ctx: XdpContext) -> u32 {
        xdp_action::XDP_TX
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    panic!(
        "ward-ebpf holds kernel programs: build it for bpfel-unknown-none (agent/build.rs does)"
    );
}

// SAFETY: a plain byte string in the `license` section, where the loader reads the
// licence; no other item is named `LICENSE`, so the unmangled symbol clashes with none.
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
