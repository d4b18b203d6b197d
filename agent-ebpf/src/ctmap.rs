//! The two connection tables behind one key: IPv4 connections in
//! `CONNTRACK_V4` under a 16-byte key, IPv6 ones in `CONNTRACK_V6` under the full
//! [`CtKey`], so that the common family hashes and compares less than half the bytes.
use aya_ebpf::bindings::BPF_NOEXIST;
use ward_common::{family, CtKey, CtKey4, CtValue};

use crate::maps::{CONNTRACK_V4, CONNTRACK_V6};

/// The entry of `key`'s connection, if tracked. Not inlined (nor are the others): the
/// IPv4 key is built in a frame of its own, apart from the callers' call chains.
#[inline(never)]
pub fn get(key: &CtKey) -> Option<*mut CtValue> {
    if key.family == family::V4 {
        CONNTRACK_V4.get_ptr_mut(&CtKey4::of(key))
    } else {
        CONNTRACK_V6.get_ptr_mut(key)
    }
}

/// Tracks `key`'s connection with `value`. A full table evicts its least recently used
/// entry; an insert cannot fail otherwise.
#[inline(never)]
pub fn insert(key: &CtKey, value: &CtValue) {
    let _ = if key.family == family::V4 {
        CONNTRACK_V4.insert(&CtKey4::of(key), value, 0)
    } else {
        CONNTRACK_V6.insert(key, value, 0)
    };
}

/// Tracks `key`'s connection with `value` unless it is tracked already; whether it
/// was not. The kernel checks and inserts under the bucket's lock, so of two CPUs
/// opening one tuple at once, one inserts and the other finds it tracked.
#[inline(never)]
pub fn insert_new(key: &CtKey, value: &CtValue) -> bool {
    let flags = u64::from(BPF_NOEXIST);
    if key.family == family::V4 {
        CONNTRACK_V4.insert(&CtKey4::of(key), value, flags).is_ok()
    } else {
        CONNTRACK_V6.insert(key, value, flags).is_ok()
    }
}

/// Stops tracking `key`'s connection.
#[inline(never)]
pub fn remove(key: &CtKey) {
    let _ = if key.family == family::V4 {
        CONNTRACK_V4.remove(&CtKey4::of(key))
    } else {
        CONNTRACK_V6.remove(key)
    };
}
