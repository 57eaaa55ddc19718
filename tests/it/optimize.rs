//! The optimization pipeline on the light model zoo: every model optimized by the default
//! pipeline computes what the imported model computes (reference evaluator, rtol 1e-4), and
//! no pass's e-graph outgrows the runner's limits (DenseNet-121 and Inception v2 are the
//! largest).

use std::time::Instant;

use graphc::passes::egraph::RunnerConfig;
use graphc::passes::eval::eval_graph;
use graphc::passes::ir::{Op, Tensor};
use graphc::passes::pipeline::Pipeline;

use crate::support::compare;

#[test]
fn light_models_optimized_match_unoptimized() {
    let models = crate::support::light_models();
    let cfg = RunnerConfig::from_env().unwrap();
    let pipeline = Pipeline::default();
    let mut failures = Vec::new();
    for model in &models {
        let stem = model.file_stem().unwrap().to_string_lossy().into_owned();
        let g = graphc::onnx::load_model(model, vec![]).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let inputs: Vec<Option<Tensor>> = g
            .inputs
            .iter()
            .map(|&id| {
                let node = g.node(id);
                if !matches!(node.op, Op::Input { default: None }) {
                    return None;
                }
                let dims: Vec<usize> = node.outputs[0]
                    .ty
                    .shape
                    .dims()
                    .unwrap()
                    .iter()
                    .map(|d| d.known().unwrap_or(1))
                    .collect();
                let n: usize = dims.iter().product();
                Some(
                    Tensor::from_vec(
                        &dims,
                        (0..n).map(|i| (i as f64 / n as f64) as f32).collect(),
                    )
                    .unwrap(),
                )
            })
            .collect();
        let t0 = Instant::now();
        let (opt, report) = match pipeline.run(&g, &cfg) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{stem}: {e}"));
                continue;
            }
        };
        let secs = t0.elapsed().as_secs_f64();
        for (pass, r) in &report.passes {
            assert!(
                r.egraph_nodes <= cfg.node_limit + cfg.node_limit / 2,
                "{stem}: pass {pass}: e-graph blew up\n{report}"
            );
            assert!(
                r.stop_reason == "Saturated"
                    || r.stop_reason == graphc::passes::pipeline::GRAPH_PASS,
                "{stem}: pass {pass} did not saturate\n{report}"
            );
        }
        let before = eval_graph(&g, &inputs).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let after = match eval_graph(&opt, &inputs) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{stem}: optimized graph: {e}"));
                continue;
            }
        };
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            if let Err(e) = compare(a, b, 1e-4, 1e-6) {
                failures.push(format!("{stem}: output {i}: {e}"));
            }
        }
        // Node counts against what other optimizers leave (issue 3): the fused IR graph
        // against ONNX Runtime 1.32 at its extended level, the exported ONNX model against
        // onnx-simplifier 0.8. Constants are not counted: both tools hold weights as
        // initializers, and graphc keeps a splat weight as a compact ConstantOfShape of a
        // constant shape (or of an initializer) until a kernel materializes it.
        let (ort, onnxsim) = node_count_targets(&stem);
        let is_constant = |id| match &opt.node(id).op {
            Op::Constant { .. } | Op::Input { .. } => true,
            Op::ConstantOfShape { .. } => opt.node(id).inputs.iter().all(|v| {
                v.is_some_and(|v| {
                    matches!(
                        opt.node(v.node).op,
                        Op::Constant { .. } | Op::Input { default: Some(_) }
                    )
                })
            }),
            _ => false,
        };
        let fused = opt.nodes().filter(|&(id, _)| !is_constant(id)).count();
        if fused > ort {
            failures.push(format!(
                "{stem}: {fused} nodes after fusion, ONNX Runtime leaves {ort}"
            ));
        }
        let exported = match exported_node_count(&opt) {
            Ok(n) => n,
            Err(e) => {
                failures.push(format!("{stem}: export: {e}"));
                continue;
            }
        };
        if exported > onnxsim {
            failures.push(format!(
                "{stem}: {exported} nodes in the exported model, onnx-simplifier leaves {onnxsim}"
            ));
        }
        let n = |m: &std::collections::BTreeMap<String, usize>| m.values().sum::<usize>();
        let passes: Vec<String> = report
            .passes
            .iter()
            .map(|(p, r)| format!("{p}: {}", r.summary()))
            .collect();
        println!(
            "{stem}: {} -> {} nodes ({}) in {secs:.2}s; without constants: fused {fused} \
             (ONNX Runtime {ort}), exported {exported} (onnx-simplifier {onnxsim})",
            n(&report.passes[0].1.ops_before),
            n(&report.passes.last().unwrap().1.ops_after),
            passes.join("; ")
        );
    }
    assert!(
        failures.is_empty(),
        "optimized light models differ:\n{}",
        failures.join("\n")
    );
}

/// (ONNX Runtime 1.32 extended level, onnx-simplifier 0.8): the node counts, without
/// Constant nodes, that those tools leave of each light model (the targets of issue 3).
fn node_count_targets(stem: &str) -> (usize, usize) {
    match stem.trim_start_matches("light_") {
        "resnet50" => (90, 123),
        "densenet121" => (432, 550),
        "inception_v1" => (83, 139),
        "inception_v2" => (110, 226),
        "shufflenet" => (137, 154),
        "squeezenet" => (39, 66),
        "vgg19" => (26, 46),
        "bvlc_alexnet" => (15, 24),
        "zfnet512" => (15, 22),
        other => panic!("no node-count target for light model {other}"),
    }
}

/// Nodes other than Constant in the standard ONNX model `graphc optimize -o` writes.
fn exported_node_count(opt: &graphc::passes::ir::Graph) -> Result<usize, String> {
    let lowered = graphc::passes::lower::to_standard(opt, 18)?;
    let model = graphc::onnx::export::export_model(&lowered, 18).map_err(|e| e.to_string())?;
    Ok(model.graph.as_ref().map_or(0, |g| {
        g.node
            .iter()
            .filter(|n| n.op_type.as_deref() != Some("Constant"))
            .count()
    }))
}

/// The layout pass (opt-in) on the largest light models and ResNet-50: it saturates within
/// the default limits, the graph it leaves computes what the default pipeline's graph computes
/// (reference evaluator), and so does that graph lowered to standard ONNX ops.
#[test]
fn light_models_layout_pass_saturates_and_matches() {
    let cfg = RunnerConfig::from_env().unwrap();
    let mut failures = Vec::new();
    for model in crate::support::light_models() {
        let stem = model.file_stem().unwrap().to_string_lossy().into_owned();
        if !["densenet121", "inception_v2", "resnet50"]
            .iter()
            .any(|m| stem.ends_with(m))
        {
            continue;
        }
        let g = graphc::onnx::load_model(&model, vec![]).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let inputs = arange_inputs(&g);
        let (off, _) = Pipeline::default().run(&g, &cfg).unwrap();
        let t0 = Instant::now();
        let (on, report) = Pipeline::with_layout()
            .run(&g, &cfg)
            .unwrap_or_else(|e| panic!("{stem}: {e}"));
        let secs = t0.elapsed().as_secs_f64();
        let (_, r) = report
            .passes
            .iter()
            .find(|(p, _)| *p == "layout")
            .expect("the layout pass ran");
        assert_eq!(r.stop_reason, "Saturated", "{stem}: layout\n{report}");
        assert!(r.egraph_nodes <= cfg.node_limit, "{stem}: layout\n{report}");
        let count = |g: &graphc::passes::ir::Graph, f: &dyn Fn(&Op) -> bool| {
            g.nodes()
                .filter(|(_, n)| !matches!(n.op, Op::Input { .. } | Op::Constant { .. }))
                .filter(|(_, n)| f(&n.op))
                .count()
        };
        let lowered = graphc::passes::lower::to_standard(&on, 18)
            .unwrap_or_else(|e| panic!("{stem}: lowering: {e}"));
        println!(
            "{stem}: layout e-graph {} nodes {} classes, {} iters, {}; nodes off {} on {} \
             (blocked_conv {}, reorders {}), lowered {}, pipeline {secs:.2}s",
            r.egraph_nodes,
            r.egraph_classes,
            r.iterations,
            r.stop_reason,
            count(&off, &|_| true),
            count(&on, &|_| true),
            count(&on, &|o| matches!(o, Op::BlockedConv { .. })),
            count(&on, &|o| {
                matches!(
                    o,
                    Op::ReorderToBlocked { .. } | Op::ReorderFromBlocked { .. }
                )
            }),
            count(&lowered, &|_| true),
        );
        let want = eval_graph(&off, &inputs).unwrap_or_else(|e| panic!("{stem}: {e}"));
        for (what, h) in [("layout", &on), ("lowered", &lowered)] {
            match eval_graph(h, &inputs) {
                Ok(have) => {
                    for (i, (a, b)) in have.iter().zip(&want).enumerate() {
                        if let Err(e) = compare(a, b, 1e-4, 1e-6) {
                            failures.push(format!("{stem} ({what}): output {i}: {e}"));
                        }
                    }
                }
                Err(e) => failures.push(format!("{stem} ({what}): {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `arange(n).reshape(shape) / n` for each input without a default.
fn arange_inputs(g: &graphc::passes::ir::Graph) -> Vec<Option<Tensor>> {
    g.inputs
        .iter()
        .map(|&id| {
            let node = g.node(id);
            if !matches!(node.op, Op::Input { default: None }) {
                return None;
            }
            let dims: Vec<usize> = node.outputs[0]
                .ty
                .shape
                .dims()
                .unwrap()
                .iter()
                .map(|d| d.known().unwrap_or(1))
                .collect();
            let n: usize = dims.iter().product();
            Some(
                Tensor::from_vec(
                    &dims,
                    (0..n).map(|i| (i as f64 / n as f64) as f32).collect(),
                )
                .unwrap(),
            )
        })
        .collect()
}

mod cli {
    //! `graphc optimize`, `inspect --stop-after/--after-all` and `run --no-optimize` on the
    //! example model.
    use std::ffi::OsStr;
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::support::{compare, graphc, repo, Outcome};

    fn example() -> (PathBuf, PathBuf, PathBuf) {
        let root = repo().join("examples/models");
        (
            root.join("tiny_cnn.onnx"),
            root.join("tiny_cnn_image.npy"),
            root.join("tiny_cnn_expected.npy"),
        )
    }

    /// Runs graphc to completion and returns its stdout (these commands take well under a
    /// second; `support::graphc` keeps the timeout for the suites that could hang).
    fn ok(args: &[&OsStr]) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_graphc"))
            .args(args)
            .output()
            .expect("graphc runs");
        assert!(
            out.status.success(),
            "graphc {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    fn fails(args: &[&OsStr]) -> String {
        match graphc(args, Duration::from_secs(120)) {
            Outcome::Exited(1, e) => {
                assert_eq!(e.trim_end().lines().count(), 1, "one line expected: {e}");
                e
            }
            other => panic!("expected exit code 1 from {args:?}, got {other:?}"),
        }
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("graphc-opt-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The optimized model, written as standard ONNX and run as imported, computes the
    /// expected output; `run` with and without optimization agree with it too.
    #[test]
    fn optimize_writes_a_model_that_computes_the_same() {
        let (model, image, expected) = example();
        let dir = tempdir("write");
        let out = dir.join("opt.onnx");
        ok(&[
            "optimize".as_ref(),
            model.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        let text = ok(&["inspect".as_ref(), out.as_os_str()]);
        assert!(
            !text.contains("batch_normalization") && !text.contains("fused_"),
            "{text}"
        );
        let expected = graphc::npy::read_npy(&expected).unwrap();
        for (m, extra) in [
            (&out, "--no-optimize"),
            (&model, "--no-optimize"),
            (&model, ""),
        ] {
            let res = dir.join(format!("res-{}", extra.is_empty()));
            let mut args: Vec<&OsStr> = vec![
                "run".as_ref(),
                m.as_os_str(),
                "--input".as_ref(),
                image.as_os_str(),
                "--output-dir".as_ref(),
                res.as_os_str(),
            ];
            if !extra.is_empty() {
                args.push(extra.as_ref());
            }
            ok(&args);
            let actual = graphc::npy::read_npy(&res.join("output_0.npy")).unwrap();
            compare(&actual, &expected, 1e-5, 1e-6)
                .unwrap_or_else(|e| panic!("{} {extra}: {e}", m.display()));
        }
    }

    #[test]
    fn report_names_passes_rules_counts_and_arena() {
        let (model, ..) = example();
        let out = ok(&["optimize".as_ref(), model.as_os_str(), "--report".as_ref()]);
        for want in [
            "pass simplify: stop: Saturated",
            "pass fuse: stop: Saturated",
            "nodes: ",
            "memory (with N = 1): arena ",
        ] {
            assert!(out.contains(want), "missing '{want}' in:\n{out}");
        }
    }

    #[test]
    fn inspect_after_passes() {
        let (model, ..) = example();
        let all = ok(&[
            "inspect".as_ref(),
            model.as_os_str(),
            "--after-all".as_ref(),
        ]);
        for want in [
            "; as imported",
            "; after pass simplify",
            "; after pass inline-if",
            "; after pass fuse\n",
            "; after pass fuse-elementwise",
        ] {
            assert!(all.contains(want), "missing '{want}' in:\n{all}");
        }
        let fused = ok(&[
            "inspect".as_ref(),
            model.as_os_str(),
            "--stop-after".as_ref(),
            "fuse".as_ref(),
        ]);
        let tail = all.split("; after pass fuse\n").nth(1).unwrap();
        let tail = tail.split("\n; after pass").next().unwrap();
        assert_eq!(fused.trim_end(), tail.trim_end());
        let e = fails(&[
            "inspect".as_ref(),
            model.as_os_str(),
            "--stop-after".as_ref(),
            "nope".as_ref(),
        ]);
        assert!(
            e.contains(
                "no pass named 'nope' (passes: simplify, inline-if, fuse, fuse-elementwise)"
            ),
            "{e}"
        );
    }

    #[test]
    fn optimize_refuses_what_it_cannot_write() {
        let (model, ..) = example();
        let e = fails(&["optimize".as_ref(), model.as_os_str()]);
        assert!(e.contains("nothing to do"), "{e}");
        let dir = tempdir("refuse");
        let txt = dir.join("m.txt");
        let e = fails(&[
            "optimize".as_ref(),
            model.as_os_str(),
            "-o".as_ref(),
            txt.as_os_str(),
        ]);
        assert!(e.contains("must be a .onnx or .so file"), "{e}");
        assert!(!txt.exists());
        let so = dir.join("m.so");
        let e = fails(&[
            "optimize".as_ref(),
            model.as_os_str(),
            "-o".as_ref(),
            so.as_os_str(),
            "--name".as_ref(),
            "9lives".as_ref(),
        ]);
        assert!(e.contains("not a C identifier"), "{e}");
        assert!(!so.exists());
        let onnx = dir.join("m.onnx");
        let e = fails(&[
            "optimize".as_ref(),
            model.as_os_str(),
            "-o".as_ref(),
            onnx.as_os_str(),
            "--name".as_ref(),
            "m".as_ref(),
        ]);
        assert!(e.contains("--name only applies to a .so"), "{e}");
    }
}
