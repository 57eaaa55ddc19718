//! Measures this machine's single-core FMA peak with a tight emitted loop.
//!
//! The loop runs 12 independent `vfmadd231ps` chains (more than latency × throughput on
//! current cores), two rounds per iteration, with no memory traffic, on ymm (AVX2, the
//! reference for the 70% target) or zmm (AVX-512) registers. The GEMM kernels report their
//! speed as a fraction of this number.

use super::gemm::Isa;
use super::jit::{host_supports, JitCode};
use iced_x86::code_asm::*;

/// FLOPs one iteration of the peak loop performs: 24 FMAs × lanes × 2.
pub fn flops_per_iter(isa: Isa) -> u64 {
    24 * isa.lanes() as u64 * 2
}

/// Emits `extern "C" fn(iters: u64)` running [`flops_per_iter`] FLOPs per iteration.
pub fn emit_peak_loop(isa: Isa) -> Result<Vec<u8>, String> {
    let inner = || -> Result<Vec<u8>, IcedError> {
        let mut a = CodeAssembler::new(64)?;
        let ymm = [
            ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11,
        ];
        let zmm = [
            zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11,
        ];
        let mut again = a.create_label();
        let mut done = a.create_label();
        for r in ymm {
            a.vxorps(r, r, r)?;
        }
        a.vxorps(ymm12, ymm12, ymm12)?;
        a.vxorps(ymm13, ymm13, ymm13)?;
        a.test(rdi, rdi)?;
        a.jz(done)?;
        a.set_label(&mut again)?;
        for _ in 0..2 {
            for (y, z) in ymm.into_iter().zip(zmm) {
                match isa {
                    Isa::Avx2 => a.vfmadd231ps(y, ymm12, ymm13)?,
                    Isa::Avx512 => a.vfmadd231ps(z, zmm12, zmm13)?,
                }
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
    isa: Isa,
}

impl PeakLoop {
    /// Emits and JIT-compiles the loop; errors when this CPU lacks `isa`.
    pub fn new(isa: Isa) -> Result<Self, String> {
        if !host_supports(isa) {
            return Err(format!("this CPU lacks {isa:?}"));
        }
        let code = JitCode::new("fma_peak", &emit_peak_loop(isa)?, 1)?;
        Ok(PeakLoop { code, isa })
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
                (iters * flops_per_iter(self.isa)) as f64 / t.elapsed().as_secs_f64() / 1e9
            })
            .fold(0.0, f64::max)
    }
}

/// The single-core FMA peak for `isa` in GFLOP/s (best of a few ~0.1 s runs).
pub fn measure_peak_gflops(isa: Isa) -> Result<f64, String> {
    let lp = PeakLoop::new(isa)?;
    Ok(lp.measure(2_000_000_000 * 5 / flops_per_iter(isa), 5))
}
