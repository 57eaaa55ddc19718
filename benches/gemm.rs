//! GEMM micro-kernel throughput against the measured single-core FMA peak.
//!
//! `cargo bench --bench gemm` prints (stderr) the peak and, per shape, the median GFLOP/s and
//! its fraction of the peak, for the AVX2 kernels against the 256-bit peak and (where the CPU
//! has it) the AVX-512 kernels against the 512-bit peak; criterion keeps its usual statistics
//! for the AVX2 kernels. `GEMM_BENCH_QUICK=1` skips criterion and prints only the medians.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use graphc::codegen::x86::gemm::{pack_b, GemmSpec, Isa};
use graphc::codegen::x86::jit::{host_supports, JitGemm};
use graphc::codegen::x86::peak::{flops_per_iter, measure_peak_gflops, PeakLoop};
use std::time::Instant;

const SHAPES: [(&str, usize, usize, usize); 11] = [
    ("square-128", 128, 128, 128),
    ("square-256", 256, 256, 256),
    ("square-512", 512, 512, 512),
    ("conv-3136x64x576", 3136, 64, 576),
    ("conv-784x128x1152", 784, 128, 1152),
    ("conv-196x256x2304", 196, 256, 2304),
    ("conv-49x512x4608", 49, 512, 4608),
    ("mlp-1x1024x1024", 1, 1024, 1024),
    ("mlp-64x1024x1024", 64, 1024, 1024),
    ("conv-3136x64x64-1x1", 3136, 64, 64),
    ("conv-784x128x128-1x1", 784, 128, 128),
];

/// A copy of `v` whose data starts at a 64-byte boundary (as a compiler's weight data would).
fn aligned(v: Vec<f32>) -> Aligned {
    let mut buf = vec![0.0f32; v.len() + 16];
    let off = buf.as_ptr().align_offset(64);
    buf[off..off + v.len()].copy_from_slice(&v);
    Aligned {
        buf,
        off,
        len: v.len(),
    }
}

struct Aligned {
    buf: Vec<f32>,
    off: usize,
    len: usize,
}

impl std::ops::Deref for Aligned {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buf[self.off..self.off + self.len]
    }
}

struct Case {
    kernel: JitGemm,
    a: Vec<f32>,
    b: Aligned,
    c: Vec<f32>,
    flops: f64,
}

impl Case {
    fn new(m: usize, n: usize, k: usize, isa: Isa) -> Case {
        let spec = GemmSpec {
            isa,
            ..GemmSpec::new(m, n, k)
        };
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.01)
            .collect();
        Case {
            kernel: JitGemm::new(&spec).expect("kernel"),
            a: (0..m * k)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.01)
                .collect(),
            b: aligned(pack_b(&b, k, n, false).expect("pack")),
            c: vec![0.0; m * n],
            flops: 2.0 * (m * n * k) as f64,
        }
    }

    fn run(&mut self) {
        let m = self.kernel.spec().m;
        self.kernel
            .run(&self.a, &self.b, &mut self.c, None, 0..m)
            .expect("run");
    }

    /// Rates over `samples` rounds of about 20 ms each, every round timing the FMA peak loop
    /// right before the GEMM so that the fraction compares like with like on a shared machine:
    /// (median GEMM GFLOP/s, best GEMM GFLOP/s, median of per-round GEMM/peak ratios).
    fn measure(&mut self, peak: &PeakLoop, samples: usize) -> (f64, f64, f64) {
        let t = Instant::now();
        self.run();
        let reps = ((0.02 / t.elapsed().as_secs_f64().max(1e-7)) as usize).clamp(1, 100_000);
        let peak_iters = 2_000_000_000 / flops_per_iter(self.kernel.spec().isa);
        let (mut rates, mut ratios) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            let p = peak.measure(peak_iters, 1);
            let t = Instant::now();
            for _ in 0..reps {
                self.run();
            }
            let rate = self.flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9;
            rates.push(rate);
            ratios.push(rate / p);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let best = rates.iter().copied().fold(0.0, f64::max);
        (median(&mut rates), best, median(&mut ratios))
    }
}

fn bench(c: &mut Criterion) {
    let quick = std::env::var_os("GEMM_BENCH_QUICK").is_some();
    for (isa, bits) in [(Isa::Avx2, 256), (Isa::Avx512, 512)] {
        if !host_supports(isa) {
            eprintln!("gemm bench: this CPU lacks {isa:?}");
            continue;
        }
        let peak = measure_peak_gflops(isa).expect("peak");
        eprintln!("fma-peak (1 core, {bits}-bit): {peak:.1} GFLOP/s (best of 5)");
        let lp = PeakLoop::new(isa).expect("peak loop");
        let criterion = !quick && isa == Isa::Avx2;
        if criterion {
            let mut g = c.benchmark_group("fma-peak");
            g.throughput(Throughput::Elements(1_000_000 * flops_per_iter(isa)));
            g.bench_function("loop", |b| b.iter(|| lp.run(1_000_000)));
            g.finish();
        }
        for (name, m, n, k) in SHAPES {
            let mut case = Case::new(m, n, k, isa);
            let (median, best, ratio) = case.measure(&lp, 15);
            eprintln!(
                "{isa:?} {name:>22}: median {median:6.1} GFLOP/s (best {best:6.1}), {:5.1}% of \
                 the {bits}-bit peak (median of per-round ratios)",
                100.0 * ratio
            );
            if criterion {
                let mut g = c.benchmark_group("gemm");
                g.throughput(Throughput::Elements(case.flops as u64));
                g.bench_function(name, |b| b.iter(|| case.run()));
                g.finish();
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
