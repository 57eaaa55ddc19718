//! The memory plan on the light models: every plan passes the independent checker, and the
//! arena against the sum of all intermediates is printed per model (a report, not a bench).

use std::collections::HashSet;

use graphc::passes::ir::{Graph, Op, Tensor};
use graphc::passes::plan::{check, memory::human_bytes, plan, MemoryPlan};

#[test]
fn light_models_plan_and_check() {
    let paths = crate::support::light_models();
    for path in &paths {
        let g = graphc::onnx::load_model(path, vec![])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stem = path.file_stem().unwrap().to_string_lossy();
        let p = planned(&g, path);
        println!("{stem:<22} as imported:    {}", summary(&p));
        let p = planned(&weights_as_constants(&g), path);
        println!("{stem:<22} weights folded: {}", summary(&p));
    }
    assert_eq!(paths.len(), 9);
}

fn planned(g: &Graph, path: &std::path::Path) -> MemoryPlan {
    let p = plan(g).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    check(&p, g).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        p.arena_bytes >= p.live_peak_bytes
            && p.arena_bytes <= p.total_intermediate_bytes + 64 * p.offsets.len()
    );
    p
}

fn summary(p: &MemoryPlan) -> String {
    format!(
        "{p}; live peak {}; arena {:.1}% of total ({} values)",
        human_bytes(p.live_peak_bytes),
        100.0 * p.arena_bytes as f64 / p.total_intermediate_bytes as f64,
        p.offsets.len()
    )
}

/// The graph with every node computed only from constants and initializers (the light
/// models build their weights with ConstantOfShape) turned into a `Constant`, as constant
/// folding will: the arena the back end sees after optimization. Only the memory plan reads
/// the result, which looks at declared types, so the placeholder tensor is never used.
fn weights_as_constants(g: &Graph) -> Graph {
    let mut g = g.clone();
    let mut constant = HashSet::new();
    let ids = g.node_ids().to_vec();
    for id in ids {
        let node = g.node(id);
        let is_const = match &node.op {
            Op::Input { default } => default.is_some(),
            Op::Constant { .. } => true,
            _ => node
                .inputs
                .iter()
                .flatten()
                .all(|v| constant.contains(&v.node)),
        };
        if !is_const {
            continue;
        }
        constant.insert(id);
        if !matches!(node.op, Op::Input { .. } | Op::Constant { .. }) {
            for slot in 0..node.inputs.len() {
                g.set_input(id, slot, None);
            }
            g.node_mut(id).op = Op::Constant {
                value: Tensor::from_vec(&[1], vec![0.0f32]).unwrap(),
            };
        }
    }
    g
}
