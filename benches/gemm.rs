//! GEMM micro-kernel throughput against the measured single-core FMA peak.
//!
//! Then whole conv nodes of ResNet-50 (batch 1) through the gemm kernel family, single
//! threaded: GFLOP/s of the node and the share of its time spent in the pack/im2col launch.
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

/// A one-node graph compiled by the kernel families into its own JIT module, with buffers.
struct NodeCase {
    module: Option<cranelift_jit::JITModule>,
    launches: Vec<(graphc::codegen::kernel::Launch, Vec<*mut u8>)>,
    _bufs: Vec<Aligned>,
    flops: f64,
}

impl NodeCase {
    /// `x` and `w` are graph inputs (as weights would be constants: read in place either way).
    fn conv(x: [usize; 4], w: [usize; 4], attrs: &str, out: [usize; 4]) -> NodeCase {
        use graphc::codegen::kernel::{KernelCx, Operand, Target};
        let d = |v: &[usize]| format!("{v:?}").replace(' ', "");
        let text = format!(
            "graph \"g\" (%x: f32{}, %w: f32{}) {{\n  %y: f32{} = conv {attrs} (%x, %w)\n  \
             return %y\n}}\n",
            d(&x),
            d(&w),
            d(&out)
        );
        let g = graphc_passes::ir::text::parse(&text).expect("parse");
        let node = graphc::codegen::testing::single_compute_node(&g).expect("node");
        let mut module = graphc::codegen::testing::jit_module().expect("a JIT module");
        let lowered = {
            let mut cx = KernelCx::new(&mut module, Target::host(), "bench_");
            graphc::codegen::kernels::lower(&mut cx, &g, node)
                .expect("lower")
                .expect("a kernel")
        };
        module.finalize_definitions().unwrap();
        let numel = |v: &[usize]| v.iter().product::<usize>();
        let mut bufs = vec![
            aligned((0..numel(&x)).map(|i| (i % 7) as f32 * 0.1).collect()),
            aligned((0..numel(&w)).map(|i| (i % 5) as f32 * 0.01).collect()),
            aligned(vec![0.0; numel(&out)]),
            aligned(vec![0.0; lowered.scratch_bytes / 4 + 16]),
        ];
        let ptr = |b: &mut Aligned| b.buf[b.off..].as_mut_ptr() as *mut u8;
        let mut launches = Vec::new();
        for l in lowered.launches {
            let ptrs = l
                .operands
                .iter()
                .map(|op| match *op {
                    Operand::Input(i) => ptr(&mut bufs[i]),
                    Operand::Output(_) => ptr(&mut bufs[2]),
                    Operand::Scratch(off) => ptr(&mut bufs[3]).wrapping_add(off),
                    Operand::Const(id) => module.get_finalized_data(id).0 as *mut u8,
                    Operand::Dims(_) => unreachable!("a Conv's output shape is static"),
                })
                .collect();
            launches.push((l, ptrs));
        }
        NodeCase {
            module: Some(module),
            launches,
            _bufs: bufs,
            flops: 2.0 * (numel(&out) * numel(&w[1..])) as f64,
        }
    }

    /// Runs launch `i` over all its items on this thread.
    fn run_launch(&self, i: usize) {
        let (l, ptrs) = &self.launches[i];
        let module = self.module.as_ref().expect("module");
        let f: unsafe extern "C" fn(*const *mut u8, u64, u64) =
            // SAFETY: kernels have the uniform kernel signature.
            unsafe { std::mem::transmute(module.get_finalized_function(l.func)) };
        // SAFETY: the operands point at live buffers of the sizes the graph says.
        unsafe { f(ptrs.as_ptr(), 0, l.items) };
    }

    /// (GFLOP/s of the whole node, share of time in launches before the last), medians.
    fn measure(&self) -> (f64, f64) {
        let n = self.launches.len();
        let t = Instant::now();
        (0..n).for_each(|i| self.run_launch(i));
        let reps = ((0.05 / t.elapsed().as_secs_f64().max(1e-7)) as usize).clamp(1, 10_000);
        let (mut rates, mut shares) = (Vec::new(), Vec::new());
        for _ in 0..9 {
            let mut times = vec![0.0f64; n];
            for _ in 0..reps {
                for (i, time) in times.iter_mut().enumerate() {
                    let t = Instant::now();
                    self.run_launch(i);
                    *time += t.elapsed().as_secs_f64();
                }
            }
            let total: f64 = times.iter().sum();
            rates.push(self.flops * reps as f64 / total / 1e9);
            shares.push((total - times[n - 1]) / total);
        }
        rates.sort_by(f64::total_cmp);
        shares.sort_by(f64::total_cmp);
        (rates[4], shares[4])
    }
}

impl Drop for NodeCase {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: no pointer into the module outlives the case.
            unsafe { m.free_memory() };
        }
    }
}

/// MobileNet-V2 depthwise and ResNet-50 conv nodes at batch 1 (x, w, attributes, output).
const CONVS: [(&str, [usize; 4], [usize; 4], &str, [usize; 4]); 9] = [
    (
        "dw3x3-144-56",
        [1, 144, 56, 56],
        [144, 1, 3, 3],
        "{group: 144, pads: [1, 1, 1, 1]}",
        [1, 144, 56, 56],
    ),
    (
        "dw3x3s2-96-112",
        [1, 96, 112, 112],
        [96, 1, 3, 3],
        "{group: 96, pads: [1, 1, 1, 1], strides: [2, 2]}",
        [1, 96, 56, 56],
    ),
    (
        "conv1-7x7s2-3>64-224",
        [1, 3, 224, 224],
        [64, 3, 7, 7],
        "{pads: [3, 3, 3, 3], strides: [2, 2]}",
        [1, 64, 112, 112],
    ),
    (
        "3x3-64>64-56",
        [1, 64, 56, 56],
        [64, 64, 3, 3],
        "{pads: [1, 1, 1, 1]}",
        [1, 64, 56, 56],
    ),
    (
        "1x1-256>64-56",
        [1, 256, 56, 56],
        [64, 256, 1, 1],
        "{}",
        [1, 64, 56, 56],
    ),
    (
        "1x1-64>256-56",
        [1, 64, 56, 56],
        [256, 64, 1, 1],
        "{}",
        [1, 256, 56, 56],
    ),
    (
        "3x3s2-128>128-56",
        [1, 128, 56, 56],
        [128, 128, 3, 3],
        "{pads: [1, 1, 1, 1], strides: [2, 2]}",
        [1, 128, 28, 28],
    ),
    (
        "3x3-256>256-14",
        [1, 256, 14, 14],
        [256, 256, 3, 3],
        "{pads: [1, 1, 1, 1]}",
        [1, 256, 14, 14],
    ),
    (
        "3x3-512>512-7",
        [1, 512, 7, 7],
        [512, 512, 3, 3],
        "{pads: [1, 1, 1, 1]}",
        [1, 512, 7, 7],
    ),
];

fn bench_convs() {
    for (name, x, w, attrs, out) in CONVS {
        let case = NodeCase::conv(x, w, attrs, out);
        let (rate, share) = case.measure();
        eprintln!(
            "conv node {name:>20}: {rate:6.1} GFLOP/s (1 thread), {:4.1}% of the time in pack/im2col",
            100.0 * share
        );
    }
}

fn bench(c: &mut Criterion) {
    bench_convs();
    if std::env::var_os("GEMM_BENCH_CONV_ONLY").is_some() {
        return;
    }
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
