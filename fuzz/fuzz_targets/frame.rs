//! Arbitrary Ethernet frames through the reference dataplane (`ward::fuzz::frame`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ward::fuzz::frame(data);
});
