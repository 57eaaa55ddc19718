//! x86-64 AVX2/FMA machine code emitted with `iced-x86` (shape-specialized GEMM kernels).
//!
//! Everything here produces position-independent leaf functions with no relocations, so the
//! bytes can be placed into any Cranelift module (`define_function_bytes`), JIT or object.
//! Callers check [`jit::host_supports_avx2_fma`] first and fall back to 128-bit Cranelift code
//! when it is false.
pub mod gemm;
pub mod jit;
pub mod peak;

#[cfg(test)]
mod tests;
