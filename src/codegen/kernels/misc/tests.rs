//! Tests of the family against the reference evaluator.

use graphc_passes::ir::Tensor;

use crate::codegen::kernel::Target;
use crate::codegen::testing::{check_graph, check_text, run_node};

/// A one-node graph: inputs `ins` (text), constants `consts` (text lines), the node line.
fn graph(ins: &str, consts: &[&str], node: &str, out: &str) -> String {
    let mut s = format!("graph \"g\" ({ins}) {{\n");
    for c in consts {
        s.push_str("  ");
        s.push_str(c);
        s.push('\n');
    }
    s.push_str(&format!("  {node}\n  return {out}\n}}\n"));
    s
}

fn exact(text: &str) {
    check_text(text, 7, 0.0, 0.0).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

#[test]
fn transpose_perms_and_dtypes() {
    for (dt, shape, perm, out) in [
        ("f32", "[2,3,5]", "[2,0,1]", "[5,2,3]"),
        ("f32", "[1,3,7,5]", "[0,2,3,1]", "[1,7,5,3]"),
        ("i64", "[4,9]", "[1,0]", "[9,4]"),
        ("u8", "[3,1,17]", "[2,1,0]", "[17,1,3]"),
        ("i16", "[2,3,4,5]", "[-1,1,0,2]", "[5,3,2,4]"),
        ("f32", "[64,130]", "[0,1]", "[64,130]"),
        ("f32", "[0,3]", "[1,0]", "[3,0]"),
    ] {
        let t = graph(
            &format!("%x: {dt}{shape}"),
            &[],
            &format!("%y: {dt}{out} = transpose {{perm: {perm}}} (%x)"),
            "%y",
        );
        exact(&t);
    }
    exact(&graph(
        "%x: f32[2,3,4]",
        &[],
        "%y: f32[4,3,2] = transpose (%x)",
        "%y",
    ));
}

#[test]
fn concat_any_axis() {
    exact(&graph(
        "%a: f32[2,3,5], %b: f32[2,1,5], %c: f32[2,4,5]",
        &[],
        "%y: f32[2,8,5] = concat {axis: 1} (%a, %b, %c)",
        "%y",
    ));
    exact(&graph(
        "%a: i64[3,2], %b: i64[3,7]",
        &[],
        "%y: i64[3,9] = concat {axis: -1} (%a, %b)",
        "%y",
    ));
    exact(&graph(
        "%a: u8[5000,3], %b: u8[0,3], %c: u8[1,3]",
        &[],
        "%y: u8[5001,3] = concat {axis: 0} (%a, %b, %c)",
        "%y",
    ));
}

#[test]
fn split_equal_and_sizes() {
    exact(&graph(
        "%x: f32[2,7,3]",
        &[],
        "%a: f32[2,3,3], %b: f32[2,3,3], %c: f32[2,1,3] = split {axis: 1, num_outputs: 3} (%x)",
        "%a, %b, %c",
    ));
    exact(&graph(
        "%x: i32[10,3]",
        &["%s: i64[3] = constant {value: i64[3] [2, 0, 8]}"],
        "%a: i32[2,3], %b: i32[0,3], %c: i32[8,3] = split (%x, %s)",
        "%a, %b, %c",
    ));
}

#[test]
fn slice_steps_negative_and_clamped() {
    let case = |shape: &str, st: &str, en: &str, ax: &str, sp: &str, out: &str| {
        let n = st.split(',').count();
        exact(&graph(
            &format!("%x: f32{shape}"),
            &[
                &format!("%st: i64[{n}] = constant {{value: i64[{n}] [{st}]}}"),
                &format!("%en: i64[{n}] = constant {{value: i64[{n}] [{en}]}}"),
                &format!("%ax: i64[{n}] = constant {{value: i64[{n}] [{ax}]}}"),
                &format!("%sp: i64[{n}] = constant {{value: i64[{n}] [{sp}]}}"),
            ],
            &format!("%y: f32{out} = slice (%x, %st, %en, %ax, %sp)"),
            "%y",
        ));
    };
    case("[2,3]", "-1", "-9223372036854775807", "1", "-1", "[2,3]");
    case("[4,10,6]", "1, 2", "9, -1", "1, -1", "3, 1", "[4,3,3]");
    case("[10]", "20", "-20", "0", "-4", "[3]");
    case("[5,6]", "0, 7", "5, 0", "0, 1", "2, -2", "[3,3]");
    case("[5,6]", "3", "1", "0", "1", "[0,6]");
    case("[3,4,5]", "1", "2", "-2", "1", "[3,1,5]");
}

#[test]
fn expand_and_tile() {
    exact(&graph(
        "%x: f32[3,1]",
        &["%s: i64[3] = constant {value: i64[3] [2, 1, 6]}"],
        "%y: f32[2,3,6] = expand (%x, %s)",
        "%y",
    ));
    exact(&graph(
        "%x: i64[1,5]",
        &["%s: i64[2] = constant {value: i64[2] [4, 1]}"],
        "%y: i64[4,5] = expand (%x, %s)",
        "%y",
    ));
    exact(&graph(
        "%x: f32[2,3]",
        &["%r: i64[2] = constant {value: i64[2] [3, 2]}"],
        "%y: f32[6,6] = tile (%x, %r)",
        "%y",
    ));
    exact(&graph(
        "%x: u8[1,3]",
        &["%r: i64[2] = constant {value: i64[2] [0, 2]}"],
        "%y: u8[0,6] = tile (%x, %r)",
        "%y",
    ));
}

#[test]
fn pad_constant_with_crop_and_axes() {
    exact(&graph(
        "%x: f32[2,3,5]",
        &[
            "%p: i64[6] = constant {value: i64[6] [0, 1, 2, 1, 0, 3]}",
            "%v: f32[] = constant {value: f32[] [1.5]}",
        ],
        "%y: f32[3,4,10] = pad (%x, %p, %v)",
        "%y",
    ));
    exact(&graph(
        "%x: i64[4,6]",
        &["%p: i64[4] = constant {value: i64[4] [-1, 2, 1, -3]}"],
        "%y: i64[4,5] = pad (%x, %p)",
        "%y",
    ));
    exact(&graph(
        "%x: u8[3,7]",
        &[
            "%p: i64[2] = constant {value: i64[2] [2, 1]}",
            "%v: u8[] = constant {value: u8[] [9]}",
            "%a: i64[1] = constant {value: i64[1] [-1]}",
        ],
        "%y: u8[3,10] = pad (%x, %p, %v, %a)",
        "%y",
    ));
}

/// Edge, reflect and wrap pads (pads longer than the axis for reflect and wrap, crops,
/// 1-sized axes, the last axis padded or not) and a constant pad whose value is an input.
#[test]
fn pad_modes_and_runtime_value() {
    for mode in ["edge", "reflect", "wrap"] {
        for (dt, xs, pads, ys) in [
            ("f32", "[2,3,5]", "[0, 1, 2, 1, 0, 3]", "[3,4,10]"),
            ("f32", "[3,4]", "[5, 7, 6, 9]", "[14,20]"),
            ("i64", "[4,6]", "[-1, 2, 1, -3]", "[4,5]"),
            ("u8", "[1,7]", "[3, 0, 2, 0]", "[6,7]"),
            ("i16", "[3,1,2]", "[0, 2, 0, 0, 1, 0]", "[3,4,2]"),
        ] {
            let np = pads.matches(',').count() + 1;
            exact(&graph(
                &format!("%x: {dt}{xs}"),
                &[&format!(
                    "%p: i64[{np}] = constant {{value: i64[{np}] {pads}}}"
                )],
                &format!("%y: {dt}{ys} = pad {{mode: \"{mode}\"}} (%x, %p)"),
                "%y",
            ));
        }
        // Through `axes`.
        exact(
            &graph(
                "%x: f32[3,7]",
                &[
                    "%p: i64[2] = constant {value: i64[2] [4, 2]}",
                    "%a: i64[1] = constant {value: i64[1] [-2]}",
                ],
                &format!("%y: f32[9,7] = pad {{mode: \"{mode}\"}} (%x, %p, %v, %a)"),
                "%y",
            )
            .replace("(%x: f32[3,7])", "(%x: f32[3,7], %v: f32[])"),
        );
    }
    // The constant value read at run time.
    for (dt, xs, pads, ys) in [
        ("f32", "[2,3,5]", "[0, 1, 2, 1, 0, 3]", "[3,4,10]"),
        ("i32", "[5,1]", "[1, 2, -2, 3]", "[4,6]"),
        ("u8", "[3,7]", "[2, 1, 0, 9]", "[5,17]"),
    ] {
        let np = pads.matches(',').count() + 1;
        exact(&graph(
            &format!("%x: {dt}{xs}, %v: {dt}[]"),
            &[&format!(
                "%p: i64[{np}] = constant {{value: i64[{np}] {pads}}}"
            )],
            &format!("%y: {dt}{ys} = pad (%x, %p, %v)"),
            "%y",
        ));
    }
}

/// CenterCropPad: crops and pads (odd and even differences), on listed and negative axes.
#[test]
fn center_crop_pad_crops_and_pads() {
    for (dt, xs, shape, axes, ys) in [
        ("f32", "[20,10,3]", "[10, 7, 3]", "", "[10,7,3]"),
        ("f32", "[10,7,3]", "[20, 10, 3]", "", "[20,10,3]"),
        ("f32", "[20,8,3]", "[10, 9]", ", axes: [0, 1]", "[10,9,3]"),
        ("i64", "[3,20,9]", "[11, 12]", ", axes: [1, 2]", "[3,11,12]"),
        ("u8", "[5,4,3]", "[6, 1]", ", axes: [-3, -2]", "[6,1,3]"),
    ] {
        let n = shape.matches(',').count() + 1;
        let attrs = axes.trim_start_matches(", ");
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" {{{attrs}}}")
        };
        exact(&graph(
            &format!("%x: {dt}{xs}"),
            &[&format!(
                "%s: i64[{n}] = constant {{value: i64[{n}] {shape}}}"
            )],
            &format!("%y: {dt}{ys} = center_crop_pad{attrs} (%x, %s)"),
            "%y",
        ));
    }
}

#[test]
fn gather_constant_and_runtime_indices() {
    exact(&graph(
        "%x: f32[5,7]",
        &["%i: i64[2,3] = constant {value: i64[2,3] [0, -1, 3, 4, -5, 2]}"],
        "%y: f32[2,3,7] = gather {axis: 0} (%x, %i)",
        "%y",
    ));
    exact(&graph(
        "%x: f32[2,6,3]",
        &["%i: i64[] = constant {value: i64[] [-2]}"],
        "%y: f32[2,3] = gather {axis: 1} (%x, %i)",
        "%y",
    ));
    exact(&graph(
        "%x: i32[4,5,2]",
        &["%i: i32[3] = constant {value: i32[3] [1, 0, -1]}"],
        "%y: i32[4,5,3] = gather {axis: -1} (%x, %i)",
        "%y",
    ));
}

#[test]
fn gather_runtime_indices_wrap_and_out_of_range_zero() {
    // Random inputs give indices in {-1, 0, 1}: negative ones wrap.
    exact(&graph(
        "%x: f32[3,5], %i: i64[4,2]",
        &[],
        "%y: f32[4,2,5] = gather {axis: 0} (%x, %i)",
        "%y",
    ));
    exact(&graph(
        "%x: i64[2,3,9], %i: i32[6]",
        &[],
        "%y: i64[2,6,9] = gather {axis: 1} (%x, %i)",
        "%y",
    ));
    // Out-of-range indices read nothing and write a zero block.
    let g = graphc_passes::ir::text::parse(&graph(
        "%x: f32[3,2], %i: i64[4]",
        &[],
        "%y: f32[4,2] = gather {axis: 0} (%x, %i)",
        "%y",
    ))
    .unwrap();
    let node = crate::codegen::testing::single_compute_node(&g).unwrap();
    let x = Tensor::from_vec(&[3, 2], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
    let i = Tensor::from_vec(&[4], vec![2i64, 3, -4, -3]).unwrap();
    let out = run_node(&g, node, &[Some(x), Some(i)], Target::host())
        .unwrap()
        .unwrap();
    assert_eq!(
        out[0],
        Tensor::from_vec(&[4, 2], vec![5f32, 6., 0., 0., 0., 0., 1., 2.]).unwrap()
    );
}

#[test]
fn movement_on_the_baseline_target() {
    let g = graphc_passes::ir::text::parse(&graph(
        "%x: f32[3,4,5]",
        &[],
        "%y: f32[5,3,4] = transpose {perm: [2,0,1]} (%x)",
        "%y",
    ))
    .unwrap();
    check_graph(&g, 3, 0.0, 0.0, Target::baseline()).unwrap();
}

fn close(text: &str, rtol: f64, atol: f64) {
    check_text(text, 11, rtol, atol).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

#[test]
fn max_pool_geometries() {
    for (shape, attrs, out) in [
        // ResNet stem: 3x3 s2 p1.
        (
            "[1,3,17,19]",
            "kernel_shape: [3,3], strides: [2,2], pads: [1,1,1,1]",
            "[1,3,9,10]",
        ),
        ("[2,2,9,13]", "kernel_shape: [3,3]", "[2,2,7,11]"),
        (
            "[1,2,8,8]",
            "kernel_shape: [2,2], strides: [2,2]",
            "[1,2,4,4]",
        ),
        // ceil_mode overhang (SqueezeNet, GoogLeNet).
        (
            "[1,2,10,11]",
            "kernel_shape: [3,3], strides: [2,2], ceil_mode: 1",
            "[1,2,5,5]",
        ),
        (
            "[1,1,6,23]",
            "kernel_shape: [3,2], strides: [1,1], pads: [1,0,1,1]",
            "[1,1,6,23]",
        ),
        (
            "[1,2,7,9]",
            "kernel_shape: [2,3], strides: [3,3], pads: [1,1,0,2], ceil_mode: 1",
            "[1,2,3,4]",
        ),
        (
            "[1,1,9,14]",
            "kernel_shape: [3,3], dilations: [2,2], pads: [2,2,2,2]",
            "[1,1,9,14]",
        ),
        (
            "[1,1,3,1]",
            "kernel_shape: [1,2], pads: [0,1,0,1], dilations: [1,2]",
            "[1,1,3,1]",
        ),
        ("[1,3,1,1]", "kernel_shape: [1,1]", "[1,3,1,1]"),
        (
            "[1,2,12,12]",
            "kernel_shape: [3,3], strides: [2,2], auto_pad: \"SAME_UPPER\"",
            "[1,2,6,6]",
        ),
    ] {
        exact(&graph(
            &format!("%x: f32{shape}"),
            &[],
            &format!("%y: f32{out} = max_pool {{{attrs}}} (%x)"),
            "%y",
        ));
    }
}

#[test]
fn average_pool_counts() {
    for (shape, attrs, out) in [
        (
            "[1,3,17,19]",
            "kernel_shape: [3,3], strides: [2,2], pads: [1,1,1,1]",
            "[1,3,9,10]",
        ),
        (
            "[1,3,17,19]",
            "kernel_shape: [3,3], strides: [2,2], pads: [1,1,1,1], count_include_pad: 1",
            "[1,3,9,10]",
        ),
        (
            "[2,2,9,13]",
            "kernel_shape: [3,3], strides: [1,1], pads: [1,1,1,1]",
            "[2,2,9,13]",
        ),
        (
            "[1,2,10,11]",
            "kernel_shape: [3,3], strides: [2,2], ceil_mode: 1, count_include_pad: 1",
            "[1,2,5,5]",
        ),
        (
            "[1,2,7,9]",
            "kernel_shape: [2,3], strides: [3,3], pads: [1,1,0,2], ceil_mode: 1",
            "[1,2,3,4]",
        ),
        ("[1,4,7,7]", "kernel_shape: [7,7]", "[1,4,1,1]"),
        (
            "[1,1,9,14]",
            "kernel_shape: [2,2], strides: [2,2]",
            "[1,1,4,7]",
        ),
    ] {
        close(
            &graph(
                &format!("%x: f32{shape}"),
                &[],
                &format!("%y: f32{out} = average_pool {{{attrs}}} (%x)"),
                "%y",
            ),
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn global_pools() {
    for (shape, out) in [
        ("[2,3,7,7]", "[2,3,1,1]"),
        ("[1,5,3,1]", "[1,5,1,1]"),
        ("[1,2,13]", "[1,2,1]"),
        ("[3,1,56,56]", "[3,1,1,1]"),
    ] {
        close(
            &graph(
                &format!("%x: f32{shape}"),
                &[],
                &format!("%y: f32{out} = global_average_pool (%x)"),
                "%y",
            ),
            1e-5,
            1e-6,
        );
        exact(&graph(
            &format!("%x: f32{shape}"),
            &[],
            &format!("%y: f32{out} = global_max_pool (%x)"),
            "%y",
        ));
    }
}

#[test]
fn softmax_rows() {
    for (shape, attrs) in [
        ("[2,3,5]", "axis: 2"),
        ("[4,16]", "axis: -1"),
        ("[3,1]", "axis: 1"),
        ("[2,67]", ""),
        ("[2,3,1]", "axis: 1"),
        ("[2,3,4]", "axis: 1, coerce_2d: 1"),
    ] {
        for op in ["softmax", "log_softmax"] {
            close(
                &graph(
                    &format!("%x: f32{shape}"),
                    &[],
                    &format!("%y: f32{shape} = {op} {{{attrs}}} (%x)"),
                    "%y",
                ),
                1e-5,
                1e-6,
            );
        }
    }
}

#[test]
fn fused_softmax_masks() {
    for (x, m) in [
        ("[2,3,5]", "[1,1,5]"),
        ("[2,3,8]", "[2,1,8]"),
        ("[2,4,7]", "[2,4,1]"),
        ("[2,2,3,9]", "[9]"),
        ("[3,12]", "[3,12]"),
    ] {
        close(
            &graph(
                &format!("%x: f32{x}, %m: f32{m}"),
                &[],
                &format!("%y: f32{x} = fused_softmax {{axis: -1}} (%x, %m)"),
                "%y",
            ),
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn layer_norm_scale_bias_shapes() {
    for (x, axis, s, bias) in [
        ("[2,3,8]", "-1", "[8]", Some("[8]")),
        ("[4,13]", "1", "[13]", None),
        ("[2,3,5]", "1", "[3,5]", Some("[1,3,5]")),
        ("[3,6]", "-1", "[1]", Some("[6]")),
        ("[2,1,7]", "2", "[7]", Some("[7]")),
    ] {
        let (ins, args) = match bias {
            Some(b) => (format!("%x: f32{x}, %s: f32{s}, %b: f32{b}"), "%x, %s, %b"),
            None => (format!("%x: f32{x}, %s: f32{s}"), "%x, %s"),
        };
        close(
            &graph(
                &ins,
                &[],
                &format!(
                    "%y: f32{x} = layer_normalization {{axis: {axis}, epsilon: 1e-05}} ({args})"
                ),
                "%y",
            ),
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn layer_norm_mean_and_inv_std_dev_outputs() {
    // Y, Mean and InvStdDev (each of the three, and the statistics alone), rows with tails.
    for (x, axis, stats, outs) in [
        ("[2,3,5]", "1", "[2,1,1]", "%y, %mean, %inv"),
        ("[4,9]", "-1", "[4,1]", "%mean, %inv"),
        ("[3,2,7]", "0", "[1,1,1]", "%y, %inv"),
        ("[6,4]", "1", "[6,1]", "%y, %mean"),
    ] {
        let node = format!(
            "%y: f32{x}, %mean: f32{stats}, %inv: f32{stats} = layer_normalization {{axis: {axis}, epsilon: 0.001}} (%x, %s, %b)"
        );
        let text = graph(
            &format!("%x: f32{x}, %s: f32[1], %b: f32[1]"),
            &[],
            &node,
            outs,
        );
        close(&text, 1e-4, 1e-5);
    }
}

#[test]
fn rms_norm_axes_and_scales() {
    for (x, axis, s) in [
        ("[2,3,8]", "-1", "[8]"),
        ("[4,13]", "1", "[13]"),
        ("[2,3,5]", "1", "[3,5]"),
        ("[3,6]", "-1", "[1]"),
        ("[2,5,7]", "0", "[2,5,7]"),
    ] {
        close(
            &graph(
                &format!("%x: f32{x}, %s: f32{s}"),
                &[],
                &format!(
                    "%y: f32{x} = rms_normalization {{axis: {axis}, epsilon: 1e-05}} (%x, %s)"
                ),
                "%y",
            ),
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn reductions_axes_keepdims() {
    for (op, shape, axes, attrs, out) in [
        ("reduce_mean", "[2,3,8]", Some("[-1]"), "", "[2,3,1]"),
        ("reduce_sum", "[2,3,9]", Some("[1]"), "keepdims: 0", "[2,9]"),
        ("reduce_max", "[4,5,6]", Some("[1,2]"), "", "[4,1,1]"),
        (
            "reduce_min",
            "[4,1,6,3]",
            Some("[0,1]"),
            "keepdims: 0",
            "[6,3]",
        ),
        ("reduce_mean", "[2,3,5,5]", Some("[2,3]"), "", "[2,3,1,1]"),
        ("reduce_sum", "[3,7]", None, "keepdims: 0", "[]"),
        ("reduce_max", "[3,7]", None, "", "[1,1]"),
        (
            "reduce_sum",
            "[3,7]",
            Some("[]"),
            "noop_with_empty_axes: 1",
            "[3,7]",
        ),
        ("reduce_mean", "[2,0,3]", Some("[1]"), "", "[2,1,3]"),
        ("reduce_max", "[2,0,3]", Some("[1]"), "keepdims: 0", "[2,3]"),
    ] {
        let (consts, args) = match axes {
            Some(a) => {
                let n = if a == "[]" { 0 } else { a.split(',').count() };
                let body = a.trim_matches(|c| c == '[' || c == ']');
                (
                    vec![format!(
                        "%a: i64[{n}] = constant {{value: i64[{n}] [{body}]}}"
                    )],
                    "%x, %a",
                )
            }
            None => (vec![], "%x"),
        };
        let consts: Vec<&str> = consts.iter().map(String::as_str).collect();
        close(
            &graph(
                &format!("%x: f32{shape}"),
                &consts,
                &format!("%y: f32{out} = {op} {{{attrs}}} ({args})"),
                "%y",
            ),
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn arg_max_min_axes() {
    for (op, shape, attrs, out) in [
        ("arg_max", "[3,10]", "axis: 1", "[3,1]"),
        ("arg_min", "[3,10]", "axis: 0, keepdims: 0", "[10]"),
        (
            "arg_max",
            "[2,3,4]",
            "axis: -2, select_last_index: 1",
            "[2,1,4]",
        ),
        ("arg_min", "[5]", "axis: 0, keepdims: 0", "[]"),
    ] {
        exact(&graph(
            &format!("%x: f32{shape}"),
            &[],
            &format!("%y: i64{out} = {op} {{{attrs}}} (%x)"),
            "%y",
        ));
    }
}

/// Runs a one-node graph on given inputs and compares with the reference exactly.
fn exact_on(text: &str, inputs: Vec<Option<Tensor>>) {
    let g = graphc_passes::ir::text::parse(text).unwrap();
    let node = crate::codegen::testing::single_compute_node(&g).unwrap();
    let want = graphc_passes::eval::eval_graph(&g, &inputs).unwrap();
    let got = run_node(&g, node, &inputs, Target::host())
        .unwrap()
        .unwrap();
    for (w, o) in want.iter().zip(&g.outputs) {
        graphc_passes::eval::compare(&got[o.value.port as usize], w, 0.0, 0.0)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

#[test]
fn nan_and_ties_follow_the_reference() {
    let nan = f32::NAN;
    let v = vec![1f32, nan, 3., 3., nan, -1., 2., 2., 0., 5., 5., nan];
    let x = || Some(Tensor::from_vec(&[2, 6], v.clone()).unwrap());
    for attrs in ["axis: 1", "axis: 1, select_last_index: 1", "axis: 0"] {
        for op in ["arg_max", "arg_min"] {
            let out = if attrs == "axis: 0" { "[1,6]" } else { "[2,1]" };
            exact_on(
                &graph(
                    "%x: f32[2,6]",
                    &[],
                    &format!("%y: i64{out} = {op} {{{attrs}}} (%x)"),
                    "%y",
                ),
                vec![x()],
            );
        }
    }
    for op in ["reduce_max", "reduce_min"] {
        exact_on(
            &graph(
                "%x: f32[2,6]",
                &["%a: i64[1] = constant {value: i64[1] [1]}"],
                &format!("%y: f32[2,1] = {op} (%x, %a)"),
                "%y",
            ),
            vec![x()],
        );
    }
    let p: Vec<f32> = (0..40)
        .map(|i| {
            if i % 7 == 3 {
                nan
            } else {
                i as f32 * 0.5 - 7.0
            }
        })
        .collect();
    let px = || Some(Tensor::from_vec(&[1, 2, 4, 5], p.clone()).unwrap());
    exact_on(
        &graph(
            "%x: f32[1,2,4,5]",
            &[],
            "%y: f32[1,2,1,1] = global_max_pool (%x)",
            "%y",
        ),
        vec![px()],
    );
    exact_on(
        &graph(
            "%x: f32[1,2,4,5]",
            &[],
            "%y: f32[1,2,4,5] = max_pool {kernel_shape: [3,3], pads: [1,1,1,1]} (%x)",
            "%y",
        ),
        vec![px()],
    );
}
