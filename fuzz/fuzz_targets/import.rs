//! Fuzz target `import`: bytes -> ModelProto -> import -> verify -> text round trip ->
//! reference evaluation on small synthesized inputs (see `graphc_fuzz::import`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| graphc_fuzz::import(data));
