//! Fuzz target `text`: UTF-8 -> IR text parser -> print -> parse must give the same graph
//! (see `graphc_fuzz::text`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| graphc_fuzz::text(data));
