//! Arbitrary text through the policy loader and `ward explain` (`ward::fuzz::policy`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ward::fuzz::policy(data);
});
