//! Decodes the "light" model zoo files shipped in the ONNX test data.
//!
//! The files are not part of this repository: `scripts/fetch-onnx-testdata.sh` puts them in
//! `.cache/onnx-1.21.0/light` (or under `GRAPHC_ONNX_DATA`). A missing folder fails the
//! tests with the command to run; it is never a silent pass.

use std::path::PathBuf;

use onnx_proto::prost::Message;
use onnx_proto::{tensor_proto::DataType, type_proto};

fn light_dir() -> Option<PathBuf> {
    let data = std::env::var_os("GRAPHC_ONNX_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/onnx-1.21.0"));
    let dir = data.join("light");
    assert!(
        dir.is_dir(),
        "ONNX light models missing at {}: run scripts/fetch-onnx-testdata.sh",
        dir.display()
    );
    Some(dir)
}

#[test]
fn resnet50() {
    let Some(dir) = light_dir() else { return };
    let path = dir.join("light_resnet50.onnx");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let model = onnx_proto::decode_model(&bytes).unwrap();

    assert!(model.ir_version() > 0);
    assert!(!model.opset_import.is_empty());
    let default_opset = model
        .opset_import
        .iter()
        .find(|o| o.domain().is_empty() || o.domain() == "ai.onnx")
        .expect("default-domain opset");
    assert!(default_opset.version() >= 1);

    let graph = model.graph.as_ref().expect("graph");
    assert_eq!(graph.name(), "resnet50");
    assert!(graph.node.len() > 100, "only {} nodes", graph.node.len());
    assert!(graph.node.iter().any(|n| n.op_type() == "Conv"));
    assert!(graph.node.iter().all(|n| !n.op_type().is_empty()));
    assert!(!graph.initializer.is_empty());

    // Input is a float image tensor [1, 3, 224, 224].
    let input = &graph.input[0];
    let Some(type_proto::Value::TensorType(t)) = &input.r#type.as_ref().unwrap().value else {
        panic!("input is not a tensor")
    };
    assert_eq!(t.elem_type(), DataType::Float as i32);
    let dims: Vec<i64> = t
        .shape
        .as_ref()
        .unwrap()
        .dim
        .iter()
        .map(|d| match d.value {
            Some(onnx_proto::tensor_shape_proto::dimension::Value::DimValue(v)) => v,
            _ => -1,
        })
        .collect();
    assert_eq!(dims, [1, 3, 224, 224]);

    // Re-encoding reproduces the file exactly.
    assert_eq!(model.encode_to_vec(), bytes);
}

#[test]
fn all_light_models_and_outputs() {
    let Some(dir) = light_dir() else { return };
    let mut models = 0;
    let mut tensors = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        match path.extension().and_then(|e| e.to_str()) {
            Some("onnx") => {
                let m = onnx_proto::decode_model(&bytes)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let g = m.graph.as_ref().expect("graph");
                assert!(!g.node.is_empty(), "{}", path.display());
                assert!(
                    !g.input.is_empty() && !g.output.is_empty(),
                    "{}",
                    path.display()
                );
                assert_eq!(m.encode_to_vec(), bytes, "{}", path.display());
                models += 1;
            }
            Some("pb") => {
                let t = onnx_proto::decode_tensor(&bytes)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(t.data_type(), DataType::Float as i32);
                let n: i64 = t.dims.iter().product();
                assert_eq!(t.raw_data().len() as i64, n * 4, "{}", path.display());
                tensors += 1;
            }
            _ => {}
        }
    }
    eprintln!(
        "decoded {models} models and {tensors} tensors from {}",
        dir.display()
    );
    assert!(models > 0);
}
