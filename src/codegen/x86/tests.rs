//! Emitted GEMM kernels against a naive f64-accumulated triple loop.
//!
//! Tolerance: |got - want| <= 1e-5 * sqrt(k) * (sum_p |a_ip * b_pj| + |c_prev| + |bias| + 1),
//! i.e. relative to the magnitude of the terms, scaled by sqrt(k) for f32 rounding growth.

use super::gemm::{emit_gemm, pack_b, Epilogue, GemmSpec, Isa};
use super::jit::{host_supports, JitGemm};

/// A tiny xorshift generator of floats in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next()).collect()
    }
}

/// The instruction sets this CPU runs (none: the tests return early).
fn isas() -> Vec<Isa> {
    let all = [Isa::Avx2, Isa::Avx512];
    let have: Vec<Isa> = all.into_iter().filter(|&i| host_supports(i)).collect();
    if have.len() < all.len() {
        eprintln!("testing only {have:?}: this CPU lacks the others");
    }
    have
}

/// One case on every instruction set: the spec, whether B is given transposed, and the row
/// range run.
fn check(spec: &GemmSpec, trans_b: bool, rows: std::ops::Range<usize>, seed: u64) {
    for isa in isas() {
        check_one(
            &GemmSpec {
                isa,
                ..spec.clone()
            },
            trans_b,
            rows.clone(),
            seed,
        );
    }
}

fn check_one(spec: &GemmSpec, trans_b: bool, rows: std::ops::Range<usize>, seed: u64) {
    let GemmSpec {
        m, n, k, lda, ldc, ..
    } = *spec;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let a = rng.vec(if spec.trans_a { k * lda } else { m * lda });
    let b = rng.vec(k * n);
    let bias = rng.vec(m.max(n));
    let c0 = rng.vec(m * ldc);
    let res = rng.vec(m * ldc);
    let kernel = JitGemm::new(spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
    let packed = pack_b(&b, k, n, trans_b).unwrap();
    let mut c = c0.clone();
    kernel
        .run_with(
            &a,
            &packed,
            &mut c,
            (spec.bias || spec.row_bias).then_some(&bias[..]),
            spec.residual.then_some(&res[..]),
            rows.clone(),
        )
        .unwrap();
    let at = |i: usize, p: usize| if spec.trans_a { a[p * lda + i] } else { a[i * lda + p] } as f64;
    let bt = |p: usize, j: usize| if trans_b { b[j * k + p] } else { b[p * n + j] } as f64;
    let tol = 1e-5 * (k as f64).sqrt();
    for i in 0..m {
        for j in 0..ldc {
            let got = c[i * ldc + j];
            let old = c0[i * ldc + j];
            if j >= n || !rows.contains(&i) {
                assert_eq!(got.to_bits(), old.to_bits(), "{spec:?} touched ({i},{j})");
                continue;
            }
            let mut want = 0.0f64;
            let mut mag = 1.0f64;
            for p in 0..k {
                want += at(i, p) * bt(p, j);
                mag += (at(i, p) * bt(p, j)).abs();
            }
            if spec.accumulate {
                want += old as f64;
                mag += (old as f64).abs();
            }
            if spec.bias {
                want += bias[j] as f64;
                mag += (bias[j] as f64).abs();
            }
            if spec.row_bias {
                want += bias[i] as f64;
                mag += (bias[i] as f64).abs();
            }
            if spec.residual {
                want += res[i * ldc + j] as f64;
                mag += (res[i * ldc + j] as f64).abs();
            }
            want = match spec.act {
                Epilogue::None => want,
                Epilogue::Relu => want.max(0.0),
                Epilogue::Clip { lo, hi } => want.max(lo as f64).min(hi as f64),
            };
            let err = (got as f64 - want).abs();
            assert!(
                err <= tol * mag,
                "{spec:?} trans_b={trans_b} rows={rows:?}: C[{i},{j}] = {got}, want {want}"
            );
        }
    }
}

fn skip() -> bool {
    isas().is_empty()
}

const SIZES: [usize; 12] = [1, 2, 5, 6, 7, 13, 16, 17, 31, 33, 64, 100];

#[test]
fn plain_shapes() {
    if skip() {
        return;
    }
    let mut seed = 0;
    for &m in &SIZES {
        for &n in &SIZES {
            for &k in &[1, 5, 16, 33, 100] {
                seed += 1;
                check(&GemmSpec::new(m, n, k), false, 0..m, seed);
            }
        }
    }
}

#[test]
fn every_k() {
    if skip() {
        return;
    }
    for (s, &k) in SIZES.iter().enumerate() {
        check(&GemmSpec::new(13, 33, k), s % 2 == 1, 0..13, s as u64);
    }
}

#[test]
fn strides_transposes_and_epilogues() {
    if skip() {
        return;
    }
    let acts = [
        Epilogue::None,
        Epilogue::Relu,
        Epilogue::Clip { lo: -0.5, hi: 0.75 },
    ];
    let mut seed = 100;
    for &(m, n, k) in &[
        (7, 17, 5),
        (13, 31, 33),
        (6, 16, 16),
        (1, 100, 7),
        (100, 2, 64),
    ] {
        for flags in 0..16u32 {
            for act in acts {
                seed += 1;
                let trans_a = flags & 1 != 0;
                let spec = GemmSpec {
                    m,
                    n,
                    k,
                    lda: if trans_a { m + 3 } else { k + 2 },
                    ldc: n + 5,
                    trans_a,
                    accumulate: flags & 2 != 0,
                    bias: flags & 4 != 0,
                    act,
                    isa: Isa::Avx2,
                    ..GemmSpec::new(m, n, k)
                };
                check(&spec, flags & 8 != 0, 0..m, seed);
            }
        }
    }
}

#[test]
fn row_ranges_leave_other_rows_alone() {
    if skip() {
        return;
    }
    let mut seed = 500;
    for &(m, n, k) in &[(31, 33, 17), (100, 17, 64), (13, 100, 5)] {
        for &(b, e) in &[
            (0, 6),
            (6, 12),
            (3, 10),
            (5, 6),
            (7, 200),
            (12, 12),
            (20, 3),
            (0, 1),
        ] {
            seed += 1;
            let mut spec = GemmSpec::new(m, n, k);
            spec.accumulate = seed % 2 == 0;
            spec.bias = true;
            check(&spec, false, b.min(m)..e.min(m).max(b.min(m)), seed);
            // The kernel itself clamps m_end to m; check the raw range too.
            for isa in isas() {
                let kernel = JitGemm::new(&GemmSpec {
                    isa,
                    ..spec.clone()
                })
                .unwrap();
                let (a, packed, bias) = (vec![1.0; m * k], vec![1.0; 17 * k * 7], vec![0.0; n]);
                let mut c = vec![0.0f32; m * n];
                kernel.run(&a, &packed, &mut c, Some(&bias), b..e).unwrap();
            }
        }
    }
}

#[test]
fn row_bias_and_residual() {
    if skip() {
        return;
    }
    let mut seed = 900;
    for &(m, n, k) in &[
        (7, 17, 5),
        (13, 31, 33),
        (64, 49, 64),
        (100, 2, 9),
        (11, 40, 1500),
    ] {
        for flags in 0..8u32 {
            seed += 1;
            let spec = GemmSpec {
                ldc: n + (flags as usize & 1) * 3,
                row_bias: flags & 2 != 0,
                residual: flags & 4 != 0,
                accumulate: flags == 5,
                act: if flags & 1 != 0 {
                    Epilogue::Relu
                } else {
                    Epilogue::Clip { lo: -0.5, hi: 0.5 }
                },
                ..GemmSpec::new(m, n, k)
            };
            check(&spec, flags & 1 != 0, 0..m, seed);
            check(&spec, false, 3.min(m)..m, seed);
        }
    }
}

#[test]
fn k_blocked() {
    if skip() {
        return;
    }
    // Long K splits into several blocks: C is reloaded between them, bias and ReLU only once.
    for &(m, n, k, acc) in &[
        (13, 40, 1500, false),
        (7, 1024, 700, true),
        (6, 5, 2051, false),
    ] {
        let spec = GemmSpec {
            accumulate: acc,
            bias: true,
            act: Epilogue::Relu,
            ..GemmSpec::new(m, n, k)
        };
        assert!(spec.kc() < k, "{spec:?} should be K-blocked");
        check(&spec, acc, 0..m, k as u64);
    }
}

#[test]
fn large() {
    if skip() {
        return;
    }
    check(&GemmSpec::new(256, 256, 256), false, 0..256, 1);
    let conv = GemmSpec {
        bias: true,
        act: Epilogue::Relu,
        ..GemmSpec::new(3136, 64, 576)
    };
    check(&conv, true, 0..3136, 2);
}

#[test]
fn bad_specs_are_errors() {
    assert!(emit_gemm(&GemmSpec::new(0, 4, 4)).is_err());
    assert!(emit_gemm(&GemmSpec {
        lda: 3,
        ..GemmSpec::new(4, 4, 4)
    })
    .is_err());
    assert!(emit_gemm(&GemmSpec {
        ldc: 3,
        ..GemmSpec::new(4, 4, 4)
    })
    .is_err());
    assert!(emit_gemm(&GemmSpec::new(4, 4, usize::MAX / 2)).is_err());
    let clip = Epilogue::Clip { lo: 1.0, hi: 0.0 };
    assert!(emit_gemm(&GemmSpec {
        act: clip,
        ..GemmSpec::new(4, 4, 4)
    })
    .is_err());
    assert!(pack_b(&[1.0; 3], 2, 2, false).is_err());
}

#[test]
fn peak_loop_runs() {
    if skip() {
        return;
    }
    for isa in isas() {
        let gflops = super::peak::PeakLoop::new(isa).unwrap().measure(100_000, 1);
        assert!(gflops > 1.0, "{gflops}");
    }
}

#[test]
fn bytes_go_into_a_pic_object_module() {
    use cranelift_codegen::ir::{types, AbiParam};
    use cranelift_codegen::settings::{self, Configurable};
    use cranelift_module::{default_libcall_names, Linkage, Module};
    use cranelift_object::{ObjectBuilder, ObjectModule};

    let mut flags = settings::builder();
    flags.set("is_pic", "true").unwrap();
    let isa = cranelift_codegen::isa::lookup_by_name("x86_64-unknown-linux-gnu")
        .unwrap()
        .finish(settings::Flags::new(flags))
        .unwrap();
    let builder = ObjectBuilder::new(isa, "gemm", default_libcall_names()).unwrap();
    let mut module = ObjectModule::new(builder);
    let mut sig = module.make_signature();
    sig.params.extend((0..6).map(|_| AbiParam::new(types::I64)));
    let spec = GemmSpec {
        bias: true,
        act: Epilogue::Relu,
        ..GemmSpec::new(50, 70, 600)
    };
    let mut all = Vec::new();
    for (i, isa) in [Isa::Avx2, Isa::Avx512].into_iter().enumerate() {
        let bytes = emit_gemm(&GemmSpec {
            isa,
            ..spec.clone()
        })
        .unwrap();
        let id = module
            .declare_function(&format!("gemm_{i}"), Linkage::Export, &sig)
            .unwrap();
        module.define_function_bytes(id, 64, &bytes, &[]).unwrap();
        all.push(bytes);
    }
    let object = module.finish().emit().unwrap();
    for bytes in all {
        assert!(
            object.windows(bytes.len()).any(|w| w == bytes),
            "code bytes stored unchanged"
        );
    }
}

#[test]
fn threads_on_disjoint_row_ranges_match_one_call() {
    if skip() {
        return;
    }
    let spec = GemmSpec {
        bias: true,
        act: Epilogue::Relu,
        isa: *isas().last().unwrap(),
        ..GemmSpec::new(100, 40, 70)
    };
    let (m, n, k) = (spec.m, spec.n, spec.k);
    let mut rng = Rng(7);
    let (a, b, bias) = (rng.vec(m * k), rng.vec(k * n), rng.vec(n));
    let packed = pack_b(&b, k, n, false).unwrap();
    let kernel = JitGemm::new(&spec).unwrap();
    let mut whole = vec![0.0f32; m * n];
    kernel
        .run(&a, &packed, &mut whole, Some(&bias), 0..m)
        .unwrap();

    // Split at multiples of MR, as a thread pool would; the kernel is reentrant.
    let mut split = vec![0.0f32; m * n];
    let f = kernel.func();
    let ptrs = (
        a.as_ptr() as usize,
        packed.as_ptr() as usize,
        split.as_mut_ptr() as usize,
    );
    let bias_ptr = bias.as_ptr() as usize;
    std::thread::scope(|s| {
        for (lo, hi) in [(0, 36), (36, 72), (72, 100)] {
            s.spawn(move || {
                let (a, b, c) = ptrs;
                // SAFETY: the buffers outlive the scope and the row ranges are disjoint.
                unsafe {
                    f(
                        a as *const f32,
                        b as *const f32,
                        c as *mut f32,
                        bias_ptr as *const f32,
                        lo,
                        hi,
                        std::ptr::null(),
                    )
                }
            });
        }
    });
    assert!(whole
        .iter()
        .zip(&split)
        .all(|(x, y)| x.to_bits() == y.to_bits()));
}
