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
    // TopK has no kernel: it runs with the reference evaluator between two copies, reading
    // a constant and writing a buffer of the arena.
    let g = parse(
        r#"graph "g" (%x: f32[3,4]) {
  %s: i64[1] = constant {value: i64[1] [12]}
  %a: f32[12] = reshape (%x, %s)
  %k: i64[1] = constant {value: i64[1] [12]}
  %b: f32[12], %i: i64[12] = top_k (%a, %k)
  %t: i64[2] = constant {value: i64[2] [4, 3]}
  %c: f32[4,3] = reshape (%b, %t)
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
