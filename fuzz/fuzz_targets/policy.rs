//! Arbitrary text through the policy loader and `ward explain` (`ward_reference::fuzz::policy`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ward_reference::fuzz::policy(data);
});
