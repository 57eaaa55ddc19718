//! Tests of the indexing and loss kernels against the reference, on seeded random data and
//! indices (in range unless a test says otherwise).

use graphc_passes::eval::{compare, eval_graph};
use graphc_passes::ir::text::parse;
use graphc_passes::ir::{DType, Tensor};

use crate::codegen::kernel::Target;
use crate::codegen::testing::{run_node, single_compute_node};

/// A small seeded generator (64-bit LCG, high bits).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// An integer in `lo..hi`.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }

    /// A value in [-2, 2).
    fn real(&mut self) -> f64 {
        (self.next() as f64 / (1u64 << 31) as f64) * 4.0 - 2.0
    }
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Random values in [-2, 2) of `dt` (integers truncated, like `random_inputs`).
fn data(rng: &mut Rng, shape: &[usize], dt: DType) -> Tensor {
    let v: Vec<f64> = (0..numel(shape)).map(|_| rng.real() * 20.0).collect();
    Tensor::from_vec(shape, v).unwrap().cast(dt)
}

/// f32 scores in [-2, 2).
fn scores(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let v: Vec<f32> = (0..numel(shape)).map(|_| rng.real() as f32).collect();
    Tensor::from_vec(shape, v).unwrap()
}

/// Integers in `lo..hi` of `dt`.
fn ints(rng: &mut Rng, shape: &[usize], lo: i64, hi: i64, dt: DType) -> Tensor {
    let v: Vec<i64> = (0..numel(shape)).map(|_| rng.int(lo, hi)).collect();
    Tensor::from_vec(shape, v).unwrap().cast(dt)
}

fn dims(shape: &[usize]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Runs the one-node graph `text` on `inputs` with the reference and the kernels, comparing
/// every output within `atol + rtol * |expected|`. Panics when no kernel compiles the node.
fn check_on(text: &str, inputs: Vec<Option<Tensor>>, rtol: f64, atol: f64) {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let node = single_compute_node(&g).unwrap();
    let want = eval_graph(&g, &inputs).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let got = run_node(&g, node, &inputs, Target::host())
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .unwrap_or_else(|| panic!("no kernel\n{text}"));
    for (w, o) in want.iter().zip(&g.outputs) {
        compare(&got[o.value.port as usize], w, rtol, atol)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

/// The kernel outputs of `text` on `inputs` (`None` when declined).
fn run(text: &str, inputs: Vec<Option<Tensor>>) -> Option<Vec<Tensor>> {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let node = single_compute_node(&g).unwrap();
    run_node(&g, node, &inputs, Target::host()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// `graph "g" (ins) { node; return outs }`.
fn graph(ins: &str, node: &str, outs: &str) -> String {
    format!("graph \"g\" ({ins}) {{\n  {node}\n  return {outs}\n}}\n")
}

#[test]
fn gather_elements_any_axis_and_type() {
    let mut rng = Rng(1);
    let cases: [(&[usize], &[usize], i64, DType, DType); 8] = [
        (&[2, 2], &[2, 2], 1, DType::F32, DType::I64),
        (&[3, 3], &[2, 3], 0, DType::F32, DType::I64),
        (&[3, 5, 7], &[3, 2, 7], 1, DType::F32, DType::I32),
        (&[4, 1, 6], &[2, 1, 5], -1, DType::I64, DType::I64),
        (&[1, 9], &[1, 13], 1, DType::U8, DType::I32),
        (&[2, 3, 4, 5], &[2, 3, 4, 5], 2, DType::F64, DType::I64),
        (&[5, 3, 2], &[7, 2, 1], 0, DType::I16, DType::I64),
        (&[6], &[11], 0, DType::F32, DType::I32),
    ];
    for (xs, is, axis, dt, it) in cases {
        let d = xs[if axis < 0 {
            xs.len() - 1
        } else {
            axis as usize
        }] as i64;
        let text = graph(
            &format!("%x: {dt}{}, %i: {it}{}", dims(xs), dims(is)),
            &format!(
                "%y: {dt}{} = gather_elements {{axis: {axis}}} (%x, %i)",
                dims(is)
            ),
            "%y",
        );
        let x = data(&mut rng, xs, dt);
        let i = ints(&mut rng, is, -d, d, it);
        check_on(&text, vec![Some(x), Some(i)], 0.0, 0.0);
    }
}

#[test]
fn gather_elements_constant_indices_and_out_of_range() {
    let mut rng = Rng(2);
    // Constant indices in range compile; one out of range declines.
    let text = |vals: &str| {
        format!(
            "graph \"g\" (%x: f32[3,4]) {{\n  %i: i64[2,4] = constant {{value: i64[2,4] [{vals}]}}\n  %y: f32[2,4] = gather_elements {{axis: 0}} (%x, %i)\n  return %y\n}}\n"
        )
    };
    let x = data(&mut rng, &[3, 4], DType::F32);
    check_on(
        &text("0, -1, 2, 1, -3, 0, 1, 2"),
        vec![Some(x.clone())],
        0.0,
        0.0,
    );
    assert!(run(&text("0, 3, 2, 1, -3, 0, 1, 2"), vec![Some(x)]).is_none());
    // Run-time indices out of range read nothing and give 0.
    let text = graph(
        "%x: f32[2,3], %i: i32[2,2]",
        "%y: f32[2,2] = gather_elements {axis: 1} (%x, %i)",
        "%y",
    );
    let x = Tensor::from_vec(&[2, 3], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
    let i = Tensor::from_vec(&[2, 2], vec![3i32, -1, -4, i32::MIN]).unwrap();
    let out = run(&text, vec![Some(x), Some(i)]).unwrap();
    assert_eq!(
        out[0],
        Tensor::from_vec(&[2, 2], vec![0f32, 3., 0., 0.]).unwrap()
    );
}

#[test]
fn scatter_elements_reductions_in_index_order() {
    let mut rng = Rng(3);
    for red in ["none", "add", "mul", "max", "min"] {
        let cases: [(&[usize], &[usize], i64, DType, DType); 6] = [
            (&[1, 5], &[1, 2], 1, DType::F32, DType::I64),
            (&[3, 3], &[2, 3], 0, DType::F32, DType::I64),
            (&[4, 3, 5], &[9, 2, 3], 0, DType::I32, DType::I32),
            (&[2, 7, 3], &[2, 9, 3], -2, DType::F64, DType::I64),
            (&[6], &[13], 0, DType::U8, DType::I64),
            (&[2, 1, 3], &[1, 1, 2], 2, DType::I64, DType::I32),
        ];
        for (xs, is, axis, dt, it) in cases {
            let d = xs[if axis < 0 {
                (xs.len() as i64 + axis) as usize
            } else {
                axis as usize
            }] as i64;
            let text = graph(
                &format!(
                    "%x: {dt}{}, %i: {it}{}, %u: {dt}{}",
                    dims(xs),
                    dims(is),
                    dims(is)
                ),
                &format!(
                    "%y: {dt}{} = scatter_elements {{axis: {axis}, reduction: \"{red}\"}} (%x, %i, %u)",
                    dims(xs)
                ),
                "%y",
            );
            let x = data(&mut rng, xs, dt);
            let i = ints(&mut rng, is, -d, d, it);
            let u = data(&mut rng, is, dt);
            check_on(&text, vec![Some(x), Some(i), Some(u)], 0.0, 0.0);
        }
    }
}

#[test]
fn scatter_nan_ties_and_out_of_range() {
    let nan = f32::NAN;
    for red in ["none", "add", "max", "min"] {
        let text = graph(
            "%x: f32[6], %i: i64[5], %u: f32[5]",
            &format!("%y: f32[6] = scatter_elements {{reduction: \"{red}\"}} (%x, %i, %u)"),
            "%y",
        );
        let x = Tensor::from_vec(&[6], vec![1f32, nan, -0.0, 3., 0.0, 2.]).unwrap();
        let i = Tensor::from_vec(&[5], vec![0i64, 1, 2, 4, -3]).unwrap();
        let u = Tensor::from_vec(&[5], vec![nan, 5., 0.0, -0.0, 3.]).unwrap();
        check_on(
            &text,
            vec![Some(x.clone()), Some(i), Some(u.clone())],
            0.0,
            0.0,
        );
        // An out-of-range index skips its update.
        let i = Tensor::from_vec(&[5], vec![6i64, 1, -7, 4, 2]).unwrap();
        let out = run(
            &text,
            vec![Some(x.clone()), Some(i.clone()), Some(u.clone())],
        )
        .unwrap();
        let mut want = x.to_f64_vec();
        let (uv, iv) = (u.to_f64_vec(), [1usize, 4, 2]);
        for (k, &at) in [1usize, 3, 4].iter().enumerate() {
            let (a, b) = (want[iv[k]], uv[at]);
            want[iv[k]] = match red {
                "none" => b,
                "add" => a + b,
                "max" => {
                    if b > a {
                        b
                    } else {
                        a
                    }
                }
                _ => {
                    if b < a {
                        b
                    } else {
                        a
                    }
                }
            };
        }
        let got = out[0].to_f64_vec();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{red}: {got:?} vs {want:?}"
            );
        }
    }
}

#[test]
fn gather_nd_batch_dims() {
    let mut rng = Rng(4);
    let cases: [(&[usize], &[usize], usize, DType); 9] = [
        (&[2, 2, 2], &[2, 1, 2], 0, DType::F32),
        (&[2, 2], &[2, 2], 0, DType::I32),
        (&[2, 2, 2], &[2, 1], 1, DType::I32),
        (&[3, 4, 5, 6], &[3, 2, 1], 1, DType::F32),
        (&[4, 3, 5], &[2, 3, 2], 0, DType::I64),
        (&[2, 3, 4], &[2, 3, 3], 0, DType::F32),
        (&[5, 7], &[3, 0], 0, DType::F32),
        (&[2, 3, 5, 3], &[2, 3, 4, 1], 2, DType::U8),
        (&[1, 1, 9], &[1, 1, 7, 1], 2, DType::F64),
    ];
    for (xs, is, bd, dt) in cases {
        let q = is.len();
        let m = is[q - 1];
        let out: Vec<usize> = is[..q - 1].iter().chain(&xs[bd + m..]).copied().collect();
        for it in [DType::I64, DType::I32] {
            let text = graph(
                &format!("%x: {dt}{}, %i: {it}{}", dims(xs), dims(is)),
                &format!(
                    "%y: {dt}{} = gather_nd {{batch_dims: {bd}}} (%x, %i)",
                    dims(&out)
                ),
                "%y",
            );
            // Entry j of every tuple indexes dim bd + j.
            let n = numel(is);
            let v: Vec<i64> = (0..n)
                .map(|k| {
                    let d = xs[bd + k % m.max(1)] as i64;
                    rng.int(-d, d)
                })
                .collect();
            let i = Tensor::from_vec(is, v).unwrap().cast(it);
            check_on(&text, vec![Some(data(&mut rng, xs, dt)), Some(i)], 0.0, 0.0);
        }
    }
    // A tuple with an entry out of range gives a zero block.
    let text = graph(
        "%x: f32[2,3], %i: i64[3,1]",
        "%y: f32[3,3] = gather_nd (%x, %i)",
        "%y",
    );
    let x = Tensor::from_vec(&[2, 3], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
    let i = Tensor::from_vec(&[3, 1], vec![-1i64, 2, -3]).unwrap();
    let out = run(&text, vec![Some(x), Some(i)]).unwrap();
    assert_eq!(
        out[0],
        Tensor::from_vec(&[3, 3], vec![4f32, 5., 6., 0., 0., 0., 0., 0., 0.]).unwrap()
    );
}

#[test]
fn scatter_nd_blocks_and_duplicates() {
    let mut rng = Rng(5);
    for red in ["none", "add", "mul", "max", "min"] {
        let cases: [(&[usize], &[usize], DType); 5] = [
            (&[4, 4, 4], &[2, 1], DType::F32),
            (&[5, 3], &[4, 2], DType::F32),
            (&[6], &[7, 1], DType::I64),
            (&[3, 2, 5], &[2, 3, 2], DType::F64),
            (&[2, 9], &[5, 1], DType::I32),
        ];
        for (xs, is, dt) in cases {
            let q = is.len();
            let m = is[q - 1];
            let us: Vec<usize> = is[..q - 1].iter().chain(&xs[m..]).copied().collect();
            let text = graph(
                &format!(
                    "%x: {dt}{}, %i: i64{}, %u: {dt}{}",
                    dims(xs),
                    dims(is),
                    dims(&us)
                ),
                &format!(
                    "%y: {dt}{} = scatter_nd {{reduction: \"{red}\"}} (%x, %i, %u)",
                    dims(xs)
                ),
                "%y",
            );
            let v: Vec<i64> = (0..numel(is))
                .map(|k| {
                    let d = xs[k % m] as i64;
                    rng.int(-d, d)
                })
                .collect();
            let i = Tensor::from_vec(is, v).unwrap();
            let x = data(&mut rng, xs, dt);
            let u = data(&mut rng, &us, dt);
            check_on(&text, vec![Some(x), Some(i), Some(u)], 0.0, 0.0);
        }
    }
}

#[test]
fn one_hot_axes_index_types_and_out_of_range() {
    let mut rng = Rng(6);
    let cases: [(&[usize], usize, i64, DType, DType); 7] = [
        (&[3], 10usize, 1i64, DType::I64, DType::F32),
        (&[2, 2], 10, 1, DType::F32, DType::F32),
        (&[2, 2], 10, -2, DType::F32, DType::F32),
        (&[3], 12, -1, DType::I64, DType::I32),
        (&[2, 3, 5], 7, 0, DType::I32, DType::U8),
        (&[4, 1], 3, 2, DType::F64, DType::I64),
        (&[1], 1, 0, DType::I64, DType::F64),
    ];
    for (is, depth, axis, it, vt) in cases {
        let r = is.len() as i64;
        let ax = if axis < 0 { axis + r + 1 } else { axis } as usize;
        let mut ys = is.to_vec();
        ys.insert(ax, depth);
        let d = depth as i64;
        // Indices out of range select nothing; float indices truncate.
        let idx: Vec<f64> = (0..numel(is))
            .map(|_| rng.int(-d - 2, d + 2) as f64 + if it.is_float() { 0.75 } else { 0.0 })
            .collect();
        let i = Tensor::from_vec(is, idx).unwrap().cast(it);
        let vals = data(&mut rng, &[2], vt);
        // Run-time depth.
        let text = graph(
            &format!("%i: {it}{}, %d: f32[], %v: {vt}[2]", dims(is)),
            &format!(
                "%y: {vt}{} = one_hot {{axis: {axis}}} (%i, %d, %v)",
                dims(&ys)
            ),
            "%y",
        );
        let dep = Tensor::scalar(depth as f32);
        check_on(
            &text,
            vec![Some(i.clone()), Some(dep), Some(vals.clone())],
            0.0,
            0.0,
        );
        // Constant depth: must agree with the output shape.
        let text = |dv: usize| {
            format!(
                "graph \"g\" (%i: {it}{}, %v: {vt}[2]) {{\n  %d: i64[1] = constant {{value: i64[1] [{dv}]}}\n  %y: {vt}{} = one_hot {{axis: {axis}}} (%i, %d, %v)\n  return %y\n}}\n",
                dims(is),
                dims(&ys)
            )
        };
        check_on(
            &text(depth),
            vec![Some(i.clone()), Some(vals.clone())],
            0.0,
            0.0,
        );
        assert!(run(&text(depth + 1), vec![Some(i), Some(vals)]).is_none());
    }
}

#[test]
fn eye_like_diagonals_and_types() {
    let cases: [(&[usize], i64, &str); 8] = [
        (&[4, 5], 1, "f32"),
        (&[3, 4], 0, "f64"),
        (&[4, 4], 0, "i32"),
        (&[5, 3], -2, "i64"),
        (&[3, 3], 7, "f32"),
        (&[3, 6], -9, "u8"),
        (&[1, 1], 0, "bool"),
        (&[7, 9], 3, "i16"),
    ];
    for (shape, k, dt) in cases {
        let text = graph(
            &format!("%x: i32{}", dims(shape)),
            &format!(
                "%y: {dt}{} = eye_like {{dtype: {dt}, k: {k}}} (%x)",
                dims(shape)
            ),
            "%y",
        );
        let x = Tensor::from_vec(shape, vec![0i32; numel(shape)]).unwrap();
        check_on(&text, vec![Some(x)], 0.0, 0.0);
    }
}

/// A loss graph: scores `[N, C, d...]`, targets, optional weights; outputs the loss and, for
/// SCE with `log_prob`, the log-probabilities.
fn loss_graph(
    op: &str,
    xs: &[usize],
    tt: DType,
    weighted: bool,
    attrs: &str,
    red: &str,
    log_prob: bool,
) -> String {
    let ts: Vec<usize> = std::iter::once(xs[0])
        .chain(xs[2..].iter().copied())
        .collect();
    let ls = if red == "none" {
        dims(&ts)
    } else {
        "[]".into()
    };
    let mut ins = format!("%x: f32{}, %t: {tt}{}", dims(xs), dims(&ts));
    let mut args = "%x, %t".to_string();
    if weighted {
        ins.push_str(&format!(", %w: f32[{}]", xs[1]));
        args.push_str(", %w");
    }
    let (outs, ret) = if log_prob {
        (
            format!("%z: f32{ls}, %lp: f32{}", dims(xs)),
            "%z, %lp".to_string(),
        )
    } else {
        (format!("%z: f32{ls}"), "%z".to_string())
    };
    graph(
        &ins,
        &format!("{outs} = {op} {{{attrs}reduction: \"{red}\"}} ({args})"),
        &ret,
    )
}

/// Targets in `0..C`, about a quarter set to `ii` when given.
fn targets(rng: &mut Rng, xs: &[usize], ii: Option<i64>, tt: DType) -> Tensor {
    let ts: Vec<usize> = std::iter::once(xs[0])
        .chain(xs[2..].iter().copied())
        .collect();
    let v: Vec<i64> = (0..numel(&ts))
        .map(|_| match ii {
            Some(ii) if rng.int(0, 4) == 0 => ii,
            _ => rng.int(0, xs[1] as i64),
        })
        .collect();
    Tensor::from_vec(&ts, v).unwrap().cast(tt)
}

/// Positive weights (no cancellation in the mean's denominator).
fn weights(rng: &mut Rng, c: usize) -> Tensor {
    let v: Vec<f32> = (0..c).map(|_| (rng.real() as f32).abs() + 0.25).collect();
    Tensor::from_vec(&[c], v).unwrap()
}

const LOSS_SHAPES: [&[usize]; 7] = [
    &[3, 5],
    &[3, 5, 2],
    &[3, 5, 6, 6],
    &[2, 3, 1, 7],
    &[1, 1],
    &[5, 7, 3, 2, 2],
    &[2, 13, 9],
];

const LOSS_CASES: [(Option<i64>, &str); 6] = [
    (None, "none"),
    (None, "sum"),
    (None, "mean"),
    (Some(1), "mean"),
    (Some(-1), "none"),
    (Some(10), "sum"),
];

// NLL: the same operations in the same order as the reference (negate, multiply, sums in
// target order, one division), so the results are identical.
#[test]
fn nll_loss_matches_exactly() {
    let mut rng = Rng(7);
    for xs in LOSS_SHAPES {
        for (ii, red) in LOSS_CASES {
            for weighted in [false, true] {
                let tt = if weighted { DType::I64 } else { DType::I32 };
                let attrs = ii.map_or(String::new(), |v| format!("ignore_index: {v}, "));
                let text = loss_graph(
                    "negative_log_likelihood_loss",
                    xs,
                    tt,
                    weighted,
                    &attrs,
                    red,
                    false,
                );
                let mut ins = vec![
                    Some(scores(&mut rng, xs)),
                    Some(targets(&mut rng, xs, ii, tt)),
                ];
                if weighted {
                    ins.push(Some(weights(&mut rng, xs[1])));
                }
                check_on(&text, ins, 0.0, 0.0);
            }
        }
    }
}

// SCE: the log-softmax goes through vmath exp and log (about 2 ulp each against libm), so a
// log-probability is off by a few ulp of the log-sum-exp (|lse| < 6 here): 4e-6 absolute;
// sums of up to 108 such losses (the largest shape here) stay within 1e-5 relative.
#[test]
fn sce_loss_and_log_prob() {
    let mut rng = Rng(8);
    for xs in LOSS_SHAPES {
        for (ii, red) in LOSS_CASES {
            for weighted in [false, true] {
                for log_prob in [false, true] {
                    let attrs = ii.map_or(String::new(), |v| format!("ignore_index: {v}, "));
                    let text = loss_graph(
                        "softmax_cross_entropy_loss",
                        xs,
                        DType::I64,
                        weighted,
                        &attrs,
                        red,
                        log_prob,
                    );
                    let mut ins = vec![
                        Some(scores(&mut rng, xs)),
                        Some(targets(&mut rng, xs, ii, DType::I64)),
                    ];
                    if weighted {
                        ins.push(Some(weights(&mut rng, xs[1])));
                    }
                    check_on(&text, ins, 1e-5, 4e-6);
                }
            }
        }
    }
}

// Large, infinite and NaN scores: the shift by the largest non-NaN score keeps large ones
// finite, an infinite maximum shifts by 0 (giving inf/NaN like the reference), NaN spreads
// through its lane only.
#[test]
fn sce_special_values() {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let x = vec![
        1000., 0., -1000., 3., //
        inf, 1., 2., 3., //
        -inf, -inf, -inf, -inf, //
        nan, 1., 2., 3., //
        -inf, 0., 5., -0.0, //
        -80., -90., -100., -88.,
    ];
    let t = vec![1i64, 1, 2, 3, 2, 0];
    for red in ["none", "sum"] {
        let text = loss_graph(
            "softmax_cross_entropy_loss",
            &[6, 4],
            DType::I64,
            false,
            "",
            red,
            true,
        );
        let ins = vec![
            Some(Tensor::from_vec(&[6, 4], x.clone()).unwrap()),
            Some(Tensor::from_vec(&[6], t.clone()).unwrap()),
        ];
        check_on(&text, ins, 1e-5, 4e-6);
    }
}

#[test]
fn declines_what_it_does_not_handle() {
    // f64 losses, unknown reductions, f16 scatter reductions, float indices for gathers.
    let cases = [
        (
            graph(
                "%x: f64[3,5], %t: i64[3]",
                "%z: f64[] = negative_log_likelihood_loss (%x, %t)",
                "%z",
            ),
            vec![
                Some(Tensor::from_vec(&[3, 5], vec![0f64; 15]).unwrap()),
                Some(Tensor::from_vec(&[3], vec![0i64; 3]).unwrap()),
            ],
        ),
        (
            graph(
                "%x: f16[4], %i: i64[2], %u: f16[2]",
                "%y: f16[4] = scatter_elements {reduction: \"add\"} (%x, %i, %u)",
                "%y",
            ),
            vec![
                Some(
                    Tensor::from_vec(&[4], vec![0f32; 4])
                        .unwrap()
                        .cast(DType::F16),
                ),
                Some(Tensor::from_vec(&[2], vec![0i64; 2]).unwrap()),
                Some(
                    Tensor::from_vec(&[2], vec![0f32; 2])
                        .unwrap()
                        .cast(DType::F16),
                ),
            ],
        ),
        (
            graph(
                "%x: f32[4], %i: f32[2]",
                "%y: f32[2] = gather_elements (%x, %i)",
                "%y",
            ),
            vec![
                Some(Tensor::from_vec(&[4], vec![0f32; 4]).unwrap()),
                Some(Tensor::from_vec(&[2], vec![0f32; 2]).unwrap()),
            ],
        ),
    ];
    for (text, ins) in cases {
        let g = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let node = single_compute_node(&g).unwrap();
        assert!(
            run_node(&g, node, &ins, Target::host()).unwrap().is_none(),
            "{text}"
        );
    }
}
