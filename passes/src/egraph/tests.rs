//! Tests of the e-graph core and the algebra rules: round trips with no rules, and one
//! fixture per rule with a snapshot of the extracted graph and a numeric check.

use super::*;
use crate::eval::eval_graph;
use crate::eval::random_inputs as seeded;
use crate::ir::text::{parse, print};
use crate::ir::Tensor;

/// Seeded pseudo-random values in [-2, 2) for the inputs without a default.
fn random_inputs(g: &Graph, seed: u64) -> Vec<Option<Tensor>> {
    seeded(g, seed).expect("fixture inputs have static shapes")
}

/// Asserts `before` and `after` compute the same outputs (within `rtol`) on seeded inputs.
fn assert_same_values(before: &Graph, after: &Graph, rtol: f64) {
    for seed in 0..4 {
        let xs = random_inputs(before, seed);
        let a = eval_graph(before, &xs).unwrap();
        let b = eval_graph(after, &xs).unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.dtype(), y.dtype());
            assert_eq!(x.shape(), y.shape());
            for (p, q) in x.to_f64_vec().iter().zip(y.to_f64_vec()) {
                let ok = (p.is_nan() && q.is_nan())
                    || (p - q).abs() <= rtol * p.abs().max(q.abs()) + 1e-12;
                assert!(
                    ok,
                    "seed {seed}: {p} vs {q}\nbefore:\n{}\nafter:\n{}",
                    print(before),
                    print(after)
                );
            }
        }
    }
}

fn fixture(text: &str) -> Graph {
    let mut g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    crate::infer::infer_graph(&mut g).unwrap();
    g
}

/// Optimizes `text` with `rules`, checks values, and returns "input / output / report".
fn check(text: &str, rules: &[Rewrite]) -> (Graph, Report, String) {
    let g = fixture(text);
    let (out, report) = optimize(&g, rules, &RunnerConfig::default()).unwrap();
    assert_same_values(&g, &out, 0.0);
    let shown = format!(
        "{}\n---\n{}\n{}\n",
        print(&g).trim_end(),
        print(&out).trim_end(),
        report.summary()
    );
    (out, report, shown)
}

fn snapshot(name: &str, text: &str) {
    let (_, _, shown) = check(text, &crate::rules::algebra::rules());
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(format!("rewrite__{name}"), shown);
    });
}

fn ops(g: &Graph) -> Vec<&'static str> {
    g.nodes()
        .filter(|(_, n)| !matches!(n.op, Op::Input { .. }))
        .map(|(_, n)| n.op.name())
        .collect()
}

use crate::ir::Op;

#[test]
fn round_trip_without_rules_keeps_values_and_signature() {
    let texts = [
        // Multi-output ops, an absent optional input in the middle, a shared value.
        r#"graph "g" (%x: f32[2,3], %w: f32[3,4]) {
  %s: i64[2] = constant {value: i64[2] [1, 2]}
  %a: f32[2,1], %b: f32[2,2] = split {axis: 1} (%x, %s)
  %mx: f32[] = constant {value: f32[] [0.5]}
  %c: f32[2,2] = clip (%b, _, %mx)
  %m: f32[2,4] = mat_mul (%x, %w)
  %r: f32[2,4] = relu (%m)
  %d: f32[2,4], %mask: bool[2,4] = dropout (%r)
  %t: f32[2,4] = add (%d, %m)
  return %t, %a as "first", %c, %mask
}
"#,
        // A ConstantOfShape that folds (weights built the way the light models build them).
        r#"graph "h" (%x: f32[1,2,4,4]) {
  %shape: i64[4] = constant {value: i64[4] [3, 2, 3, 3]}
  %w: f32[3,2,3,3] = constant_of_shape {value: f32[1] [0.25]} (%shape)
  %y: f32[1,3,2,2] = conv (%x, %w)
  %z: f32[1,3,2,2] = sigmoid (%y)
  return %z
}
"#,
        // An output that is directly an input, and an output listed twice.
        r#"graph "k" (%x: f32[3], %y: f32[3]) {
  %s: f32[3] = sub (%x, %y)
  return %x as "same", %s, %s as "again"
}
"#,
    ];
    for text in texts {
        let g = fixture(text);
        let (out, report) = optimize(&g, &[], &RunnerConfig::default()).unwrap();
        assert_eq!(report.stop_reason, "Saturated");
        assert_same_values(&g, &out, 0.0);
        let names = |g: &Graph| -> Vec<(String, String)> {
            g.inputs
                .iter()
                .map(|&i| {
                    (
                        g.node(i).outputs[0].name.clone(),
                        g.node(i).outputs[0].ty.to_string(),
                    )
                })
                .collect()
        };
        assert_eq!(names(&g), names(&out));
        let outs = |g: &Graph| -> Vec<(String, String)> {
            g.outputs
                .iter()
                .map(|o| (o.name.clone(), g.ty(o.value).to_string()))
                .collect()
        };
        assert_eq!(outs(&g), outs(&out));
    }
}

#[test]
fn constant_of_shape_weights_fold_into_a_constant() {
    let g = fixture(
        r#"graph "h" (%x: f32[1,2,4,4]) {
  %shape: i64[4] = constant {value: i64[4] [3, 2, 3, 3]}
  %w: f32[3,2,3,3] = constant_of_shape {value: f32[1] [0.25]} (%shape)
  %y: f32[1,3,2,2] = conv (%x, %w)
  return %y
}
"#,
    );
    let (out, _) = optimize(&g, &[], &RunnerConfig::default()).unwrap();
    assert_eq!(ops(&out), ["constant", "conv"]);
}

#[test]
fn huge_expand_is_not_folded() {
    // 4 values expanded to 4M elements: beyond FOLD_SMALL and 4x the inputs.
    let g = fixture(
        r#"graph "e" (%x: f32[1]) {
  %v: f32[4] = constant {value: f32[4] [1.0, 2.0, 3.0, 4.0]}
  %s: i64[2] = constant {value: i64[2] [1048576, 4]}
  %big: f32[1048576,4] = expand (%v, %s)
  %y: f32[1048576,4] = add (%big, %x)
  return %y
}
"#,
    );
    let (out, _) = optimize(&g, &[], &RunnerConfig::default()).unwrap();
    assert_eq!(ops(&out), ["constant", "constant", "expand", "add"]);
}

#[test]
fn every_rule_set_builds() {
    assert!(crate::rules::default_rules().len() >= 10);
    assert!(crate::rules::layout::rules().len() >= 7);
}

#[test]
fn runner_config_from_env_defaults() {
    // The variables are not set in tests; the defaults come back.
    if std::env::var("GRAPHC_EGG_ITER_LIMIT").is_err()
        && std::env::var("GRAPHC_EGG_NODE_LIMIT").is_err()
        && std::env::var("GRAPHC_EGG_TIME_LIMIT").is_err()
    {
        assert_eq!(RunnerConfig::from_env().unwrap(), RunnerConfig::default());
    }
}

#[test]
fn rule_identity() {
    snapshot(
        "identity",
        r#"graph "g" (%x: f32[2,3]) {
  %a: f32[2,3] = identity (%x)
  %b: f32[2,3] = relu (%a)
  %c: f32[2,3] = identity (%b)
  return %c
}
"#,
    );
}

#[test]
fn rule_dropout_inference() {
    snapshot(
        "dropout-inference",
        r#"graph "g" (%x: f32[2,3]) {
  %r: f32[] = constant {value: f32[] [0.5]}
  %t: bool[] = constant {value: bool[] [false]}
  %a: f32[2,3] = dropout (%x)
  %b: f32[2,3] = dropout (%a, %r, %t)
  %c: f32[2,3] = tanh (%b)
  %d: f32[2,3], %m: bool[2,3] = dropout (%c)
  %e: f32[2,3], %n: bool[2,3] = dropout (%d, %r)
  %f: f32[2,3] = sin (%e)
  return %d, %m, %f
}
"#,
    );
}

#[test]
fn input_defaults_fold_like_constants() {
    let g = fixture(
        r#"graph "h" (%x: f32[2], %s: i64[1] = i64[1] [2]) {
  %w: f32[2] = constant_of_shape {value: f32[1] [1.0]} (%s)
  %y: f32[2] = mul (%x, %w)
  return %y
}
"#,
    );
    let (out, report) = optimize(
        &g,
        &crate::rules::algebra::rules(),
        &RunnerConfig::default(),
    )
    .unwrap();
    assert_eq!(ops(&out), Vec::<&str>::new(), "{report}");
    assert_eq!(out.inputs.len(), 2);
    assert_same_values(&g, &out, 0.0);
}

#[test]
fn rule_cast_same_type() {
    snapshot(
        "cast-same-type",
        r#"graph "g" (%x: f32[4], %i: i64[4]) {
  %a: f32[4] = cast {to: f32} (%x)
  %b: f32[4] = cast {to: f32} (%i)
  %c: f32[4] = add (%a, %b)
  return %c
}
"#,
    );
}

#[test]
fn rule_mul_add_sub_div_neutral() {
    snapshot(
        "neutral-elements",
        r#"graph "g" (%x: f32[2,3]) {
  %one: f32[] = constant {value: f32[] [1.0]}
  %zero: f32[3] = constant {value: f32[3] [0.0, 0.0, 0.0]}
  %a: f32[2,3] = mul (%x, %one)
  %b: f32[2,3] = add (%zero, %a)
  %c: f32[2,3] = div (%b, %one)
  %d: f32[2,3] = sub (%c, %zero)
  %e: f32[2,3] = mul (%one, %d)
  %f: f32[2,3] = exp (%e)
  return %f
}
"#,
    );
}

#[test]
fn rule_mul_one_must_not_fire_when_one_broadcasts_larger() {
    let text = r#"graph "g" (%x: f32[3]) {
  %ones: f32[2,3] = constant {value: f32[2,3] [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]}
  %zero: f32[2,1] = constant {value: f32[2,1] [0.0, 0.0]}
  %half: f32[] = constant {value: f32[] [0.5]}
  %a: f32[2,3] = mul (%x, %ones)
  %b: f32[2,3] = add (%x, %zero)
  %c: f32[3] = mul (%x, %half)
  return %a, %b, %c
}
"#;
    let (out, report, shown) = check(text, &crate::rules::algebra::rules());
    assert_eq!(
        ops(&out),
        ["constant", "mul", "constant", "add", "constant", "mul"],
        "{shown}"
    );
    assert!(report.rules_fired.is_empty(), "{report}");
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("rewrite__mul-one-broadcast-negative", shown);
    });
}

#[test]
fn rule_transpose_transpose() {
    snapshot(
        "transpose-transpose",
        r#"graph "g" (%x: f32[2,3,4]) {
  %a: f32[3,4,2] = transpose {perm: [1, 2, 0]} (%x)
  %b: f32[2,3,4] = transpose {perm: [2, 0, 1]} (%a)
  %c: f32[3,2,4] = transpose {perm: [1, 0, 2]} (%b)
  %d: f32[3,4,2] = transpose {perm: [0, 2, 1]} (%c)
  %e: f32[2,4,3] = transpose (%d)
  return %b, %e
}
"#,
    );
}

#[test]
fn rule_reshape_chains() {
    snapshot(
        "reshape-reshape",
        r#"graph "g" (%x: f32[2,3,4]) {
  %s1: i64[2] = constant {value: i64[2] [6, 4]}
  %s2: i64[2] = constant {value: i64[2] [4, -1]}
  %s3: i64[3] = constant {value: i64[3] [2, 3, 4]}
  %a: f32[6,4] = reshape (%x, %s1)
  %b: f32[4,6] = reshape (%a, %s2)
  %c: f32[2,3,4] = reshape (%b, %s3)
  %d: f32[2,3,4] = neg (%c)
  return %b, %d
}
"#,
    );
}

#[test]
fn rule_squeeze_unsqueeze() {
    snapshot(
        "squeeze-unsqueeze",
        r#"graph "g" (%x: f32[2,3]) {
  %ax: i64[1] = constant {value: i64[1] [1]}
  %neg: i64[1] = constant {value: i64[1] [-2]}
  %a: f32[2,1,3] = unsqueeze (%x, %ax)
  %b: f32[2,3] = squeeze (%a, %neg)
  %c: f32[2,3] = abs (%b)
  %d: f32[2,1,3] = unsqueeze (%c, %ax)
  %e: f32[2,3] = squeeze (%d)
  return %e
}
"#,
    );
}
