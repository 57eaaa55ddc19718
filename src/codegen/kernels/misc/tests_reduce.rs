//! Tests of the general reductions (any axes, run-time axes, every Reduce* op and dtype) and
//! of the lane ops (CumSum/CumProd, Hardmax, LpNormalization, Trilu) against the reference.

use graphc_passes::eval::{compare, eval_graph};
use graphc_passes::ir::text::parse;
use graphc_passes::ir::Tensor;

use crate::codegen::kernel::Target;
use crate::codegen::testing::{check_text, run_node, single_compute_node};

/// A one-node graph: inputs `ins` (text), constants `consts` (text lines), the node line.
fn graph(ins: &str, consts: &[String], node: &str) -> String {
    let mut s = format!("graph \"g\" ({ins}) {{\n");
    for c in consts {
        s.push_str(&format!("  {c}\n"));
    }
    s.push_str(&format!("  {node}\n  return %y\n}}\n"));
    s
}

/// A constant i64 line `%name: i64[n] = constant ...` for a list.
fn ints(name: &str, v: &[i64]) -> String {
    let body: Vec<String> = v.iter().map(i64::to_string).collect();
    format!(
        "%{name}: i64[{n}] = constant {{value: i64[{n}] [{}]}}",
        body.join(", "),
        n = v.len()
    )
}

/// Runs on seeded random inputs (values in [-2, 2)) against the reference.
fn check(text: &str, rtol: f64, atol: f64) {
    check_text(text, 5, rtol, atol).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

/// Runs on the given inputs against the reference; the kernel must exist.
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

/// `n` values of a seeded sequence in `[lo, hi)`.
fn values(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

/// The shape `keepdims` gives when reducing `axes` (normalized) of `shape`.
fn reduced(shape: &[usize], axes: &[i64], keepdims: bool) -> Vec<usize> {
    let r = shape.len() as i64;
    let all = axes.is_empty();
    let hit = |k: usize| all || axes.iter().any(|&a| (a + r) % r == k as i64);
    (0..shape.len())
        .filter_map(|k| match (hit(k), keepdims) {
            (true, true) => Some(1),
            (true, false) => None,
            (false, _) => Some(shape[k]),
        })
        .collect()
}

fn dims(s: &[usize]) -> String {
    let v: Vec<String> = s.iter().map(usize::to_string).collect();
    format!("[{}]", v.join(","))
}

const ALL_OPS: [&str; 10] = [
    "reduce_sum",
    "reduce_mean",
    "reduce_max",
    "reduce_min",
    "reduce_prod",
    "reduce_l1",
    "reduce_l2",
    "reduce_sum_square",
    "reduce_log_sum",
    "reduce_log_sum_exp",
];

/// Shapes and axes: non-adjacent, negative, all, 1-sized dims, odd tails, an empty set.
const CASES: [(&[usize], &[i64]); 9] = [
    (&[3, 4, 5], &[0, 2]),
    (&[2, 3, 4, 5], &[1, 3]),
    (&[2, 3, 4, 5], &[-1, 0]),
    (&[3, 7], &[]),
    (&[1, 6, 1, 5], &[0, 2]),
    (&[4, 1, 9], &[1]),
    (&[5, 3, 2], &[2, 0]),
    (&[2, 0, 3], &[1]),
    (&[2, 0, 3], &[0]),
];

#[test]
fn every_reduction_over_any_axes_f32() {
    for op in ALL_OPS {
        for (shape, axes) in CASES {
            for keepdims in [true, false] {
                let out = reduced(shape, axes, keepdims);
                let consts = if axes.is_empty() {
                    vec![]
                } else {
                    vec![ints("a", axes)]
                };
                let args = if axes.is_empty() { "%x" } else { "%x, %a" };
                let text = graph(
                    &format!("%x: f32{}", dims(shape)),
                    &consts,
                    &format!(
                        "%y: f32{} = {op} {{keepdims: {}}} ({args})",
                        dims(&out),
                        i64::from(keepdims)
                    ),
                );
                // LogSum of random signs is mostly NaN: positive inputs too.
                check(&text, 1e-5, 1e-6);
                let n: usize = shape.iter().product();
                let x = Tensor::from_vec(shape, values(n, 3, 0.01, 3.0)).unwrap();
                check_on(&text, vec![Some(x)], 1e-5, 1e-6);
            }
        }
    }
}

#[test]
fn reductions_of_other_dtypes() {
    let f64_ops = &ALL_OPS[..];
    let int_ops = [
        "reduce_sum",
        "reduce_max",
        "reduce_min",
        "reduce_prod",
        "reduce_l1",
        "reduce_sum_square",
    ];
    for (dt, ops, tol) in [
        ("f64", f64_ops, 1e-12),
        ("i32", &int_ops[..], 0.0),
        ("i64", &int_ops[..], 0.0),
        ("bool", &["reduce_max", "reduce_min"][..], 0.0),
    ] {
        for &op in ops {
            for (shape, axes) in CASES {
                let out = reduced(shape, axes, false);
                let consts = if axes.is_empty() {
                    vec![]
                } else {
                    vec![ints("a", axes)]
                };
                let args = if axes.is_empty() { "%x" } else { "%x, %a" };
                let text = graph(
                    &format!("%x: {dt}{}", dims(shape)),
                    &consts,
                    &format!("%y: {dt}{} = {op} {{keepdims: 0}} ({args})", dims(&out)),
                );
                check(&text, tol, 0.0);
            }
        }
    }
    // Integer sums and products wrap like the reference.
    let text = graph(
        "%x: i32[2,3]",
        &[ints("a", &[1])],
        "%y: i32[2] = reduce_prod {keepdims: 0} (%x, %a)",
    );
    let x = Tensor::from_vec(&[2, 3], vec![70000i32, 70000, 3, i32::MIN, -1, 5]).unwrap();
    check_on(&text, vec![Some(x)], 0.0, 0.0);
    let text = graph(
        "%x: i32[4]",
        &[],
        "%y: i32[] = reduce_l1 {keepdims: 0} (%x)",
    );
    let x = Tensor::from_vec(&[4], vec![i32::MIN, -1, 7, i32::MAX]).unwrap();
    check_on(&text, vec![Some(x)], 0.0, 0.0);
}

#[test]
fn runtime_axes_are_read_when_the_kernel_runs() {
    for op in ALL_OPS {
        for (shape, axes, keepdims) in [
            (&[3usize, 2, 2][..], &[1i64][..], false),
            (&[3, 2, 2], &[2], false),
            (&[3, 2, 2], &[-1], true),
            (&[3, 4, 5], &[0, 2], false),
            (&[3, 4, 5], &[2, 1], false),
            (&[2, 3, 4, 5], &[-3, 3], true),
            (&[2, 0, 4], &[1], true),
            (&[3, 1, 7], &[0, 1, 2], false),
        ] {
            let out = reduced(shape, axes, keepdims);
            let text = graph(
                &format!("%x: f32{}, %a: i64[{}]", dims(shape), axes.len()),
                &[],
                &format!(
                    "%y: f32{} = {op} {{keepdims: {}}} (%x, %a)",
                    dims(&out),
                    i64::from(keepdims)
                ),
            );
            let n: usize = shape.iter().product();
            for (lo, hi) in [(-2.0, 2.0), (0.01, 3.0)] {
                let x = Tensor::from_vec(shape, values(n, 9, lo, hi)).unwrap();
                let a = Tensor::from_vec(&[axes.len()], axes.to_vec()).unwrap();
                check_on(&text, vec![Some(x), Some(a)], 1e-5, 1e-6);
            }
        }
    }
    // An empty run-time axes list: all axes, or nothing with noop_with_empty_axes.
    for (attrs, out) in [("", "[1,1]"), ("noop_with_empty_axes: 1", "[3,5]")] {
        let text = graph(
            "%x: f32[3,5], %a: i64[0]",
            &[],
            &format!("%y: f32{out} = reduce_sum {{{attrs}}} (%x, %a)"),
        );
        let x = Tensor::from_vec(&[3, 5], values(15, 4, -2.0, 2.0)).unwrap();
        let a = Tensor::from_vec::<i64>(&[0], vec![]).unwrap();
        check_on(&text, vec![Some(x), Some(a)], 1e-5, 1e-6);
    }
    // f64 and bool with run-time axes.
    let text = graph(
        "%x: f64[3,2,2], %a: i64[1]",
        &[],
        "%y: f64[3,2] = reduce_l2 {keepdims: 0} (%x, %a)",
    );
    let x = Tensor::from_vec(&[3, 2, 2], (0..12).map(|i| i as f64 - 5.5).collect()).unwrap();
    let a = Tensor::from_vec(&[1], vec![1i64]).unwrap();
    check_on(&text, vec![Some(x), Some(a.clone())], 1e-12, 0.0);
    let text = graph(
        "%x: bool[4,2], %a: i64[1]",
        &[],
        "%y: bool[4,1] = reduce_min (%x, %a)",
    );
    let x = Tensor::from_vec(
        &[4, 2],
        vec![true, true, false, true, false, false, true, false],
    )
    .unwrap();
    check_on(&text, vec![Some(x), Some(a)], 0.0, 0.0);
}

#[test]
fn nan_inf_and_empty_follow_the_reference() {
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    let v = vec![
        1.0, nan, 3.0, -inf, 2.0, 0.5, inf, 1.0, -inf, -inf, nan, nan, 0.0, -0.0, 4.0, 7.0, -1.0,
        inf,
    ];
    for op in ALL_OPS {
        for axes in [&[0i64, 2][..], &[1], &[2]] {
            for dt in ["f32", "f64"] {
                let out = reduced(&[3, 2, 3], axes, true);
                let text = graph(
                    &format!("%x: {dt}[3,2,3]"),
                    &[ints("a", axes)],
                    &format!("%y: {dt}{} = {op} (%x, %a)", dims(&out)),
                );
                let x = Tensor::from_vec(&[3, 2, 3], v.clone())
                    .unwrap()
                    .cast(parse_dtype(dt));
                check_on(&text, vec![Some(x)], 1e-5, 1e-6);
            }
        }
    }
}

#[test]
fn cumulative_sums_and_products() {
    for op in ["cum_sum", "cum_prod"] {
        for attrs in ["", "exclusive: 1", "reverse: 1", "exclusive: 1, reverse: 1"] {
            for (dt, tol) in [("f32", 1e-6), ("f64", 1e-12), ("i32", 0.0), ("i64", 0.0)] {
                for (shape, axis) in [
                    (&[5usize][..], 0i64),
                    (&[2, 3], -1),
                    (&[3, 4, 7], 1),
                    (&[3, 1, 6], -2),
                    (&[2, 0, 3], 2),
                ] {
                    let s = dims(shape);
                    // Constant axis.
                    let text = graph(
                        &format!("%x: {dt}{s}"),
                        &[format!("%a: i64[] = constant {{value: i64[] [{axis}]}}")],
                        &format!("%y: {dt}{s} = {op} {{{attrs}}} (%x, %a)"),
                    );
                    check(&text, tol, tol);
                    // Run-time axis, i32 or i64.
                    let n: usize = shape.iter().product();
                    let x = Tensor::from_vec(shape, values(n, 2, -2.0, 2.0))
                        .unwrap()
                        .cast(parse_dtype(dt));
                    let (adt, a) = if shape.len() % 2 == 0 {
                        ("i32", Tensor::scalar(axis as i32))
                    } else {
                        ("i64", Tensor::scalar(axis))
                    };
                    {
                        let text = graph(
                            &format!("%x: {dt}{s}, %a: {adt}[]"),
                            &[],
                            &format!("%y: {dt}{s} = {op} {{{attrs}}} (%x, %a)"),
                        );
                        check_on(&text, vec![Some(x.clone()), Some(a)], tol, tol);
                    }
                }
            }
        }
    }
}

fn parse_dtype(s: &str) -> graphc_passes::ir::DType {
    use graphc_passes::ir::DType;
    match s {
        "f32" => DType::F32,
        "f64" => DType::F64,
        "i32" => DType::I32,
        "i64" => DType::I64,
        _ => panic!("not a test dtype: {s}"),
    }
}

#[test]
fn hardmax_lanes_ties_and_nan() {
    for (shape, attrs) in [
        ("[3,4,5]", "axis: 0"),
        ("[3,4,5]", "axis: 1"),
        ("[3,4,5]", ""),
        ("[3,4,5]", "axis: -2"),
        ("[1,7]", ""),
        ("[2,3,5]", "axis: 1, coerce_2d: 1"),
        ("[2,3,5]", "axis: 0, coerce_2d: 1"),
    ] {
        for dt in ["f32", "f64"] {
            check(
                &graph(
                    &format!("%x: {dt}{shape}"),
                    &[],
                    &format!("%y: {dt}{shape} = hardmax {{{attrs}}} (%x)"),
                ),
                0.0,
                0.0,
            );
        }
    }
    let nan = f32::NAN;
    let x = Tensor::from_vec(
        &[4, 4],
        vec![
            3.0, 3.0, 1.0, 2.0, nan, 1.0, 5.0, 5.0, nan, nan, nan, nan, -1.0, nan, -1.0, 0.0,
        ],
    )
    .unwrap();
    check_on(
        &graph("%x: f32[4,4]", &[], "%y: f32[4,4] = hardmax (%x)"),
        vec![Some(x)],
        0.0,
        0.0,
    );
}

#[test]
fn lp_normalization_l1_l2() {
    for (shape, attrs) in [
        ("[2,2,3]", ""),
        ("[2,2,3]", "axis: 0, p: 1"),
        ("[3,9]", "axis: 0"),
        ("[4,1,7]", "axis: 1, p: 1"),
    ] {
        for dt in ["f32", "f64"] {
            check(
                &graph(
                    &format!("%x: {dt}{shape}"),
                    &[],
                    &format!("%y: {dt}{shape} = lp_normalization {{{attrs}}} (%x)"),
                ),
                1e-6,
                1e-7,
            );
        }
    }
    // A zero lane gives zeros.
    let x = Tensor::from_vec(&[2, 3], vec![0.0f32, 0.0, 0.0, 3.0, -4.0, 0.0]).unwrap();
    for p in [1, 2] {
        check_on(
            &graph(
                "%x: f32[2,3]",
                &[],
                &format!("%y: f32[2,3] = lp_normalization {{p: {p}}} (%x)"),
            ),
            vec![Some(x.clone())],
            1e-6,
            0.0,
        );
    }
}

#[test]
fn trilu_upper_lower_constant_and_runtime_k() {
    for dt in ["i64", "f32", "u8", "i16"] {
        for shape in ["[4,5]", "[3,1,5]", "[2,3,3]", "[5,2]", "[3,0,5]", "[0,5]"] {
            for upper in [0, 1] {
                check(
                    &graph(
                        &format!("%x: {dt}{shape}"),
                        &[],
                        &format!("%y: {dt}{shape} = trilu {{upper: {upper}}} (%x)"),
                    ),
                    0.0,
                    0.0,
                );
                for k in [-7i64, -1, 2] {
                    check(
                        &graph(
                            &format!("%x: {dt}{shape}"),
                            &[format!("%k: i64[] = constant {{value: i64[] [{k}]}}")],
                            &format!("%y: {dt}{shape} = trilu {{upper: {upper}}} (%x, %k)"),
                        ),
                        0.0,
                        0.0,
                    );
                }
            }
        }
    }
    // Run-time k.
    for upper in [0, 1] {
        for k in [i64::MIN, -3, -1, 0, 1, 4, i64::MAX] {
            let text = graph(
                "%x: i64[2,4,5], %k: i64[]",
                &[],
                &format!("%y: i64[2,4,5] = trilu {{upper: {upper}}} (%x, %k)"),
            );
            let x = Tensor::from_vec(&[2, 4, 5], (1..=40).collect::<Vec<i64>>()).unwrap();
            check_on(&text, vec![Some(x), Some(Tensor::scalar(k))], 0.0, 0.0);
        }
    }
}

#[test]
fn log_over_a_wide_range_f64_and_f32() {
    // ReduceLogSum over a 1-sized axis is the logarithm of each element.
    let v: Vec<f64> = vec![
        0.0,
        -0.0,
        -1.0,
        1.0,
        1.0 + 1e-15,
        1.0 - 1e-16,
        0.5,
        2.0,
        std::f64::consts::SQRT_2,
        std::f64::consts::FRAC_1_SQRT_2,
        1e-310,
        5e-324,
        f64::MIN_POSITIVE,
        1e300,
        f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        3.0,
        10.0,
        1e-5,
        123_456.789,
        0.999_999,
        7.5e-40,
    ];
    let n = v.len();
    for dt in ["f64", "f32"] {
        let text = graph(
            &format!("%x: {dt}[{n},1]"),
            &[ints("a", &[1])],
            &format!("%y: {dt}[{n}] = reduce_log_sum {{keepdims: 0}} (%x, %a)"),
        );
        let x = Tensor::from_vec(&[n, 1], v.clone()).unwrap();
        let x = if dt == "f32" {
            x.cast(graphc_passes::ir::DType::F32)
        } else {
            x
        };
        check_on(&text, vec![Some(x)], 1e-14, 0.0);
    }
}

#[test]
fn log_sum_exp_over_a_wide_range_f64_and_f32() {
    // Lanes [x, 0] give log(1 + e^x): e^x over (-inf, 0], subnormal results included.
    let mut v: Vec<f64> = Vec::new();
    for x in [
        -0.0, -1e-300, -1e-10, -0.3, -0.35, -1.0, -2.5, -10.0, -36.0, -37.5, -100.0, -300.0,
        -700.0, -708.5, -720.0, -744.0, -745.5, -800.0, -1e10,
    ] {
        v.extend([x, 0.0]);
    }
    // Special lanes: NaN, infinities, both ends.
    let (nan, inf) = (f64::NAN, f64::INFINITY);
    for pair in [
        [nan, 1.0],
        [inf, 1.0],
        [-inf, -inf],
        [-inf, 3.0],
        [inf, -inf],
        [nan, -inf],
        [700.0, 700.0],
        [-5.0, 1e300],
        [0.25, 0.25],
    ] {
        v.extend(pair);
    }
    let n = v.len() / 2;
    for dt in ["f64", "f32"] {
        let text = graph(
            &format!("%x: {dt}[{n},2]"),
            &[ints("a", &[-1])],
            &format!("%y: {dt}[{n}] = reduce_log_sum_exp {{keepdims: 0}} (%x, %a)"),
        );
        let x = Tensor::from_vec(&[n, 2], v.clone()).unwrap();
        let x = if dt == "f32" {
            x.cast(graphc_passes::ir::DType::F32)
        } else {
            x
        };
        check_on(&text, vec![Some(x)], 1e-13, 1e-15);
    }
}

#[test]
fn runtime_axes_out_of_range_read_nothing_out_of_bounds() {
    // Axis 7 of a rank-3 input reduces nothing: each of the 6 outputs is its own element.
    let text = graph(
        "%x: f32[3,2,2], %a: i64[1]",
        &[],
        "%y: f32[3,2] = reduce_sum {keepdims: 0} (%x, %a)",
    );
    let g = parse(&text).unwrap();
    let node = single_compute_node(&g).unwrap();
    let xv: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
    let x = Tensor::from_vec(&[3, 2, 2], xv.clone()).unwrap();
    let a = Tensor::from_vec(&[1], vec![7i64]).unwrap();
    let got = run_node(&g, node, &[Some(x), Some(a)], Target::host())
        .unwrap()
        .unwrap();
    assert_eq!(got[0], Tensor::from_vec(&[3, 2], xv[..6].to_vec()).unwrap());
}

/// TopK: values and indices, largest and smallest, every axis, k from 0 to the whole axis,
/// integer dtypes (random integers tie often), and explicit ties and NaNs.
#[test]
fn top_k_orders_like_the_reference() {
    let text = |dt: &str, xs: &str, k: i64, attrs: &str, ys: &str| {
        format!(
            "graph \"g\" (%x: {dt}{xs}) {{\n  {}\n  %v: {dt}{ys}, %i: i64{ys} = top_k {{{attrs}}} (%x, %k)\n  return %v, %i\n}}\n",
            ints("k", &[k])
        )
    };
    for dt in ["f32", "f64", "i32", "i64", "u8", "i8", "u64"] {
        for (xs, k, attrs, ys) in [
            ("[3,4]", 3, "axis: 1", "[3,3]"),
            ("[3,4]", 2, "axis: 0, largest: 0", "[2,4]"),
            ("[2,5,3]", 5, "axis: 1", "[2,5,3]"),
            ("[2,5,3]", 1, "axis: -1, largest: 0", "[2,5,1]"),
            ("[7]", 4, "", "[4]"),
            ("[1,9,1]", 0, "axis: 1", "[1,0,1]"),
            ("[4,1]", 1, "axis: 1", "[4,1]"),
        ] {
            check(&text(dt, xs, k, attrs, ys), 0.0, 0.0);
        }
    }
    let nan = f32::NAN;
    let x = Tensor::from_vec(
        &[3, 5],
        vec![
            2.0, nan, 2.0, -1.0, nan, 0.0, -0.0, 0.0, 3.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0,
        ],
    )
    .unwrap();
    for largest in [1, 0] {
        check_on(
            &text("f32", "[3,5]", 4, &format!("largest: {largest}"), "[3,4]"),
            vec![Some(x.clone())],
            0.0,
            0.0,
        );
    }
}
