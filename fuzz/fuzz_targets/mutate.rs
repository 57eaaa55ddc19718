//! Fuzz target `mutate`: a seed model mutated by the fuzz bytes, imported, optimized, and
//! the optimized graph checked against the unoptimized one on seeded inputs (see
//! `graphc_fuzz::mutate`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| graphc_fuzz::mutate(data));
