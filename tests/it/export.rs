//! IR -> ONNX export round trips: import a model, export it, encode, decode, import again,
//! and check the two graphs compute the same outputs (bit for bit) and print the same IR
//! text up to node names and node order (initializers always come first on import, so
//! `Constant` nodes move to the front).
//!
//! `GRAPHC_NODE_TESTS=test_abs,test_add` restricts the node tests to those name prefixes;
//! `GRAPHC_EXPORT_DIR=<folder>` also writes every exported model there (for checking them
//! with other tools); `GRAPHC_EXPORT_DIFF=1` prints the lines of unexpected text differences.

use std::path::Path;

use graphc::onnx::{export_model, import_model, load_model, read_pb, ImportOptions};
use graphc::onnx_proto::{self, prost::Message, ModelProto};
use graphc::passes::eval::eval_graph;
use graphc::passes::ir::{text, Graph, Op, Tensor};

use crate::support::{compare, onnx_data, subdirs};

/// The opset exports are written at: 21, or the model's own when newer.
fn export_opset(path: &Path) -> i64 {
    let bytes = std::fs::read(path).expect("model file reads");
    let m = onnx_proto::decode_model(&bytes).expect("model decodes");
    let own = m
        .opset_import
        .iter()
        .filter(|o| {
            o.domain
                .as_deref()
                .is_none_or(|d| d.is_empty() || d == "ai.onnx")
        })
        .filter_map(|o| o.version)
        .max()
        .unwrap_or(0);
    own.max(21)
}

/// Exports, serializes, parses and re-imports.
fn reimport(g: &Graph, opset: i64) -> Result<(ModelProto, Graph), String> {
    let m = export_model(g, opset).map_err(|e| format!("export: {e}"))?;
    let bytes = m.encode_to_vec();
    let decoded = onnx_proto::decode_model(&bytes).map_err(|e| format!("decode: {e}"))?;
    let g2 =
        import_model(&decoded, &ImportOptions::default()).map_err(|e| format!("re-import: {e}"))?;
    Ok((m, g2))
}

fn strip_names(g: &mut Graph) {
    let ids = g.node_ids().to_vec();
    for id in ids {
        let n = g.node_mut(id);
        n.name.clear();
        match &mut n.op {
            Op::If {
                then_branch,
                else_branch,
            } => {
                strip_names(then_branch);
                strip_names(else_branch);
            }
            Op::Loop { body, .. } | Op::Scan { body, .. } => strip_names(body),
            _ => {}
        }
    }
}

/// The IR text without node names, as a sorted list of lines.
fn canonical_text(g: &Graph) -> Vec<String> {
    let mut g = g.clone();
    strip_names(&mut g);
    let mut lines: Vec<String> = text::print(&g)
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    lines.sort();
    lines
}

/// Both graphs' outputs on `inputs` must be identical. `Ok(false)` when the original does
/// not evaluate (nothing to compare).
fn same_outputs(a: &Graph, b: &Graph, inputs: &[Option<Tensor>]) -> Result<bool, String> {
    let Ok(want) = eval_graph(a, inputs) else {
        return Ok(false);
    };
    let got = eval_graph(b, inputs).map_err(|e| format!("the re-imported graph fails: {e}"))?;
    if got.len() != want.len() {
        return Err(format!("{} outputs, expected {}", got.len(), want.len()));
    }
    for (i, (x, y)) in got.iter().zip(&want).enumerate() {
        compare(x, y, 0.0, 0.0).map_err(|e| format!("output {i}: {e}"))?;
    }
    Ok(true)
}

/// Node tests whose re-imported types are more precise than the original's: the original
/// import types a subgraph's captured values before the whole-graph inference refines them
/// in the outer graph, while the exported model declares the refined types, so inference
/// inside the If branches gets further. The computation is the same.
const TYPES_REFINED: &[&str] = &[
    "test_affine_grid_2d_align_corners_expanded",
    "test_affine_grid_2d_expanded",
    "test_affine_grid_3d_align_corners_expanded",
    "test_affine_grid_3d_expanded",
];

/// Ops the export rewrites into other ops, so the re-imported text differs by design.
fn rewritten(g: &Graph) -> bool {
    g.nodes().any(|(_, n)| match &n.op {
        Op::Softmax { coerce_2d, .. }
        | Op::LogSoftmax { coerce_2d, .. }
        | Op::Hardmax { coerce_2d, .. } => *coerce_2d,
        Op::Upsample { .. } | Op::Dft { .. } => true,
        Op::Split {
            num_outputs: None, ..
        } => n.inputs.get(1).is_none_or(|i| i.is_none()),
        Op::If {
            then_branch,
            else_branch,
        } => rewritten(then_branch) || rewritten(else_branch),
        Op::Loop { body, .. } | Op::Scan { body, .. } => rewritten(body),
        _ => false,
    })
}

#[test]
fn node_tests_round_trip() {
    let filter: Vec<String> = std::env::var("GRAPHC_NODE_TESTS")
        .map(|s| {
            s.split(',')
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let dirs = subdirs(&onnx_data().join("node"), "test_");
    let (mut imported, mut evaluated, mut same_text, mut rewrites) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    let mut text_diffs = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !filter.is_empty() && !filter.iter().any(|p| name.starts_with(p.as_str())) {
            continue;
        }
        let model = dir.join("model.onnx");
        let Ok(g) = load_model(&model, vec![]) else {
            continue;
        };
        imported += 1;
        let (m, g2) = match reimport(&g, export_opset(&model)) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        if let Some(out) = std::env::var_os("GRAPHC_EXPORT_DIR") {
            let path = Path::new(&out).join(format!("{name}.onnx"));
            graphc::onnx::write_model(&path, &m).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let inputs: Result<Vec<Option<Tensor>>, String> =
            crate::support::numbered(&dir.join("test_data_set_0"), "input_")
                .iter()
                .map(|p| read_pb(p).map(Some))
                .collect();
        let Ok(inputs) = inputs else { continue };
        match same_outputs(&g, &g2, &inputs) {
            Ok(true) => evaluated += 1,
            Ok(false) => {}
            Err(e) => failures.push(format!("{name}: {e}")),
        }
        if canonical_text(&g) == canonical_text(&g2) {
            same_text += 1;
        } else if rewritten(&g) || TYPES_REFINED.contains(&name.as_str()) {
            rewrites += 1;
        } else {
            if std::env::var_os("GRAPHC_EXPORT_DIFF").is_some() {
                let (a, b) = (canonical_text(&g), canonical_text(&g2));
                for l in a.iter().filter(|l| !b.contains(l)) {
                    println!("{name} - {l}");
                }
                for l in b.iter().filter(|l| !a.contains(l)) {
                    println!("{name} + {l}");
                }
            }
            text_diffs.push(name);
        }
    }
    println!(
        "export round trip: {imported} node tests import; {evaluated} evaluate identically after the round trip; \
         {same_text} print the same text, {rewrites} differ by a rewrite or refined types, {} differ otherwise",
        text_diffs.len()
    );
    assert!(imported > 0 || !filter.is_empty(), "no node test imported");
    assert!(
        failures.is_empty(),
        "{} round trips fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        text_diffs.is_empty(),
        "IR text differs after the round trip:\n{}",
        text_diffs.join("\n")
    );
}

/// The light model zoo, on the inputs of `conformance::light_models_reference`.
#[test]
fn light_models_round_trip() {
    let models = crate::support::light_models();
    for model in &models {
        let stem = model.file_stem().unwrap().to_string_lossy().into_owned();
        let g = load_model(model, vec![]).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let (_, g2) = reimport(&g, export_opset(model)).unwrap_or_else(|e| panic!("{stem}: {e}"));
        if !rewritten(&g) {
            assert_eq!(
                canonical_text(&g),
                canonical_text(&g2),
                "{stem}: IR text differs"
            );
        }
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
                let data: Vec<f32> = (0..n).map(|i| (i as f64 / n as f64) as f32).collect();
                Some(Tensor::from_vec(&dims, data).unwrap())
            })
            .collect();
        assert_eq!(same_outputs(&g, &g2, &inputs), Ok(true), "{stem}");
        println!("{stem}: round trip ok");
    }
}
