//! Back end: machine code for the compiled model.
//!
//! So far this holds only the x86-64 GEMM micro-kernels ([`x86`]), emitted as raw bytes at
//! compile time and placed into a Cranelift module as function bytes.
pub mod x86;
