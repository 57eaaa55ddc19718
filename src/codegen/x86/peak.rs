//! Measures this machine's single-core 256-bit FMA peak with a tight emitted loop.
//!
//! The loop runs 12 independent `vfmadd231ps ymm` chains (more than latency × throughput on
//! current cores), two rounds per iteration, with no memory traffic. The GEMM kernels report
//! their speed as a fraction of this number.

use super::jit::JitCode;
use iced_x86::code_asm::*;

/// FLOPs one iteration of the peak loop performs: 24 FMAs × 8 lanes × 2.
pub const FLOPS_PER_ITER: u64 = 24 * 8 * 2;

/// Emits `extern "C" fn(iters: u64)` running [`FLOPS_PER_ITER`] FLOPs per iteration.
pub fn emit_peak_loop() -> Result<Vec<u8>, String> {
    let inner = || -> Result<Vec<u8>, IcedError> {
        let mut a = CodeAssembler::new(64)?;
        let acc = [
            ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11,
        ];
        let mut again = a.create_label();
        let mut done = a.create_label();
        for r in acc {
            a.vxorps(r, r, r)?;
        }
        a.vxorps(ymm12, ymm12, ymm12)?;
        a.vxorps(ymm13, ymm13, ymm13)?;
        a.test(rdi, rdi)?;
        a.jz(done)?;
        a.set_label(&mut again)?;
        for _ in 0..2 {
            for r in acc {
                a.vfmadd231ps(r, ymm12, ymm13)?;
            }
        }
        a.dec(rdi)?;
        a.jnz(again)?;
        a.set_label(&mut done)?;
        a.vzeroupper()?;
        a.ret()?;
        a.assemble(0)
    };
    inner().map_err(|e| format!("peak: assembler: {e}"))
}

/// A compiled peak loop.
pub struct PeakLoop {
    code: JitCode,
}

impl PeakLoop {
    /// Emits and JIT-compiles the loop.
    pub fn new() -> Result<Self, String> {
        Ok(PeakLoop {
            code: JitCode::new("fma_peak", &emit_peak_loop()?, 1)?,
        })
    }

    /// Runs `iters` iterations.
    pub fn run(&self, iters: u64) {
        // SAFETY: the code was emitted with this signature and touches no memory.
        let f: unsafe extern "C" fn(u64) = unsafe { std::mem::transmute(self.code.ptr()) };
        unsafe { f(iters) }
    }

    /// GFLOP/s of the best of `rounds` timed runs of `iters` iterations each.
    pub fn measure(&self, iters: u64, rounds: usize) -> f64 {
        self.run(iters / 10 + 1);
        (0..rounds.max(1))
            .map(|_| {
                let t = std::time::Instant::now();
                self.run(iters);
                (iters * FLOPS_PER_ITER) as f64 / t.elapsed().as_secs_f64() / 1e9
            })
            .fold(0.0, f64::max)
    }
}

/// The single-core 256-bit FMA peak in GFLOP/s (best of a few ~0.1 s runs).
pub fn measure_peak_gflops() -> Result<f64, String> {
    Ok(PeakLoop::new()?.measure(20_000_000, 5))
}
