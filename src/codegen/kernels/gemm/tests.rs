//! The gemm family against the reference evaluator, on the host target (AVX2/AVX-512 when
//! present) and on the baseline target (the 128-bit Cranelift GEMM).
//!
//! Tolerance: inputs are uniform in [-2, 2), so a product term is at most 4 in magnitude and 1
//! on average; f32 accumulation of K terms errs by about `sqrt(K) * 2^-24 * sum|terms|` with
//! `sum|terms| ~ K`. The bound used, `atol = 1e-6 * sqrt(K) * (K + 8)` plus `rtol = 1e-5`,
//! is about 8x that estimate (different summation orders, FMA vs mul+add, the bias and
//! residual terms), and still orders of magnitude below what an indexing bug produces.

use graphc_passes::ir::text::parse;

use crate::codegen::kernel::Target;
use crate::codegen::testing::check_graph;

fn atol(k: usize) -> f64 {
    1e-6 * (k as f64).sqrt() * (k as f64 + 8.0)
}

/// Checks `text` on both targets.
fn check(text: &str, k: usize, seed: u64) {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for target in [Target::host(), Target::baseline()] {
        check_graph(&g, seed, 1e-5, atol(k), target)
            .unwrap_or_else(|e| panic!("{target:?}: {e}\n{text}"));
    }
}

/// A constant of `shape` with deterministic values in [-1, 1).
fn constant(name: &str, shape: &[usize], seed: u64) -> String {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let vals: Vec<String> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            format!(
                "{:.4}",
                ((s >> 40) as f64 / (1u64 << 24) as f64) * 2.0 - 1.0
            )
        })
        .collect();
    let dims = fmt_dims(shape);
    format!(
        "  %{name}: f32{dims} = constant {{value: f32{dims} [{}]}}\n",
        vals.join(", ")
    )
}

fn fmt_dims(d: &[usize]) -> String {
    let v: Vec<String> = d.iter().map(|x| x.to_string()).collect();
    format!("[{}]", v.join(","))
}

/// A graph: `inputs` as (name, shape), `consts` lines, one node producing `%y` of `out`.
fn graph(inputs: &[(&str, &[usize])], consts: &str, node: &str, out: &[usize]) -> String {
    let ins: Vec<String> = inputs
        .iter()
        .map(|(n, d)| format!("%{n}: f32{}", fmt_dims(d)))
        .collect();
    format!(
        "graph \"g\" ({}) {{\n{consts}  %y: f32{} = {node}\n  return %y\n}}\n",
        ins.join(", "),
        fmt_dims(out)
    )
}

#[test]
fn matmul_shapes_with_tails() {
    let mut seed = 0;
    for &(m, n, k) in &[
        (1, 1, 1),
        (5, 7, 3),
        (7, 17, 1),
        (13, 1, 9),
        (6, 16, 4),
        (19, 33, 37),
        (2, 100, 70),
        (64, 49, 200),
    ] {
        seed += 1;
        // Runtime B (packed by a launch) and constant B (packed at compile time).
        let text = graph(
            &[("a", &[m, k]), ("b", &[k, n])],
            "",
            "mat_mul (%a, %b)",
            &[m, n],
        );
        check(&text, k, seed);
        let text = graph(
            &[("a", &[m, k])],
            &constant("b", &[k, n], seed),
            "mat_mul (%a, %b)",
            &[m, n],
        );
        check(&text, k, seed);
    }
}

#[test]
fn matmul_long_k_is_blocked() {
    // k > the K block: several blocks, the epilogue once.
    let (m, n, k) = (9, 20, 1500);
    let text = graph(
        &[("a", &[m, k]), ("b", &[k, n]), ("bias", &[n])],
        "",
        "fused_mat_mul {activation: \"relu\"} (%a, %b, %bias)",
        &[m, n],
    );
    check(&text, k, 3);
}

#[test]
fn matmul_batched_and_broadcast() {
    let cases: &[(&[usize], &[usize], &[usize])] = &[
        (&[2, 3, 5, 7], &[2, 3, 7, 4], &[2, 3, 5, 4]),
        (&[3, 5, 7], &[7, 4], &[3, 5, 4]),
        (&[5, 7], &[3, 7, 4], &[3, 5, 4]),
        (&[2, 1, 5, 7], &[1, 3, 7, 9], &[2, 3, 5, 9]),
        (&[7], &[7, 4], &[4]),
        (&[5, 7], &[7], &[5]),
        (&[7], &[7], &[]),
        (&[2, 5, 7], &[7], &[2, 5]),
        (&[7], &[3, 7, 4], &[3, 4]),
    ];
    for (i, &(a, b, out)) in cases.iter().enumerate() {
        let text = graph(&[("a", a), ("b", b)], "", "mat_mul (%a, %b)", out);
        check(&text, 7, i as u64);
        let text = graph(
            &[("a", a)],
            &constant("b", b, i as u64),
            "mat_mul (%a, %b)",
            out,
        );
        check(&text, 7, 100 + i as u64);
    }
}

#[test]
fn fused_matmul_bias_residual_activation() {
    let acts = [
        "{activation: \"none\"}",
        "{activation: \"relu\"}",
        "{activation: \"clip\", alpha: -0.5, beta: 1.5}",
        // Activations the GEMM epilogue lacks: a second, in-place launch.
        "{activation: \"sigmoid\"}",
        "{activation: \"silu\"}",
        "{activation: \"gelu\"}",
        "{activation: \"tanh\"}",
        "{activation: \"leaky_relu\", alpha: 0.1}",
        "{activation: \"hard_sigmoid\", alpha: 0.2, beta: 0.5}",
        "{activation: \"hard_swish\"}",
    ];
    let mut seed = 0;
    for &(m, n, k) in &[(5, 7, 3), (13, 33, 17), (1, 20, 64)] {
        for act in acts {
            for (bias, res) in [(true, false), (false, true), (true, true)] {
                seed += 1;
                let ashape = [2, m, k];
                let mut ins: Vec<(&str, &[usize])> = vec![("a", &ashape[..])];
                let bshape = [n];
                let rshape = [2, m, n];
                let mut args = "%a, %b".to_string();
                if bias {
                    ins.push(("bias", &bshape));
                    args += ", %bias";
                } else if res {
                    args += ", _";
                }
                if res {
                    ins.push(("r", &rshape));
                    args += ", %r";
                }
                let text = graph(
                    &ins,
                    &constant("b", &[k, n], seed),
                    &format!("fused_mat_mul {act} ({args})"),
                    &[2, m, n],
                );
                check(&text, k, seed);
            }
        }
    }
}

#[test]
fn gemm_attributes() {
    let mut seed = 0;
    for &(m, n, k) in &[(5, 7, 3), (13, 18, 33), (1, 1, 9)] {
        for flags in 0..4 {
            let (ta, tb) = (flags & 1 != 0, flags & 2 != 0);
            let ad = if ta { [k, m] } else { [m, k] };
            let bd = if tb { [n, k] } else { [k, n] };
            for (c, alpha, beta) in [
                (None, 1.0, 1.0),
                (Some(vec![n]), 1.0, 1.0),
                (Some(vec![1, n]), 0.5, 2.0),
                (Some(vec![m, n]), 1.0, 1.0),
                (Some(vec![m, 1]), 1.0, 1.0),
                (Some(vec![1]), 2.0, -1.0),
            ] {
                seed += 1;
                let attrs = format!(
                    "{{trans_a: {}, trans_b: {}, alpha: {alpha:?}, beta: {beta:?}}}",
                    ta as i32, tb as i32
                );
                let mut consts = constant("b", &bd, seed);
                let mut ins: Vec<(&str, &[usize])> = vec![("a", &ad)];
                let args = match &c {
                    None => "%a, %b",
                    Some(cd) => {
                        if beta != 1.0 || cd.len() == 1 && cd[0] == 1 {
                            consts += &constant("c", cd, seed + 7);
                        } else {
                            ins.push(("c", cd));
                        }
                        "%a, %b, %c"
                    }
                };
                let text = graph(&ins, &consts, &format!("gemm {attrs} ({args})"), &[m, n]);
                check(&text, k, seed);
                if alpha == 1.0 {
                    // Runtime B: packed (and transposed) by a launch.
                    let mut ins = ins.clone();
                    ins.push(("b", &bd));
                    let consts = consts.split_once('\n').map(|x| x.1).unwrap_or("");
                    let text = graph(&ins, consts, &format!("gemm {attrs} ({args})"), &[m, n]);
                    check(&text, k, seed + 1000);
                }
            }
        }
    }
}

/// A conv case: input dims, weight dims, attributes, output dims.
fn conv_case(x: &[usize], w: &[usize], attrs: &str, out: &[usize], extra: &str, seed: u64) {
    let k: usize = w[1..].iter().product();
    let co = w[0];
    let mut ins: Vec<(&str, &[usize])> = vec![("x", x), ("w", w)];
    let bshape = [co];
    let mut args = "%x, %w".to_string();
    let op = if extra.is_empty() {
        format!("conv {attrs} ")
    } else {
        ins.push(("bias", &bshape));
        args += ", %bias";
        if extra.contains("res") {
            ins.push(("r", out));
            args += ", %r";
        }
        let act = if extra.contains("relu") {
            "activation: \"relu\""
        } else if extra.contains("clip") {
            "activation: \"clip\", alpha: 0.0, beta: 6.0"
        } else if extra.contains("silu") {
            "activation: \"silu\""
        } else if extra.contains("hard_swish") {
            "activation: \"hard_swish\""
        } else {
            "activation: \"none\""
        };
        let inner = attrs.trim_start_matches('{').trim_end_matches('}');
        if inner.is_empty() {
            format!("fused_conv {{{act}}} ")
        } else {
            format!("fused_conv {{{inner}, {act}}} ")
        }
    };
    let text = graph(&ins, "", &format!("{op}({args})"), out);
    check(&text, k, seed);
}

#[test]
fn conv_geometries() {
    let cases: &[(&[usize], &[usize], &str, &[usize])] = &[
        (&[1, 3, 5, 5], &[4, 3, 1, 1], "{}", &[1, 4, 5, 5]),
        (
            &[1, 5, 6, 7],
            &[8, 5, 3, 3],
            "{pads: [1, 1, 1, 1]}",
            &[1, 8, 6, 7],
        ),
        (
            &[2, 3, 9, 8],
            &[7, 3, 3, 3],
            "{pads: [1, 1, 1, 1], strides: [2, 2]}",
            &[2, 7, 5, 4],
        ),
        (
            &[1, 4, 9, 9],
            &[6, 4, 3, 3],
            "{pads: [2, 2, 2, 2], dilations: [2, 2]}",
            &[1, 6, 9, 9],
        ),
        (&[1, 4, 6, 6], &[6, 2, 3, 3], "{group: 2}", &[1, 6, 4, 4]),
        (
            &[1, 6, 7, 5],
            &[6, 1, 3, 3],
            "{group: 6, pads: [1, 1, 1, 1]}",
            &[1, 6, 7, 5],
        ),
        (
            &[1, 3, 5, 6],
            &[5, 3, 2, 3],
            "{pads: [0, 2, 1, 0]}",
            &[1, 5, 5, 6],
        ),
        (&[1, 3, 1, 9], &[4, 3, 1, 3], "{}", &[1, 4, 1, 7]),
        (&[1, 3, 4, 4], &[2, 3, 4, 4], "{}", &[1, 2, 1, 1]),
        (
            &[1, 7, 3, 3],
            &[5, 7, 3, 3],
            "{pads: [1, 1, 1, 1]}",
            &[1, 5, 3, 3],
        ),
        (
            &[1, 13, 10, 10],
            &[9, 13, 1, 1],
            "{strides: [2, 2]}",
            &[1, 9, 5, 5],
        ),
        (
            &[2, 3, 11],
            &[4, 3, 3],
            "{pads: [1, 2], strides: [2]}",
            &[2, 4, 6],
        ),
        (
            &[1, 2, 4, 4],
            &[3, 2, 3, 3],
            "{auto_pad: \"VALID\"}",
            &[1, 3, 2, 2],
        ),
        // SAME padding, split as the reference splits it (odd element at the end or start).
        (
            &[1, 2, 5, 5],
            &[3, 2, 3, 3],
            "{auto_pad: \"SAME_UPPER\"}",
            &[1, 3, 5, 5],
        ),
        (
            &[1, 3, 7, 6],
            &[4, 3, 3, 3],
            "{auto_pad: \"SAME_LOWER\", strides: [2, 2]}",
            &[1, 4, 4, 3],
        ),
        (
            &[1, 2, 5, 6],
            &[3, 2, 2, 4],
            "{auto_pad: \"SAME_UPPER\"}",
            &[1, 3, 5, 6],
        ),
        (
            &[1, 2, 5, 6],
            &[3, 2, 2, 4],
            "{auto_pad: \"SAME_LOWER\", dilations: [2, 1]}",
            &[1, 3, 5, 6],
        ),
        (
            &[1, 6, 7, 5],
            &[6, 1, 3, 3],
            "{auto_pad: \"SAME_LOWER\", group: 6, strides: [2, 2]}",
            &[1, 6, 4, 3],
        ),
        (
            &[1, 3, 9],
            &[2, 3, 4],
            "{auto_pad: \"SAME_UPPER\", strides: [2]}",
            &[1, 2, 5],
        ),
    ];
    for (i, &(x, w, attrs, out)) in cases.iter().enumerate() {
        conv_case(x, w, attrs, out, "", i as u64);
    }
}

#[test]
fn fused_conv_bias_residual_activation() {
    let mut seed = 50;
    for extra in [
        "bias",
        "bias relu",
        "bias res",
        "bias res relu",
        "bias clip",
        "bias res silu",
        "bias hard_swish",
    ] {
        for &(x, w, attrs, out) in &[
            (
                &[1usize, 5, 6, 7][..],
                &[8usize, 5, 3, 3][..],
                "{pads: [1, 1, 1, 1]}",
                &[1usize, 8, 6, 7][..],
            ),
            (&[2, 4, 6, 6], &[6, 2, 1, 1], "{group: 2}", &[2, 6, 6, 6]),
            (&[1, 16, 7, 7], &[20, 16, 1, 1], "{}", &[1, 20, 7, 7]),
        ] {
            seed += 1;
            conv_case(x, w, attrs, out, extra, seed);
        }
    }
}

/// Input shape, weight shape, attributes, output shape.
type ConvCase<'a> = (&'a [usize], &'a [usize], &'a str, &'a [usize]);

/// Convolutions over three and four spatial dims (the N-D im2col table): pads, strides,
/// dilations, groups, auto_pad, 1-sized dims, fused epilogues, and one big enough for column
/// chunks.
#[test]
fn conv_nd_geometries() {
    let cases: &[ConvCase] = &[
        (&[1, 2, 4, 5, 5], &[3, 2, 3, 3, 3], "{}", &[1, 3, 2, 3, 3]),
        (
            &[2, 3, 5, 6, 7],
            &[4, 3, 2, 3, 2],
            "{pads: [1, 1, 0, 1, 0, 1], strides: [2, 1, 3]}",
            &[2, 4, 3, 5, 3],
        ),
        (
            &[1, 4, 6, 7, 9],
            &[6, 2, 3, 2, 3],
            "{group: 2, dilations: [2, 1, 2], pads: [2, 0, 1, 2, 1, 2]}",
            &[1, 6, 6, 7, 8],
        ),
        (
            &[1, 3, 4, 5, 6],
            &[5, 3, 3, 3, 3],
            "{auto_pad: \"SAME_UPPER\", strides: [2, 2, 2]}",
            &[1, 5, 2, 3, 3],
        ),
        (
            &[1, 3, 4, 5, 6],
            &[5, 3, 2, 2, 2],
            "{auto_pad: \"SAME_LOWER\"}",
            &[1, 5, 4, 5, 6],
        ),
        (&[1, 1, 3, 3, 3], &[2, 1, 1, 1, 1], "{}", &[1, 2, 3, 3, 3]),
        (&[1, 2, 1, 1, 1], &[3, 2, 1, 1, 1], "{}", &[1, 3, 1, 1, 1]),
        (
            &[1, 2, 3, 4, 3, 5],
            &[3, 2, 2, 2, 2, 3],
            "{}",
            &[1, 3, 2, 3, 2, 3],
        ),
        (
            &[1, 4, 4, 5, 6],
            &[4, 1, 3, 3, 3],
            "{group: 4, pads: [1, 1, 1, 1, 1, 1]}",
            &[1, 4, 4, 5, 6],
        ),
        (
            &[1, 8, 10, 12, 14],
            &[16, 8, 3, 3, 3],
            "{pads: [1, 1, 1, 1, 1, 1]}",
            &[1, 16, 10, 12, 14],
        ),
    ];
    for (i, &(x, w, attrs, out)) in cases.iter().enumerate() {
        conv_case(x, w, attrs, out, "", 300 + i as u64);
    }
    for (i, extra) in ["bias", "bias res relu", "bias silu"].iter().enumerate() {
        let (x, w, attrs, out) = cases[1];
        conv_case(x, w, attrs, out, extra, 320 + i as u64);
    }
}

#[test]
fn declines_what_it_does_not_handle() {
    use crate::codegen::testing::run_node;
    use graphc_passes::eval::random_inputs;
    // A kernel_shape that disagrees with the weight, a 3-D conv with an output shape that
    // disagrees with its geometry.
    for text in [
        graph(
            &[("x", &[1, 2, 5, 5]), ("w", &[3, 2, 3, 3])],
            "",
            "conv {kernel_shape: [2, 2]} (%x, %w)",
            &[1, 3, 4, 4],
        ),
        graph(
            &[("x", &[1, 2, 4, 5, 5]), ("w", &[3, 2, 3, 3, 3])],
            "",
            "conv (%x, %w)",
            &[1, 3, 2, 3, 4],
        ),
    ] {
        let g = parse(&text).unwrap();
        let node = crate::codegen::testing::single_compute_node(&g).unwrap();
        let inputs = random_inputs(&g, 1).unwrap();
        assert!(run_node(&g, node, &inputs, Target::host())
            .unwrap()
            .is_none());
    }
}

#[test]
fn conv_column_chunks() {
    // Big enough that B is packed and multiplied in column chunks (full and tail chunks,
    // stride 1 and 2, borders, output widths not a multiple of 4).
    let cases: &[(&[usize], &[usize], &str, &[usize], &str)] = &[
        (
            &[1, 64, 12, 12],
            &[8, 64, 3, 3],
            "{pads: [1, 1, 1, 1]}",
            &[1, 8, 12, 12],
            "",
        ),
        (
            &[1, 64, 38, 38],
            &[8, 64, 3, 3],
            "{pads: [1, 1, 1, 1], strides: [2, 2]}",
            &[1, 8, 19, 19],
            "bias res relu",
        ),
        (
            &[1, 3, 50, 50],
            &[8, 3, 7, 7],
            "{pads: [3, 3, 3, 3], strides: [2, 2]}",
            &[1, 8, 25, 25],
            "bias relu",
        ),
        (
            &[2, 300, 20, 21],
            &[7, 300, 1, 1],
            "{}",
            &[2, 7, 20, 21],
            "bias clip",
        ),
        (
            &[1, 40, 21, 21],
            &[5, 40, 3, 3],
            "{pads: [0, 1, 2, 1], dilations: [2, 1]}",
            &[1, 5, 19, 21],
            "",
        ),
        (
            &[1, 200, 9, 30],
            &[6, 200, 1, 1],
            "{strides: [1, 3]}",
            &[1, 6, 9, 10],
            "bias res",
        ),
    ];
    for (i, &(x, w, attrs, out, extra)) in cases.iter().enumerate() {
        conv_case(x, w, attrs, out, extra, 200 + i as u64);
    }
}

#[test]
fn matmul_column_chunks() {
    // Runtime B split into chunks (packed per chunk), and constant B with few rows split
    // into chunks for parallelism, including several K blocks.
    let mut seed = 300;
    for &(m, n, k) in &[
        (1, 300, 1200),
        (3, 200, 70),
        (2, 130, 1500),
        (12, 257, 33),
        (5, 150, 600),
        // Many rows and a constant B larger than two chunks: swept in L2-sized column
        // chunks (with a row tail and a panel tail; K above one K block).
        (23, 1001, 300),
        (40, 530, 1100),
    ] {
        seed += 1;
        let text = graph(
            &[("a", &[m, k]), ("b", &[k, n])],
            "",
            "mat_mul (%a, %b)",
            &[m, n],
        );
        check(&text, k, seed);
        let text = graph(
            &[("a", &[m, k]), ("bias", &[n])],
            &constant("b", &[k, n], seed),
            "fused_mat_mul {activation: \"relu\"} (%a, %b, %bias)",
            &[m, n],
        );
        check(&text, k, seed);
    }
    let text = graph(
        &[("a", &[2, 5, 600]), ("b", &[2, 600, 150])],
        "",
        "mat_mul (%a, %b)",
        &[2, 5, 150],
    );
    check(&text, 600, 7);
    // Gemm with a transposed constant B and few rows.
    for tb in [0, 1] {
        let (m, n, k) = (4, 200, 50);
        let bd = if tb == 1 { [n, k] } else { [k, n] };
        let text = graph(
            &[("a", &[m, k]), ("c", &[n])],
            &constant("b", &bd, 9),
            &format!("gemm {{trans_b: {tb}, alpha: 0.5}} (%a, %b, %c)"),
            &[m, n],
        );
        check(&text, k, 10 + tb);
    }
}

#[test]
fn depthwise_conv() {
    // group == Cin == Cout: the depthwise kernel (vector interior, scalar borders, border
    // rows), strides 1, 2 and 3, dilation, asymmetric pads, widths not a multiple of 4.
    let cases: &[(&[usize], &[usize], &str, &[usize])] = &[
        (
            &[1, 8, 14, 14],
            &[8, 1, 3, 3],
            "{group: 8, pads: [1, 1, 1, 1]}",
            &[1, 8, 14, 14],
        ),
        (
            &[2, 5, 23, 21],
            &[5, 1, 3, 3],
            "{group: 5, pads: [1, 1, 1, 1], strides: [2, 2]}",
            &[2, 5, 12, 11],
        ),
        (
            &[1, 3, 40, 37],
            &[3, 1, 3, 3],
            "{group: 3, pads: [1, 1, 1, 1]}",
            &[1, 3, 40, 37],
        ),
        (
            &[1, 4, 16, 33],
            &[4, 1, 5, 5],
            "{group: 4, pads: [2, 2, 2, 2], strides: [2, 2]}",
            &[1, 4, 8, 17],
        ),
        (
            &[1, 4, 11, 19],
            &[4, 1, 3, 3],
            "{group: 4, pads: [0, 2, 1, 0], dilations: [2, 2]}",
            &[1, 4, 8, 17],
        ),
        (
            &[1, 2, 10, 30],
            &[2, 1, 3, 3],
            "{group: 2, strides: [1, 3]}",
            &[1, 2, 8, 10],
        ),
        (
            &[1, 3, 2, 2],
            &[3, 1, 3, 3],
            "{group: 3, pads: [1, 1, 1, 1]}",
            &[1, 3, 2, 2],
        ),
        (
            &[1, 6, 9],
            &[6, 1, 3],
            "{group: 6, pads: [1, 1]}",
            &[1, 6, 9],
        ),
    ];
    for (i, &(x, w, attrs, out)) in cases.iter().enumerate() {
        conv_case(x, w, attrs, out, "", 400 + i as u64);
    }
    let mut seed = 450;
    for extra in [
        "bias",
        "bias relu",
        "bias res",
        "bias res relu",
        "bias clip",
        "bias silu",
        "bias res hard_swish",
    ] {
        for &(x, w, attrs, out) in &[
            (
                &[1usize, 8, 14, 14][..],
                &[8usize, 1, 3, 3][..],
                "{group: 8, pads: [1, 1, 1, 1]}",
                &[1usize, 8, 14, 14][..],
            ),
            (
                &[1, 6, 15, 15],
                &[6, 1, 3, 3],
                "{group: 6, pads: [1, 1, 1, 1], strides: [2, 2]}",
                &[1, 6, 8, 8],
            ),
        ] {
            seed += 1;
            conv_case(x, w, attrs, out, extra, seed);
        }
    }
}

#[test]
fn depthwise_edge_blocks() {
    // Widths 1..=12 (vector edge blocks need w >= 4 * stride; tails stay scalar), strides 1
    // and 2, pads 0/1/2 and asymmetric, dilation 2, with and without the epilogue.
    let mut seed = 600;
    for w in 1..=12usize {
        for (attrs, kw, sw, dw, pl, pr) in [
            ("pads: [1, 1, 1, 1]", 3, 1, 1, 1, 1),
            ("pads: [0, 0, 0, 0]", 3, 1, 1, 0, 0),
            ("pads: [1, 1, 1, 1], strides: [2, 2]", 3, 2, 1, 1, 1),
            ("pads: [0, 0, 1, 1], strides: [2, 2]", 3, 2, 1, 0, 1),
            ("pads: [1, 2, 1, 0]", 3, 1, 1, 2, 0),
            ("pads: [2, 2, 2, 2], dilations: [2, 2]", 3, 1, 2, 2, 2),
            ("pads: [2, 2, 2, 2], strides: [2, 2]", 5, 2, 1, 2, 2),
        ] {
            let span = dw * (kw - 1) + 1;
            if w + pl + pr < span {
                continue;
            }
            let ow = (w + pl + pr - span) / sw + 1;
            let h = 5;
            let (pt, pb) = (pl.min(1), pr.min(1));
            let spanh = dw * (kw - 1) + 1;
            if h + pt + pb < spanh {
                continue;
            }
            let oh = (h + pt + pb - spanh) / sw + 1;
            // Pads as [top, left, bottom, right]: rebuild with the row pads chosen above.
            let rest = attrs.split_once("], ").map(|(_, r)| r).unwrap_or("");
            let pads = format!("pads: [{pt}, {pl}, {pb}, {pr}]");
            let attrs = if rest.is_empty() {
                format!("{{group: 3, {pads}}}")
            } else {
                format!("{{group: 3, {pads}, {rest}}}")
            };
            for extra in ["", "bias res relu"] {
                seed += 1;
                conv_case(
                    &[1, 3, h, w],
                    &[3, 1, kw, kw],
                    &attrs,
                    &[1, 3, oh, ow],
                    extra,
                    seed,
                );
            }
        }
    }
}

#[test]
fn depthwise_wide_rows() {
    // More than 32 vector blocks per row: the block loop (4 at a time, then 1) instead of
    // straight-line code; strides 1 and 2, with and without the epilogue.
    let cases: &[(&[usize], &str, &[usize])] = &[
        (
            &[1, 2, 3, 150],
            "{group: 2, pads: [1, 1, 1, 1]}",
            &[1, 2, 3, 150],
        ),
        (
            &[1, 2, 5, 301],
            "{group: 2, pads: [1, 1, 1, 1], strides: [2, 2]}",
            &[1, 2, 3, 151],
        ),
        (
            &[1, 2, 4, 300],
            "{group: 2, pads: [0, 0, 1, 1], strides: [2, 2]}",
            &[1, 2, 2, 150],
        ),
    ];
    let mut seed = 700;
    for &(x, attrs, out) in cases {
        for extra in ["", "bias res clip"] {
            seed += 1;
            conv_case(x, &[2, 1, 3, 3], attrs, out, extra, seed);
        }
    }
}
