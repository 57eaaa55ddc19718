//! Back end: machine code for the compiled model.
//!
//! - [`program`]: a whole model compiled into one module (kernels, fallbacks, the entry
//!   function over the memory plan's arena); [`jit`]: that module in memory, run on the
//!   runtime's thread pool;
//! - [`bounded`]: outputs whose shape the data decides, compiled with an upper bound and
//!   their actual dims reported at run time;
//! - [`kernel`]: the contract between the compiler and its kernels (uniform kernel ABI,
//!   launches, operands, the module a kernel is emitted into);
//! - [`kernels`]: the kernel families and the choice of one per node;
//! - [`x86`]: AVX2/AVX-512 GEMM micro-kernels emitted as raw bytes at compile time and placed
//!   into the Cranelift module as function bytes;
//! - [`testing`]: one node's kernels run in isolation against the reference evaluator.
pub mod aot;
pub mod bounded;
pub mod buffer;
pub(crate) mod decompose;
pub mod jit;
pub mod kernel;
pub mod kernels;
pub mod program;
pub mod testing;
pub mod x86;
