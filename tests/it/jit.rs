//! The compiled engine as a whole (entry function, operand locations, fallback, threads),
//! against the reference evaluator. Kernels have their own tests next to them.

use graphc::codegen::jit::{JitModel, JitOptions};
use graphc::passes::eval::{compare, eval_graph, random_inputs};
use graphc::passes::ir::text::parse;
use graphc::passes::ir::Graph;

/// Compiles `g`, runs it on seeded inputs with `threads`, and compares every output with the
/// reference evaluator exactly (the graphs here only move bytes or fall back).
fn check(g: &Graph, threads: usize) -> JitModel {
    let inputs = random_inputs(g, 7).unwrap();
    let want = eval_graph(g, &inputs).unwrap();
    let mut m = JitModel::compile(
        g,
        &JitOptions {
            threads,
            ..Default::default()
        },
    )
    .unwrap();
    let inputs: Vec<_> = inputs.into_iter().map(Option::unwrap).collect();
    // Twice: a second run must not depend on what the first left in the workspace.
    for _ in 0..2 {
        let got = m.run(&inputs).unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            compare(a, b, 0.0, 0.0).unwrap_or_else(|e| panic!("output {i}: {e}"));
        }
    }
    m
}

#[test]
fn outputs_may_be_inputs_constants_or_repeated() {
    let g = parse(
        r#"graph "g" (%x: f32[2,3], %n: i64[4]) {
  %s: i64[1] = constant {value: i64[1] [6]}
  %y: f32[6] = reshape (%x, %s)
  %c: f32[2] = constant {value: f32[2] [1.5, -2]}
  return %y, %x, %c, %y, %n
}
"#,
    )
    .unwrap();
    let m = check(&g, 1);
    assert!(m.program.fallbacks.is_empty());
}

#[test]
fn fallback_nodes_run_between_kernels() {
    // GlobalLpPool has no kernel: it runs with the reference evaluator between two copies,
    // reading a buffer of the arena and writing one.
    let g = parse(
        r#"graph "g" (%x: f32[3,4]) {
  %s: i64[4] = constant {value: i64[4] [1, 3, 2, 2]}
  %a: f32[1,3,2,2] = reshape (%x, %s)
  %b: f32[1,3,1,1] = global_lp_pool (%a)
  %t: i64[1] = constant {value: i64[1] [3]}
  %c: f32[3] = reshape (%b, %t)
  return %c, %b
}
"#,
    )
    .unwrap();
    let m = check(&g, 2);
    assert_eq!(m.program.fallbacks.len(), 1);
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // A copy of 1 MiB: many work items, split across the pool.
    let g = parse(
        r#"graph "g" (%x: f32[256,1024]) {
  %y: f32[256,1024] = identity (%x)
  %s: i64[1] = constant {value: i64[1] [262144]}
  %z: f32[262144] = reshape (%y, %s)
  return %z
}
"#,
    )
    .unwrap();
    for threads in [1, 2, 3, 8] {
        let m = check(&g, threads);
        assert_eq!(m.threads(), threads);
    }
}

#[test]
fn wrong_inputs_are_refused() {
    let g = parse("graph \"g\" (%x: f32[2]) {\n  %y: f32[2] = identity (%x)\n  return %y\n}\n")
        .unwrap();
    let mut m = JitModel::compile(&g, &JitOptions::default()).unwrap();
    let bad = graphc::passes::ir::Tensor::from_vec(&[3], vec![1f32, 2., 3.]).unwrap();
    let e = m.run(&[bad]).unwrap_err();
    assert!(e.contains("must be f32[2]"), "{e}");
    assert!(m.run(&[]).unwrap_err().contains("takes 1 inputs"));
}

/// The compiled engine's result against the reference evaluator within a tolerance (graphs
/// with float arithmetic).
fn check_close(g: &Graph, threads: usize, rtol: f64, atol: f64) -> JitModel {
    let inputs = random_inputs(g, 11).unwrap();
    let want = eval_graph(g, &inputs).unwrap();
    let mut m = JitModel::compile(
        g,
        &JitOptions {
            threads,
            ..Default::default()
        },
    )
    .unwrap();
    let inputs: Vec<_> = inputs.into_iter().map(Option::unwrap).collect();
    let got = m.run(&inputs).unwrap();
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        compare(a, b, rtol, atol).unwrap_or_else(|e| panic!("output {i}: {e}"));
    }
    m
}

#[test]
fn attention_runs_as_kernels() {
    // The Attention the fusion makes (K given as the Transpose of Kᵀ), with and without a
    // mask: decomposed into MatMul, Mul, (fused) Softmax, MatMul, each compiled.
    for mask in [true, false] {
        let (sig, args) = if mask {
            (", %m: f32[1,1,1,7]", ", %m")
        } else {
            ("", "")
        };
        let text = format!(
            r#"graph "g" (%q: f32[1,3,5,8], %kt: f32[1,3,8,7], %v: f32[1,3,7,8]{sig}) {{
  %k: f32[1,3,7,8] = transpose {{perm: [0, 1, 3, 2]}} (%kt)
  %o: f32[1,3,5,8] = attention {{scale: 0.35}} (%q, %k, %v{args})
  return %o
}}
"#
        );
        let g = parse(&text).unwrap();
        let m = check_close(&g, 2, 1e-5, 1e-6);
        assert!(
            m.program.fallbacks.is_empty(),
            "mask {mask}: {:?}",
            m.program.fallbacks
        );
        // MatMul, Mul, Softmax, MatMul: the Transpose of K cancelled against Kᵀ.
        assert_eq!(m.program.steps.len(), 4, "mask {mask}");
    }
}

/// Parses `text`, types it (outputs declared `[..]` take their inferred shapes), compiles it
/// with `threads`, checks it against the reference evaluator within the tolerance, and checks
/// that every node ran a kernel (no reference fallback).
pub(crate) fn compiled_without_fallback(
    text: &str,
    threads: usize,
    rtol: f64,
    atol: f64,
) -> JitModel {
    let mut g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    graphc::passes::infer::infer_graph(&mut g).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let m = check_close(&g, threads, rtol, atol);
    assert!(
        m.program.fallbacks.is_empty(),
        "{text}: {:?}",
        m.program.fallbacks
    );
    m
}

/// Attention forms beyond the fusion's: 3-D inputs with grouped-query heads, a KV cache,
/// causal masking, a mask shorter than the keys, softcap and each QK output mode; a boolean
/// mask; nonpad_kv_seqlen as an input. Each is decomposed into compiled kernels (no fallback)
/// and matches the reference evaluator.
#[test]
fn attention_forms_run_as_kernels() {
    let gqa_past = |mode: i64, softcap: &str| {
        format!(
            r#"graph "g" (%q: f32[2,3,12], %k: f32[2,3,4], %v: f32[2,3,6], %m: f32[3,4], %pk: f32[2,2,2,2], %pv: f32[2,2,2,3]) {{
  %y: f32[2,3,18], %pk2: f32[2,2,5,2], %pv2: f32[2,2,5,3], %qk: f32[2,6,3,5] = attention {{is_causal: 1, kv_num_heads: 2, q_num_heads: 6, qk_matmul_output_mode: {mode}{softcap}}} (%q, %k, %v, %m, %pk, %pv)
  return %y, %pk2, %pv2, %qk
}}
"#
        )
    };
    // Grouped-query heads with a KV cache and causal masking, each QK output mode, with and
    // without softcap.
    let mut cases: Vec<String> = (0..=3)
        .flat_map(|mode| [gqa_past(mode, ""), gqa_past(mode, ", softcap: 2.5")])
        .collect();
    // A bool mask, 4-D inputs, the default scale. Every query row keeps at least one key (the
    // diagonal), so no row is all -inf.
    cases.push(
        r#"graph "g" (%q: f32[1,2,4,3], %k: f32[1,2,5,3], %v: f32[1,2,5,7]) {
  %m: bool[4,5] = constant {value: bool[4,5] [true, false, false, true, false, false, true, false, false, true, false, false, true, false, false, true, false, false, true, false]}
  %y: f32[1,2,4,7] = attention (%q, %k, %v, %m)
  return %y
}
"#
        .into(),
    );
    // nonpad_kv_seqlen at run time (through a copy, so not a compile-time constant), 4-D mask.
    cases.push(
        r#"graph "g" (%q: f32[3,2,1,4], %k: f32[3,2,6,4], %v: f32[3,2,6,4], %m: f32[3,2,1,6]) {
  %n0: i64[3] = constant {value: i64[3] [6, 1, 4]}
  %n: i64[3] = identity (%n0)
  %y: f32[3,2,1,4] = attention {scale: 0.5} (%q, %k, %v, %m, _, _, %n)
  return %y
}
"#
        .into(),
    );
    for text in cases {
        compiled_without_fallback(&text, 2, 1e-5, 1e-6);
    }
}

/// A fused MatMul whose bias the GEMM epilogue cannot take (a [m, n] matrix broadcast over
/// the batch, as a causal mask is) runs as its standard ops, each compiled.
#[test]
fn fused_mat_mul_with_a_broadcast_bias_is_unfused() {
    let m = compiled_without_fallback(
        r#"graph "g" (%a: f32[2,3,5,7], %b: f32[2,3,7,6], %m: f32[5,6]) {
  %y: f32[2,3,5,6] = fused_mat_mul {activation: "relu"} (%a, %b, %m)
  return %y
}
"#,
        2,
        1e-5,
        1e-6,
    );
    // MatMul, Add, Relu.
    assert_eq!(m.program.steps.len(), 3);
}

/// ConvTranspose runs as a Conv over the zero-upsampled input (GEMM kernels): strides, pads
/// that crop, output_padding, SAME padding, groups, dilations, bias; weights constant (packed
/// at compile time) and given at run time.
#[test]
fn conv_transpose_runs_as_conv_kernels() {
    // (x shape, w shape, attributes)
    let cases = [
        ("[1,2,3,4]", "[2,3,3,3]", "strides: [2, 2]"),
        (
            "[2,3,5,4]",
            "[3,2,2,3]",
            "pads: [1, 0, 2, 1], strides: [3, 2]",
        ),
        (
            "[1,2,3,2]",
            "[2,3,2,3]",
            "output_padding: [1, 0], pads: [0, 1, 1, 0], strides: [2, 2]",
        ),
        ("[1,4,5,5]", "[4,1,3,3]", "group: 4, pads: [1, 1, 1, 1]"),
        (
            "[1,4,3,3]",
            "[4,3,3,3]",
            "dilations: [2, 2], group: 2, strides: [2, 1]",
        ),
        (
            "[1,2,4,3]",
            "[2,2,3,3]",
            "auto_pad: \"SAME_UPPER\", strides: [2, 2]",
        ),
        ("[1,3,7]", "[3,2,4]", "pads: [3, 2], strides: [2]"),
        (
            "[1,1,3,3]",
            "[1,1,1,1]",
            "pads: [1, 1, 1, 1], strides: [3, 3]",
        ),
    ];
    let mut seed = 12345u64;
    let mut value = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 40) % 17) as f32 / 8.0 - 1.0
    };
    for (xs, ws, attrs) in cases {
        let dims = |s: &str| -> Vec<usize> {
            s.trim_matches(['[', ']'])
                .split(',')
                .map(|d| d.parse().unwrap())
                .collect()
        };
        let wd = dims(ws);
        let m = wd[1]
            * attrs
                .split("group: ")
                .nth(1)
                .map_or(1, |g| g[..1].parse::<usize>().unwrap());
        for constant in [true, false] {
            let n: usize = wd.iter().product();
            let wdecl = if constant {
                let vals: Vec<String> = (0..n).map(|_| format!("{}", value())).collect();
                format!(
                    "  %w: f32{ws} = constant {{value: f32{ws} [{}]}}\n",
                    vals.join(", ")
                )
            } else {
                String::new()
            };
            let winput = if constant {
                String::new()
            } else {
                format!(", %w: f32{ws}")
            };
            // The output's type comes from inference.
            let text = format!(
                "graph \"g\" (%x: f32{xs}{winput}, %b: f32[{m}]) {{\n{wdecl}  %y: f32[..] = conv_transpose {{{attrs}}} (%x, %w, %b)\n  return %y\n}}\n"
            );
            compiled_without_fallback(&text, 1, 1e-5, 1e-5);
        }
    }
}

/// RotaryEmbedding runs as Gather, Slice, elementwise and Concat kernels: 4-D and 3-D input,
/// with and without position ids, halves or interleaved pairs, all lanes or a prefix.
#[test]
fn rotary_embedding_runs_as_kernels() {
    for (x, attrs, with_pos) in [
        ("[2,4,3,8]", "", true),
        ("[2,3,32]", "num_heads: 4", true),
        ("[2,4,3,8]", "interleaved: 1", false),
        ("[1,2,5,10]", "rotary_embedding_dim: 6", true),
        (
            "[1,5,12]",
            "interleaved: 1, num_heads: 2, rotary_embedding_dim: 4",
            true,
        ),
    ] {
        let dims: Vec<usize> = x
            .trim_matches(['[', ']'])
            .split(',')
            .map(|d| d.parse().unwrap())
            .collect();
        let (b, s) = if dims.len() == 4 {
            (dims[0], dims[2])
        } else {
            (dims[0], dims[1])
        };
        let rd = attrs
            .split("rotary_embedding_dim: ")
            .nth(1)
            .map_or(if dims.len() == 4 { dims[3] } else { 32 / 4 }, |r| {
                r.parse().unwrap()
            });
        let half = rd / 2;
        let (cache, pos_decl, pos_arg) = if with_pos {
            // Positions are data: they come through a copy so they are not constants.
            let ids: Vec<String> = (0..b * s).map(|i| ((i * 7) % 9).to_string()).collect();
            (
                format!("[9,{half}]"),
                format!(
                    "  %p0: i64[{b},{s}] = constant {{value: i64[{b},{s}] [{}]}}\n  %p: i64[{b},{s}] = identity (%p0)\n",
                    ids.join(", ")
                ),
                ", %p",
            )
        } else {
            (format!("[{b},{s},{half}]"), String::new(), "")
        };
        let text = format!(
            "graph \"g\" (%x: f32{x}, %c: f32{cache}, %s: f32{cache}) {{\n{pos_decl}  %y: f32{x} = rotary_embedding {{{attrs}}} (%x, %c, %s{pos_arg})\n  return %y\n}}\n"
        );
        compiled_without_fallback(&text, 1, 1e-5, 1e-6);
    }
}

/// LSTM, GRU and RNN unrolled into compiled kernels: directions, layouts, initial states,
/// peepholes, clip, input_forget, linear_before_reset, other activations, and
/// sequence_lens (forward) given at run time.
#[test]
fn recurrent_ops_run_as_kernels() {
    // (op, gates, attributes, seq, batch, input, hidden, dirs, layout, extras)
    let cases = [
        (
            "lstm",
            4,
            "direction: \"bidirectional\"",
            3,
            2,
            5,
            3,
            2,
            0,
            "b,h0,c0,p",
        ),
        (
            "lstm",
            4,
            "clip: 0.7, input_forget: 1",
            4,
            3,
            2,
            5,
            1,
            0,
            "b",
        ),
        (
            "lstm",
            4,
            "layout: 1, direction: \"reverse\"",
            2,
            3,
            4,
            2,
            1,
            1,
            "h0,c0",
        ),
        ("lstm", 4, "", 4, 3, 3, 2, 1, 0, "b,lens"),
        (
            "gru",
            3,
            "direction: \"bidirectional\"",
            3,
            2,
            4,
            3,
            2,
            0,
            "b,h0",
        ),
        (
            "gru",
            3,
            "linear_before_reset: 1, layout: 1",
            5,
            2,
            3,
            4,
            1,
            1,
            "b",
        ),
        (
            "gru",
            3,
            "activations: [\"Relu\", \"Sigmoid\"], clip: 1.5",
            2,
            1,
            3,
            3,
            1,
            0,
            "",
        ),
        (
            "rnn",
            1,
            "activations: [\"Relu\"], direction: \"reverse\"",
            4,
            2,
            3,
            4,
            1,
            0,
            "b,h0",
        ),
        ("rnn", 1, "", 1, 1, 2, 3, 1, 0, "lens"),
    ];
    for (op, gates, attrs, seq, batch, input, hidden, dirs, layout, extras) in cases {
        let gh = gates * hidden;
        let x = if layout == 1 {
            format!("[{batch},{seq},{input}]")
        } else {
            format!("[{seq},{batch},{input}]")
        };
        let state = if layout == 1 {
            format!("[{batch},{dirs},{hidden}]")
        } else {
            format!("[{dirs},{batch},{hidden}]")
        };
        let has = |e: &str| extras.split(',').any(|x| x == e);
        let mut ins = vec![
            format!("%x: f32{x}"),
            format!("%w: f32[{dirs},{gh},{input}]"),
            format!("%r: f32[{dirs},{gh},{hidden}]"),
        ];
        let mut args = vec!["%x", "%w", "%r"];
        let mut body = String::new();
        for (name, decl) in [
            ("b", format!("%b: f32[{dirs},{}]", 2 * gh)),
            ("lens", String::new()),
            ("h0", format!("%h0: f32{state}")),
            ("c0", format!("%c0: f32{state}")),
            ("p", format!("%p: f32[{dirs},{}]", 3 * hidden)),
        ] {
            if name == "lens" {
                if has("lens") {
                    // Lengths are data: through a copy, so not constants.
                    let v: Vec<String> = (0..batch)
                        .map(|i| ((i * 2) % seq + 1).to_string())
                        .collect();
                    body.push_str(&format!(
                        "  %l0: i32[{batch}] = constant {{value: i32[{batch}] [{}]}}\n  %lens: i32[{batch}] = identity (%l0)\n",
                        v.join(", ")
                    ));
                    args.push("%lens");
                } else {
                    args.push("_");
                }
                continue;
            }
            if has(name) {
                ins.push(decl);
                args.push(match name {
                    "b" => "%b",
                    "h0" => "%h0",
                    "c0" => "%c0",
                    _ => "%p",
                });
            } else {
                args.push("_");
            }
        }
        while args.last() == Some(&"_") {
            args.pop();
        }
        let outs = if op == "lstm" {
            "%y: f32[..], %yh: f32[..], %yc: f32[..]"
        } else {
            "%y: f32[..], %yh: f32[..]"
        };
        let rets = if op == "lstm" {
            "%y, %yh, %yc"
        } else {
            "%y, %yh"
        };
        let sep = if attrs.is_empty() { "" } else { ", " };
        let text = format!(
            "graph \"g\" ({}) {{\n{body}  {outs} = {op} {{hidden_size: {hidden}{sep}{attrs}}} ({})\n  return {rets}\n}}\n",
            ins.join(", "),
            args.join(", ")
        );
        compiled_without_fallback(&text, 1, 1e-5, 1e-6);
    }
}

/// QuantizeLinear and DequantizeLinear as Cast and elementwise kernels: per tensor and per
/// axis, 8- and 16-bit types, with and without zero point; ties, saturation and NaN.
#[test]
fn quantize_and_dequantize_run_as_kernels() {
    let cases = [
        // Ties round to even, values saturate, NaN becomes 0.
        r#"graph "g" () {
  %x0: f32[8] = constant {value: f32[8] [0.5, 1.5, 2.5, -0.5, 300, -300, nan, 0.25]}
  %x: f32[8] = identity (%x0)
  %s: f32[] = constant {value: f32[] [0.5]}
  %z: u8[] = constant {value: u8[] [3]}
  %y: u8[8] = quantize_linear (%x, %s, %z)
  return %y
}
"#
        .to_string(),
        r#"graph "g" (%x: f32[2,3,5]) {
  %s: f32[3] = constant {value: f32[3] [0.01, 0.02, 0.003]}
  %z: i8[3] = constant {value: i8[3] [-3, 0, 7]}
  %y: i8[2,3,5] = quantize_linear {axis: 1} (%x, %s, %z)
  return %y
}
"#
        .to_string(),
        r#"graph "g" (%x: f32[4,3]) {
  %s: f32[3] = constant {value: f32[3] [0.001, 0.0002, 0.5]}
  %y: i16[4,3] = quantize_linear {axis: -1, output_dtype: 5} (%x, %s)
  return %y
}
"#
        .to_string(),
        r#"graph "g" (%x: u8[2,3,5], %s: f32[3], %z: u8[3]) {
  %y: f32[2,3,5] = dequantize_linear (%x, %s, %z)
  return %y
}
"#
        .to_string(),
        r#"graph "g" (%x: i16[7], %s: f32[]) {
  %y: f32[7] = dequantize_linear (%x, %s)
  return %y
}
"#
        .to_string(),
        // Blocked scales: 7 = 3 + 3 + 1 along axis 1; 5 = 2 + 2 + 1 along axis 0.
        r#"graph "g" (%x: f32[2,7]) {
  %s: f32[2,3] = constant {value: f32[2,3] [0.01, 0.02, 0.5, 0.003, 0.04, 0.1]}
  %z: u8[2,3] = constant {value: u8[2,3] [128, 0, 10, 255, 3, 77]}
  %y: u8[2,7] = quantize_linear {axis: 1, block_size: 3} (%x, %s, %z)
  return %y
}
"#
        .to_string(),
        r#"graph "g" (%x: i8[5,3], %s: f32[3,3], %z: i8[3,3]) {
  %y: f32[5,3] = dequantize_linear {axis: 0, block_size: 2} (%x, %s, %z)
  return %y
}
"#
        .to_string(),
    ];
    for text in cases {
        // Quantized outputs are integers: exact; dequantized ones within one rounding.
        compiled_without_fallback(&text, 1, 1e-7, 0.0);
    }
}

/// 1-D MaxPool and AveragePool run as the 2-D pool kernels over a height of 1.
#[test]
fn one_dimensional_pools_run_as_kernels() {
    for (op, attrs, x) in [
        ("max_pool", "kernel_shape: [2]", "[1,3,32]"),
        (
            "max_pool",
            "kernel_shape: [3], pads: [1, 1], strides: [2]",
            "[2,4,9]",
        ),
        (
            "max_pool",
            "ceil_mode: 1, dilations: [2], kernel_shape: [2], strides: [3]",
            "[1,1,11]",
        ),
        ("average_pool", "kernel_shape: [2]", "[1,3,32]"),
        (
            "average_pool",
            "ceil_mode: 1, count_include_pad: 1, kernel_shape: [3], pads: [2, 1], strides: [2]",
            "[1,2,10]",
        ),
        (
            "average_pool",
            "auto_pad: \"SAME_UPPER\", kernel_shape: [4], strides: [3]",
            "[3,2,13]",
        ),
    ] {
        // The output's shape comes from inference.
        let text = format!(
            "graph \"g\" (%x: f32{x}) {{\n  %y: f32[..] = {op} {{{attrs}}} (%x)\n  return %y\n}}\n"
        );
        compiled_without_fallback(&text, 1, 1e-6, 1e-7);
    }
}

/// DepthToSpace (both modes) and SpaceToDepth as copies, GroupNormalization as a
/// LayerNormalization per group: compiled, matching the reference.
#[test]
fn block_moves_and_group_norm_run_as_kernels() {
    for node in [
        "%y: f32[2,2,6,9] = depth_to_space {blocksize: 3} (%x)",
        "%y: f32[2,2,6,9] = depth_to_space {blocksize: 3, mode: \"CRD\"} (%x)",
    ] {
        let text = format!("graph \"g\" (%x: f32[2,18,2,3]) {{\n  {node}\n  return %y\n}}\n");
        compiled_without_fallback(&text, 1, 0.0, 0.0);
    }
    let text = "graph \"g\" (%x: i64[1,3,4,6]) {\n  %y: i64[1,12,2,3] = space_to_depth {blocksize: 2} (%x)\n  return %y\n}\n";
    compiled_without_fallback(&text, 1, 0.0, 0.0);
    for (x, groups) in [("[2,6,5,3]", 3), ("[1,4,7]", 4), ("[3,8,2,2]", 1)] {
        let c: usize = x
            .trim_matches(['[', ']'])
            .split(',')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let text = format!(
            "graph \"g\" (%x: f32{x}, %s: f32[{c}], %b: f32[{c}]) {{\n  %y: f32{x} = group_normalization {{epsilon: 0.001, num_groups: {groups}}} (%x, %s, %b)\n  return %y\n}}\n"
        );
        compiled_without_fallback(&text, 1, 1e-4, 1e-5);
    }
}

/// LpPool (p = 1, 2, 3; 1-D, 2-D and 3-D) as AveragePool of |x|^p scaled by the window
/// size, then ^(1/p).
#[test]
fn lp_pool_runs_as_kernels() {
    for (x, attrs) in [
        ("[2,3,7,6]", "kernel_shape: [2, 2], p: 1"),
        (
            "[2,3,7,6]",
            "kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2]",
        ),
        (
            "[2,3,7,6]",
            "auto_pad: \"SAME_UPPER\", kernel_shape: [2, 3], p: 3",
        ),
        ("[2,3,7,6]", "dilations: [2, 1], kernel_shape: [2, 2]"),
        ("[2,3,13]", "kernel_shape: [3], pads: [1, 2], strides: [2]"),
        ("[1,2,9]", "kernel_shape: [2], p: 3, dilations: [3]"),
        ("[1,2,5,6,7]", "kernel_shape: [2, 2, 2]"),
        (
            "[2,1,6,5,7]",
            "kernel_shape: [3, 2, 3], pads: [1, 0, 1, 1, 1, 0], strides: [2, 1, 2], p: 1",
        ),
    ] {
        let text = format!(
            "graph \"g\" (%x: f32{x}) {{\n  %y: f32[..] = lp_pool {{{attrs}}} (%x)\n  return %y\n}}\n"
        );
        compiled_without_fallback(&text, 1, 1e-5, 1e-6);
    }
}

/// N-D pools, MaxPool's Indices, u8 MaxPool, MaxUnpool and Col2Im with constant shape
/// inputs, and a 3-D Conv with a fused bias and Relu run as kernels through the whole
/// pipeline.
#[test]
fn n_d_pools_unpool_and_conv_3d_run_as_kernels() {
    let cases = [
        "graph \"g\" (%x: f32[1,2,6,7,5]) {\n  %y: f32[..] = max_pool {kernel_shape: [3, 2, 2], pads: [1, 0, 1, 1, 1, 0], strides: [2, 2, 1], ceil_mode: 1} (%x)\n  return %y\n}\n".to_string(),
        "graph \"g\" (%x: f32[2,3,5,6,7]) {\n  %y: f32[..] = average_pool {kernel_shape: [2, 3, 2], dilations: [2, 1, 2], pads: [1, 1, 1, 1, 1, 1], count_include_pad: 1} (%x)\n  return %y\n}\n".to_string(),
        "graph \"g\" (%x: f32[1,3,7,6]) {\n  %y: f32[..], %i: i64[..] = max_pool {kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], storage_order: 1} (%x)\n  return %y, %i\n}\n".to_string(),
        "graph \"g\" (%x: u8[1,2,9,9]) {\n  %y: u8[..] = max_pool {kernel_shape: [3, 3], strides: [2, 2]} (%x)\n  return %y\n}\n".to_string(),
        "graph \"g\" (%x: f32[1,1,2,2]) {\n  %i: i64[1,1,2,2] = constant {value: i64[1,1,2,2] [5, 2, 13, 5]}\n  %s: i64[4] = constant {value: i64[4] [1, 1, 5, 5]}\n  %y: f32[..] = max_unpool {kernel_shape: [2, 2], strides: [2, 2]} (%x, %i, %s)\n  return %y\n}\n".to_string(),
        "graph \"g\" (%x: f32[2,8,12]) {\n  %im: i64[2] = constant {value: i64[2] [4, 5]}\n  %bl: i64[2] = constant {value: i64[2] [2, 2]}\n  %y: f32[..] = col2im {strides: [2, 1], pads: [1, 0, 1, 0]} (%x, %im, %bl)\n  return %y\n}\n".to_string(),
        "graph \"g\" (%x: f32[1,3,5,6,7], %w: f32[4,3,3,3,3], %b: f32[4]) {\n  %c: f32[1,4,5,6,7] = conv {pads: [1, 1, 1, 1, 1, 1]} (%x, %w, %b)\n  %y: f32[1,4,5,6,7] = relu (%c)\n  return %y\n}\n".to_string(),
    ];
    for text in cases {
        compiled_without_fallback(&text, 2, 1e-5, 1e-5);
    }
}

/// A 3-D ConvTranspose runs as a 3-D Conv on the GEMM kernels (the N-D im2col table).
#[test]
fn conv_transpose_3d_runs_as_kernels() {
    for (x, w, attrs) in [
        ("[1,2,3,4,3]", "[2,3,3,3,3]", "strides: [1, 1, 1]"),
        (
            "[2,2,3,2,4]",
            "[2,2,2,3,2]",
            "strides: [2, 1, 2], pads: [1, 0, 0, 1, 1, 0]",
        ),
        (
            "[1,4,2,3,3]",
            "[4,1,3,2,2]",
            "group: 2, dilations: [1, 2, 1]",
        ),
    ] {
        let text = format!(
            "graph \"g\" (%x: f32{x}, %w: f32{w}) {{\n  %y: f32[..] = conv_transpose {{{attrs}}} (%x, %w)\n  return %y\n}}\n"
        );
        compiled_without_fallback(&text, 1, 1e-5, 1e-5);
    }
}

/// Softmax and LogSoftmax along an inner axis run between two Transposes.
#[test]
fn softmax_along_inner_axes_runs_as_kernels() {
    for (op, axis) in [
        ("softmax", 0),
        ("softmax", 1),
        ("log_softmax", -3),
        ("log_softmax", 1),
    ] {
        let text = format!(
            "graph \"g\" (%x: f32[3,5,7]) {{\n  %y: f32[3,5,7] = {op} {{axis: {axis}}} (%x)\n  return %y\n}}\n"
        );
        compiled_without_fallback(&text, 1, 1e-5, 1e-6);
    }
}

/// Gemms the GEMM kernel declines (alpha with a run-time B, beta, scalar C) run as
/// Transpose, MatMul, Mul and Add kernels.
#[test]
fn gemm_with_alpha_beta_runs_as_kernels() {
    for (attrs, a, b, c) in [
        ("alpha: 0.5", "[3,5]", "[5,4]", Some("[4]")),
        ("beta: 2.0", "[3,5]", "[5,4]", Some("[3,4]")),
        (
            "alpha: 0.25, beta: 0.35, trans_a: 1, trans_b: 1",
            "[5,3]",
            "[4,5]",
            Some("[1,4]"),
        ),
        ("alpha: 2.0", "[2,7]", "[7,6]", Some("[]")),
        ("alpha: 3.0, trans_b: 1", "[2,7]", "[6,7]", None),
    ] {
        let (cdecl, carg) = match c {
            Some(c) => (format!(", %c: f32{c}"), ", %c"),
            None => (String::new(), ""),
        };
        let text = format!(
            "graph \"g\" (%a: f32{a}, %b: f32{b}{cdecl}) {{\n  %y: f32[..] = gemm {{{attrs}}} (%a, %b{carg})\n  return %y\n}}\n"
        );
        compiled_without_fallback(&text, 1, 1e-5, 1e-6);
    }
}

/// DynamicQuantizeLinear as reductions and elementwise kernels: mixed signs, all negative,
/// all zero (scale 0), a NaN (ignored by min/max), and random data.
#[test]
fn dynamic_quantize_runs_as_kernels() {
    let mut cases: Vec<String> = [
        "[1.5, -2.25, 0.0, 7.0, -0.5, 3.3]",
        "[-1.0, -2.0, -3.5, -0.25, -7.0, -1.5]",
        "[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]",
        "[1.0, nan, -2.0, 4.0, 0.5, -0.75]",
    ]
    .iter()
    .map(|v| {
        format!(
            "graph \"g\" () {{\n  %x0: f32[2,3] = constant {{value: f32[2,3] {v}}}\n  %x: f32[2,3] = identity (%x0)\n  %y: u8[2,3], %s: f32[], %z: u8[] = dynamic_quantize_linear (%x)\n  return %y, %s, %z\n}}\n"
        )
    })
    .collect();
    cases.push(
        "graph \"g\" (%x: f32[4,33]) {\n  %y: u8[4,33], %s: f32[], %z: u8[] = dynamic_quantize_linear (%x)\n  return %y, %s, %z\n}\n".into(),
    );
    for text in cases {
        compiled_without_fallback(&text, 1, 0.0, 0.0);
    }
}

/// If with a run-time condition (both branches inlined, outputs picked by Where; run for
/// both values), Scan with reversed and non-leading axes, and Loop with a constant trip
/// count: each inlined into compiled kernels (no fallback) and matching the reference.
#[test]
fn control_flow_is_inlined_into_kernels() {
    let if_graph = r#"graph "g" (%c: bool[], %x: f32[3,5]) {
  %y: f32[3,5], %z: f32[5] = if {
    then_branch: graph "then" (%a: f32[3,5]) {
      %t: f32[3,5] = tanh (%a)
      %s: i64[1] = constant {value: i64[1] [0]}
      %r: f32[5] = reduce_sum {keepdims: 0} (%a, %s)
      return %t, %r
    },
    else_branch: graph "else" (%b: f32[3,5]) {
      %e: f32[3,5] = mul (%b, %b)
      %s: i64[1] = constant {value: i64[1] [0]}
      %r: f32[5] = reduce_max {keepdims: 0} (%b, %s)
      return %e, %r
    }
  } (%c, %x)
  return %y, %z
}
"#;
    let g = parse(if_graph).unwrap();
    for cond in [true, false] {
        let x = random_inputs(&g, 3).unwrap().pop().unwrap();
        let inputs = vec![Some(graphc::passes::ir::Tensor::scalar(cond)), x];
        let want = eval_graph(&g, &inputs).unwrap();
        let mut m = JitModel::compile(&g, &JitOptions::default()).unwrap();
        assert!(m.program.fallbacks.is_empty(), "{:?}", m.program.fallbacks);
        let ins: Vec<_> = inputs.into_iter().map(Option::unwrap).collect();
        let got = m.run(&ins).unwrap();
        for (a, b) in got.iter().zip(&want) {
            compare(a, b, 1e-6, 1e-6).unwrap();
        }
    }
    // Scan: a running sum over axis 1 of one input read backwards, the step outputs stacked
    // along axis 1 in reverse, a second scan input along axis 0, and a capture.
    compiled_without_fallback(
        r#"graph "g" (%s0: f32[2], %x: f32[2,7], %w: f32[7,2], %k: f32[2]) {
  %s: f32[2], %ys: f32[2,7], %zs: f32[7,2] = scan {
    body: graph "body" (%acc: f32[2], %xi: f32[2], %wi: f32[2], %kk: f32[2]) {
      %a1: f32[2] = add (%acc, %xi)
      %a2: f32[2] = mul (%a1, %kk)
      %o: f32[2] = sub (%a2, %wi)
      %o2: f32[2] = identity (%a2)
      return %a2, %o, %o2
    },
    num_scan_inputs: 2,
    num_captures: 1,
    scan_input_axes: [1, 0],
    scan_input_directions: [1, 0],
    scan_output_axes: [1, 0],
    scan_output_directions: [1, 0]
  } (%s0, %x, %w, %k)
  return %s, %ys, %zs
}
"#,
        1,
        1e-5,
        1e-6,
    );
    // Loop: 4 iterations, the iteration number selecting a row (index arithmetic folded).
    compiled_without_fallback(
        r#"graph "g" (%y0: f32[3], %x: f32[4,3]) {
  %m: i64[] = constant {value: i64[] [4]}
  %c: bool[] = constant {value: bool[] [true]}
  %y: f32[3], %rows: f32[4,3] = loop {
    body: graph "body" (%i: i64[], %ci: bool[], %acc: f32[3], %xx: f32[4,3]) {
      %co: bool[] = identity (%ci)
      %z: i64[1] = constant {value: i64[1] [0]}
      %iu: i64[1] = unsqueeze (%i, %z)
      %row: f32[1,3] = gather {axis: 0} (%xx, %iu)
      %three: i64[1] = constant {value: i64[1] [3]}
      %r: f32[3] = reshape (%row, %three)
      %next: f32[3] = add (%acc, %r)
      %out: f32[3] = sigmoid (%next)
      return %co, %next, %out
    },
    num_captures: 1
  } (%m, %c, %y0, %x)
  return %y, %rows
}
"#,
        1,
        1e-5,
        1e-6,
    );
}

/// Half-precision MatMul, Softmax, FusedSoftmax and Attention, which the reference computes
/// wider and rounds once, compile as their f32 forms between Casts (no fallback); results
/// within one f16 rounding of the reference.
#[test]
fn half_precision_ops_run_widened() {
    for dt in ["f16", "bf16"] {
        let (rtol, atol) = if dt == "f16" {
            (1e-3, 1e-3)
        } else {
            (8e-3, 8e-3)
        };
        compiled_without_fallback(
            &format!(
                r#"graph "g" (%a: {dt}[2,3,7], %b: {dt}[7,5], %m: {dt}[2,3,5]) {{
  %p: {dt}[2,3,5] = mat_mul (%a, %b)
  %s: {dt}[2,3,5] = softmax {{axis: -1}} (%p)
  %f: {dt}[2,3,5] = fused_softmax {{axis: -1}} (%p, %m)
  %l: {dt}[2,3,5] = log_softmax {{axis: 1}} (%p)
  return %s, %f, %l
}}
"#
            ),
            1,
            rtol,
            atol,
        );
    }
    compiled_without_fallback(
        r#"graph "g" (%q: f16[2,4,3,8], %k: f16[2,2,5,8], %v: f16[2,2,5,6]) {
  %y: f16[2,4,3,6] = attention {is_causal: 1} (%q, %k, %v)
  return %y
}
"#,
        1,
        1e-3,
        1e-3,
    );
}
