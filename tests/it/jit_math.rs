//! Linear algebra, normalization and signal ops decomposed into kernels (Einsum, training
//! BatchNormalization, MeanVarianceNormalization, DFT, ReverseSequence, Det, integer
//! products), each compiled without fallback and checked against the reference evaluator.

use crate::jit::compiled_without_fallback;

/// Einsum: transposes, sums, products, diagonals, ellipsis broadcasting, implicit outputs,
/// three operands, 1-sized dims; f64, f32 and i64.
#[test]
fn einsum_runs_as_kernels() {
    let cases: &[(&str, &[&str])] = &[
        ("ij->ji", &["[3,5]"]),
        ("ij->i", &["[3,5]"]),
        ("ij->", &["[7,5]"]),
        ("->", &["[]"]),
        ("i,i", &["[9]", "[9]"]),
        ("bij, bjk -> bik", &["[5,2,3]", "[5,3,7]"]),
        ("...ii ->...i", &["[3,5,5]"]),
        ("ii", &["[6,6]"]),
        ("iij->ji", &["[3,3,5]"]),
        ("...ij,...jk", &["[2,1,3,4]", "[5,4,3]"]),
        ("ij,jk,kl->il", &["[3,4]", "[4,5]", "[5,2]"]),
        ("abc,cd->dba", &["[2,1,3]", "[3,9]"]),
        ("i,j->ij", &["[5]", "[3]"]),
        ("ij,ij->", &["[1,13]", "[1,13]"]),
    ];
    for dt in ["f64", "f32", "i64"] {
        for (eq, shapes) in cases {
            let decls: Vec<String> = shapes
                .iter()
                .enumerate()
                .map(|(i, s)| format!("%x{i}: {dt}{s}"))
                .collect();
            let args: Vec<String> = (0..shapes.len()).map(|i| format!("%x{i}")).collect();
            let text = format!(
                "graph \"g\" ({}) {{\n  %y: {dt}[..] = einsum {{equation: \"{eq}\"}} ({})\n  return %y\n}}\n",
                decls.join(", "),
                args.join(", ")
            );
            let (rtol, atol) = match dt {
                // Both compute in f64 (f32 rounded once): only the summation order differs.
                "f32" => (1e-6, 1e-7),
                "f64" => (1e-12, 1e-13),
                _ => (0.0, 0.0),
            };
            compiled_without_fallback(&text, 2, rtol, atol);
        }
    }
}

/// Training-mode BatchNormalization (with and without the running statistics, rank 2 to 4,
/// f32 and f64) and MeanVarianceNormalization (default and explicit axes).
#[test]
fn batch_norm_training_and_mvn_run_as_kernels() {
    for (dt, x, c) in [
        ("f32", "[2,3,4,5]", 3),
        ("f32", "[5,7]", 7),
        ("f64", "[3,2,9]", 2),
        ("f32", "[1,1,3,3]", 1),
    ] {
        let tol = if dt == "f32" {
            (1e-6, 1e-7)
        } else {
            (1e-12, 1e-13)
        };
        let ins =
            format!("%x: {dt}{x}, %s: {dt}[{c}], %b: {dt}[{c}], %m: {dt}[{c}], %v: {dt}[{c}]");
        let full = format!(
            "graph \"g\" ({ins}) {{\n  %y: {dt}{x}, %rm: {dt}[{c}], %rv: {dt}[{c}] = batch_normalization {{epsilon: 0.01, momentum: 0.8, training_mode: 1}} (%x, %s, %b, %m, %v)\n  return %y, %rm, %rv\n}}\n"
        );
        compiled_without_fallback(&full, 2, tol.0, tol.1);
        let y_only = format!(
            "graph \"g\" ({ins}) {{\n  %y: {dt}{x} = batch_normalization {{training_mode: 1}} (%x, %s, %b, %m, %v)\n  return %y\n}}\n"
        );
        compiled_without_fallback(&y_only, 1, tol.0, tol.1);
    }
    for (dt, x, attrs) in [
        ("f32", "[3,3,3,1]", ""),
        ("f32", "[2,5,7]", "axes: [1]"),
        ("f64", "[4,9]", "axes: [-1]"),
        ("f32", "[2,3,5]", "axes: [0, 2]"),
    ] {
        let tol = if dt == "f32" {
            (1e-6, 1e-7)
        } else {
            (1e-12, 1e-13)
        };
        let text = format!(
            "graph \"g\" (%x: {dt}{x}) {{\n  %y: {dt}{x} = mean_variance_normalization {{{attrs}}} (%x)\n  return %y\n}}\n"
        );
        compiled_without_fallback(&text, 2, tol.0, tol.1);
    }
}

/// DFT: forward, inverse, one-sided and the inverse of a one-sided spectrum, real and
/// complex signals, every axis position, `dft_length` truncating and zero-padding (odd and
/// even), the axis as an attribute or a constant input; f32 and f64. The kernel repeats the
/// reference's arithmetic, so the results are exact.
#[test]
fn dft_runs_as_kernels() {
    let cases: &[(&str, &str, Option<i64>, Option<i64>)] = &[
        ("[1,10,10,1]", "axis: 1", None, None),
        ("[1,10,10,1]", "axis: 2", None, None),
        ("[2,7,3,2]", "axis: 1", None, None),
        ("[2,7,3,2]", "inverse: 1, axis: -3", None, None),
        ("[3,9,2]", "onesided: 1, axis: 1", None, None),
        ("[3,8,1]", "onesided: 1", None, Some(0)),
        ("[2,6,5,2]", "inverse: 1, onesided: 1, axis: 1", None, None),
        ("[2,6,5,2]", "inverse: 1, onesided: 1", Some(11), Some(1)),
        ("[2,4,5,2]", "inverse: 1, onesided: 1", Some(9), Some(1)),
        ("[5,13,1]", "axis: 1", Some(6), None),
        ("[5,6,2]", "inverse: 1, axis: 1", Some(17), None),
        ("[4,5,1]", "onesided: 1", Some(12), Some(-2)),
        ("[1,1,2]", "axis: 1", None, None),
    ];
    for dt in ["f32", "f64"] {
        for (x, attrs, len, axis) in cases {
            let mut consts = String::new();
            let len_arg = match len {
                Some(n) => {
                    consts += &format!("  %len: i64[] = constant {{value: i64[] [{n}]}}\n");
                    "%len"
                }
                None => "_",
            };
            let axis_arg = match axis {
                Some(a) => {
                    consts += &format!("  %axis: i64[] = constant {{value: i64[] [{a}]}}\n");
                    ", %axis"
                }
                None => "",
            };
            let args = if axis_arg.is_empty() && len_arg == "_" {
                String::new()
            } else if axis_arg.is_empty() {
                format!(", {len_arg}")
            } else {
                format!(", {len_arg}{axis_arg}")
            };
            let text = format!(
                "graph \"g\" (%x: {dt}{x}) {{\n{consts}  %y: {dt}[..] = dft {{{attrs}}} (%x{args})\n  return %y\n}}\n"
            );
            compiled_without_fallback(&text, 2, 0.0, 0.0);
        }
    }
}

/// ReverseSequence with run-time lengths (both axis orders, trailing dims, several element
/// types), and lengths outside `0..=T` clamped into it.
#[test]
fn reverse_sequence_runs_as_kernels() {
    for (dt, x, attrs, lens) in [
        (
            "f32",
            "[4,4]",
            "batch_axis: 0, time_axis: 1",
            "[4] [4, 3, 2, 1]",
        ),
        ("f32", "[4,4]", "", "[4] [4, 3, 2, 1]"),
        ("i64", "[5,3,2,3]", "", "[3] [5, 0, 2]"),
        (
            "u8",
            "[3,7,5]",
            "batch_axis: 0, time_axis: 1",
            "[3] [1, 7, 6]",
        ),
        ("f64", "[1,2,1]", "batch_axis: 0, time_axis: 1", "[1] [2]"),
    ] {
        let text = format!(
            "graph \"g\" (%x: {dt}{x}) {{\n  %l0: i64{} = constant {{value: i64{lens}}}\n  %l: i64{} = identity (%l0)\n  %y: {dt}{x} = reverse_sequence {{{attrs}}} (%x, %l)\n  return %y\n}}\n",
            &lens[..3],
            &lens[..3],
        );
        compiled_without_fallback(&text, 2, 0.0, 0.0);
    }
    // Out-of-range lengths (the reference refuses them) are clamped into 0..=T.
    use graphc::codegen::jit::{JitModel, JitOptions};
    use graphc::passes::eval::{compare, eval_graph};
    use graphc::passes::ir::{text::parse, Tensor};
    let mut g = parse(
        "graph \"g\" (%x: f32[3,5], %l: i64[3]) {\n  %y: f32[3,5] = reverse_sequence {batch_axis: 0, time_axis: 1} (%x, %l)\n  return %y\n}\n",
    )
    .unwrap();
    graphc::passes::infer::infer_graph(&mut g).unwrap();
    let x = Tensor::from_vec(&[3, 5], (0..15).map(|v| v as f32).collect()).unwrap();
    let mut m = JitModel::compile(&g, &JitOptions::default()).unwrap();
    assert!(m.program.fallbacks.is_empty());
    let got = m
        .run(&[
            x.clone(),
            Tensor::from_vec(&[3], vec![-4i64, 99, 3]).unwrap(),
        ])
        .unwrap();
    let clamped = Tensor::from_vec(&[3], vec![0i64, 5, 3]).unwrap();
    let want = eval_graph(&g, &[Some(x), Some(clamped)]).unwrap();
    compare(&got[0], &want[0], 0.0, 0.0).unwrap();
}

/// Det of random matrices (1x1 to 7x7, batched, f32 and f64), singular matrices (a zero
/// pivot), pivot ties (the last largest row wins) and NaN: the reference's elimination step
/// for step, so the results are exact.
#[test]
fn det_runs_as_kernels() {
    for (dt, x) in [
        ("f32", "[2,2]"),
        ("f32", "[3,2,2]"),
        ("f64", "[5,5]"),
        ("f32", "[2,3,7,7]"),
        ("f64", "[4,1,1]"),
        ("f32", "[3,3]"),
    ] {
        let y = {
            let dims: Vec<&str> = x.trim_matches(['[', ']']).split(',').collect();
            format!("[{}]", dims[..dims.len() - 2].join(","))
        };
        let text =
            format!("graph \"g\" (%x: {dt}{x}) {{\n  %y: {dt}{y} = det (%x)\n  return %y\n}}\n");
        compiled_without_fallback(&text, 2, 0.0, 0.0);
    }
    for m in [
        "[1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 1.0, 0.0, 1.0]",
        "[0.0, 2.0, 3.0, 0.0, 4.0, 5.0, 0.0, 1.0, 1.0]",
        "[1.0, 2.0, 3.0, -1.0, 3.0, 0.5, 1.0, -7.0, 2.0]",
        // A three-way tie whose first and last rows give different roundings.
        "[0.3, 0.18, -0.52, -0.3, 0.5, -1.74, 0.3, 1.35, -0.96]",
        "[1.0, nan, 3.0, -1.0, 3.0, 0.5, 1.0, -7.0, 2.0]",
        "[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]",
    ] {
        let text = format!(
            "graph \"g\" () {{\n  %x0: f64[3,3] = constant {{value: f64[3,3] {m}}}\n  %x: f64[3,3] = identity (%x0)\n  %y: f64[] = det (%x)\n  return %y\n}}\n"
        );
        compiled_without_fallback(&text, 1, 0.0, 0.0);
    }
}

/// MatMulInteger and ConvInteger (8-bit operands, scalar, per-row, per-column and
/// per-channel zero points, batches, padding, strides, groups) as exact f32 products; a
/// product whose partial sums could leave the f32-exact range is declined (it falls back).
#[test]
fn integer_products_run_as_kernels() {
    for (a, b, az, bz) in [
        ("u8[4,3]", "u8[3,2]", Some("u8[1]"), Some("u8[1]")),
        ("i8[2,5,7]", "i8[7,3]", Some("i8[]"), None),
        ("u8[2,1,3,9]", "u8[3,9,5]", Some("u8[1]"), Some("u8[5]")),
        ("i8[6,4]", "u8[4,9]", Some("i8[6]"), Some("u8[9]")),
        ("u8[1,258]", "u8[258,3]", None, None),
    ] {
        let mut decls = format!("%a: {a}, %b: {b}");
        let mut args = "%a, %b".to_string();
        for (name, z) in [("az", az), ("bz", bz)] {
            match z {
                Some(t) => {
                    decls += &format!(", %{name}: {t}");
                    args += &format!(", %{name}");
                }
                None => args += ", _",
            }
        }
        let text = format!(
            "graph \"g\" ({decls}) {{\n  %y: i32[..] = mat_mul_integer ({args})\n  return %y\n}}\n"
        );
        compiled_without_fallback(&text, 2, 0.0, 0.0);
    }
    for (x, w, attrs, wz) in [
        ("u8[1,1,3,3]", "u8[2,1,2,2]", "pads: [1, 1, 1, 1]", "u8[2]"),
        ("u8[1,1,3,3]", "u8[1,1,2,2]", "", "u8[]"),
        (
            "i8[2,4,7,6]",
            "i8[6,2,3,3]",
            "group: 2, strides: [2, 1], pads: [1, 0, 1, 2]",
            "i8[1]",
        ),
        ("u8[1,3,9]", "u8[5,3,4]", "dilations: [2]", "u8[5]"),
    ] {
        let text = format!(
            "graph \"g\" (%x: {x}, %w: {w}, %xz: {}[], %wz: {wz}) {{\n  %y: i32[..] = conv_integer {{{attrs}}} (%x, %w, %xz, %wz)\n  return %y\n}}\n",
            &x[..2]
        );
        compiled_without_fallback(&text, 2, 0.0, 0.0);
    }
    // K · 255 · 255 above 2^24: declined rather than inexact.
    let mut g = graphc::passes::ir::text::parse(
        "graph \"g\" (%a: u8[2,300], %b: u8[300,2]) {\n  %y: i32[2,2] = mat_mul_integer (%a, %b)\n  return %y\n}\n",
    )
    .unwrap();
    graphc::passes::infer::infer_graph(&mut g).unwrap();
    let m = graphc::codegen::jit::JitModel::compile(&g, &Default::default()).unwrap();
    assert_eq!(m.program.fallbacks.len(), 1);
}

/// QLinearMatMul: 8-bit operands, f32, f16 and f64 scales (run time), results that wrap
/// (numpy `astype`, as the reference), and a huge scale that saturates through i64.
#[test]
fn qlinear_matmul_runs_as_kernels() {
    for (t, s, a, b) in [
        ("u8", "f32", "[2,4]", "[4,3]"),
        ("i8", "f16", "[2,4]", "[4,3]"),
        ("u8", "f16", "[2,2,4]", "[2,4,3]"),
        ("i8", "f32", "[3,1,2,7]", "[2,7,5]"),
        ("u8", "f64", "[5,9]", "[9,6]"),
    ] {
        let text = format!(
            "graph \"g\" (%a: {t}{a}, %sa: {s}[1], %za: {t}[1], %b: {t}{b}, %sb: {s}[1], %zb: {t}[1], %sy: {s}[1], %zy: {t}[1]) {{\n  %y: {t}[..] = q_linear_mat_mul (%a, %sa, %za, %b, %sb, %zb, %sy, %zy)\n  return %y\n}}\n"
        );
        compiled_without_fallback(&text, 2, 0.0, 0.0);
    }
    for (sy, t) in [
        ("1e-30", "u8"),
        ("1e-30", "i8"),
        ("-1e-30", "u8"),
        ("0.003", "i8"),
    ] {
        let text = format!(
            "graph \"g\" (%a: {t}[3,4], %b: {t}[4,2]) {{\n  %sa: f32[] = constant {{value: f32[] [0.5]}}\n  %sb: f32[] = constant {{value: f32[] [0.25]}}\n  %sy0: f32[] = constant {{value: f32[] [{sy}]}}\n  %sy: f32[] = identity (%sy0)\n  %zy0: {t}[] = constant {{value: {t}[] [3]}}\n  %zy: {t}[] = identity (%zy0)\n  %y: {t}[3,2] = q_linear_mat_mul (%a, %sa, _, %b, %sb, _, %sy, %zy)\n  return %y\n}}\n"
        );
        compiled_without_fallback(&text, 1, 0.0, 0.0);
    }
}
