//! GEMM micro-kernel throughput against the measured single-core 256-bit FMA peak.
//!
//! `cargo bench --bench gemm` prints (stderr) the peak and, per shape, the median GFLOP/s and
//! its fraction of the peak; criterion keeps its usual statistics. `GEMM_BENCH_QUICK=1` skips
//! criterion and prints only the medians.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use graphc::codegen::x86::gemm::{pack_b, GemmSpec};
use graphc::codegen::x86::jit::{host_supports_avx2_fma, JitGemm};
use graphc::codegen::x86::peak::{measure_peak_gflops, PeakLoop, FLOPS_PER_ITER};
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

struct Case {
    kernel: JitGemm,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    flops: f64,
}

impl Case {
    fn new(m: usize, n: usize, k: usize) -> Case {
        let spec = GemmSpec::new(m, n, k);
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.01)
            .collect();
        Case {
            kernel: JitGemm::new(&spec).expect("kernel"),
            a: (0..m * k)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.01)
                .collect(),
            b: pack_b(&b, k, n, false).expect("pack"),
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

    /// Median GFLOP/s over `samples` timed batches of about 20 ms each.
    fn median_gflops(&mut self, samples: usize) -> f64 {
        let t = Instant::now();
        self.run();
        let reps = ((0.02 / t.elapsed().as_secs_f64().max(1e-7)) as usize).clamp(1, 100_000);
        let mut rates: Vec<f64> = (0..samples)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..reps {
                    self.run();
                }
                self.flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9
            })
            .collect();
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    }
}

fn bench(c: &mut Criterion) {
    if !host_supports_avx2_fma() {
        eprintln!("gemm bench: no AVX2/FMA on this CPU, nothing to measure");
        return;
    }
    let peak = measure_peak_gflops().expect("peak");
    eprintln!("fma-peak (1 core, 256-bit): {peak:.1} GFLOP/s");
    let quick = std::env::var_os("GEMM_BENCH_QUICK").is_some();
    if !quick {
        let lp = PeakLoop::new().expect("peak loop");
        let mut g = c.benchmark_group("fma-peak");
        g.throughput(Throughput::Elements(1_000_000 * FLOPS_PER_ITER));
        g.bench_function("loop", |b| b.iter(|| lp.run(1_000_000)));
        g.finish();
    }
    for (name, m, n, k) in SHAPES {
        let mut case = Case::new(m, n, k);
        let gflops = case.median_gflops(15);
        eprintln!(
            "{name:>22}: {gflops:6.1} GFLOP/s  {:5.1}% of peak",
            100.0 * gflops / peak
        );
        if !quick {
            let mut g = c.benchmark_group("gemm");
            g.throughput(Throughput::Elements(case.flops as u64));
            g.bench_function(name, |b| b.iter(|| case.run()));
            g.finish();
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
