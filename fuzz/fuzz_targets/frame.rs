//! Arbitrary Ethernet frames through the reference dataplane (`ward_reference::fuzz::frame`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ward_reference::fuzz::frame(data);
});
