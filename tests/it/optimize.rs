//! The e-graph optimizer on the light model zoo: every model optimized with the default rule
//! sets computes what the imported model computes (reference evaluator, rtol 1e-4), and the
//! e-graph stays within the runner's limits.

use std::time::Instant;

use graphc::passes::egraph::{optimize, RunnerConfig};
use graphc::passes::eval::eval_graph;
use graphc::passes::ir::{Op, Tensor};

use crate::support::compare;

#[test]
fn light_models_optimized_match_unoptimized() {
    let models = crate::support::light_models();
    let cfg = RunnerConfig::from_env().unwrap();
    let rules = graphc::passes::rules::default_rules();
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
        let (opt, report) = match optimize(&g, &rules, &cfg) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{stem}: {e}"));
                continue;
            }
        };
        let secs = t0.elapsed().as_secs_f64();
        assert!(
            report.egraph_nodes <= cfg.node_limit + cfg.node_limit / 2,
            "{stem}: e-graph blew up\n{report}"
        );
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
        let n = |m: &std::collections::BTreeMap<String, usize>| m.values().sum::<usize>();
        println!(
            "{stem}: {} -> {} nodes, {} in {secs:.2}s",
            n(&report.ops_before),
            n(&report.ops_after),
            report.summary()
        );
    }
    assert!(
        failures.is_empty(),
        "optimized light models differ:\n{}",
        failures.join("\n")
    );
}
