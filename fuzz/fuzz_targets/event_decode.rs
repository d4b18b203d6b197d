//! Arbitrary ring-buffer records through the event decoder (`ward_reference::fuzz::event_decode`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ward_reference::fuzz::event_decode(data);
});
