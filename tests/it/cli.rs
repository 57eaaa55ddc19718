//! CLI behaviour on bad input: one clear line, exit code 1, never a panic.

use std::time::Duration;

use crate::support::{graphc, Outcome};

fn run_err(args: &[&str]) -> String {
    let os: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    match graphc(&os, Duration::from_secs(20)) {
        Outcome::Exited(1, e) => {
            assert_eq!(
                e.trim_end().lines().count(),
                1,
                "expected one line, got: {e}"
            );
            e.trim_end().to_string()
        }
        other => panic!("expected exit code 1, got {other:?}"),
    }
}

#[test]
fn missing_file() {
    let e = run_err(&["run", "/nonexistent/model.onnx"]);
    assert!(
        e.contains("/nonexistent/model.onnx") && e.contains("No such file"),
        "{e}"
    );
}

#[test]
fn empty_file() {
    let dir = tempdir("empty");
    let p = dir.join("empty.onnx");
    std::fs::write(&p, b"").unwrap();
    let e = run_err(&["run", p.to_str().unwrap()]);
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn truncated_model() {
    let dir = tempdir("truncated");
    let full = std::fs::read(crate::support::repo().join("examples/models/tiny_cnn.onnx")).unwrap();
    for cut in [1, 7, full.len() / 3, full.len() / 2, full.len() - 5] {
        let p = dir.join(format!("cut{cut}.onnx"));
        std::fs::write(&p, &full[..cut]).unwrap();
        let e = run_err(&["run", p.to_str().unwrap()]);
        assert!(e.starts_with("error: "), "{e}");
    }
}

#[test]
fn random_bytes() {
    let dir = tempdir("random");
    let p = dir.join("random.onnx");
    // A fixed pseudo-random byte string (xorshift), not a valid protobuf message.
    let mut x: u32 = 0x1234_5678;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(&p, bytes).unwrap();
    let e = run_err(&["inspect", p.to_str().unwrap()]);
    assert!(e.contains("not an ONNX model"), "{e}");
}

pub fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("graphc-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The example model matches the output of the onnx package's reference evaluator
/// (examples/models/tiny_cnn_expected.npy, made by scripts/make-example-models.py).
#[test]
fn example_model_matches_onnx_reference() {
    let root = crate::support::repo().join("examples/models");
    let out = tempdir("example");
    let (model, image) = (root.join("tiny_cnn.onnx"), root.join("tiny_cnn_image.npy"));
    let args = [
        "run",
        model.to_str().unwrap(),
        "--input",
        image.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
    ];
    let os: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    match graphc(&os, Duration::from_secs(60)) {
        Outcome::Exited(0, _) => {}
        other => panic!("graphc run failed: {other:?}"),
    }
    let actual = graphc::npy::read_npy(&out.join("output_0.npy")).unwrap();
    let expected = graphc::npy::read_npy(&root.join("tiny_cnn_expected.npy")).unwrap();
    crate::support::compare(&actual, &expected, 1e-5, 1e-6).unwrap();
}

mod bad_models {
    //! Hand-built malformed models: each must fail with one clear line and exit code 1.
    use graphc::onnx_proto as p;
    use p::prost::Message;

    use super::{run_err, tempdir};
    use crate::support::value_info as vi;

    fn node(op: &str, domain: &str, inputs: &[&str], outputs: &[&str]) -> p::NodeProto {
        p::NodeProto {
            op_type: Some(op.into()),
            domain: Some(domain.into()),
            name: Some(format!("the_{}", op.to_lowercase())),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn model(nodes: Vec<p::NodeProto>, inits: Vec<p::TensorProto>) -> p::ModelProto {
        p::ModelProto {
            ir_version: Some(8),
            opset_import: vec![p::OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(17),
            }],
            graph: Some(p::GraphProto {
                name: Some("g".into()),
                node: nodes,
                initializer: inits,
                input: vec![vi("x", 1, &[2, 3])],
                output: vec![vi("y", 1, &[2, 3])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn save(tag: &str, m: &p::ModelProto) -> std::path::PathBuf {
        let dir = tempdir(tag);
        let path = dir.join("model.onnx");
        std::fs::write(&path, m.encode_to_vec()).unwrap();
        path
    }

    fn inspect_err(tag: &str, m: &p::ModelProto) -> String {
        let path = save(tag, m);
        run_err(&["inspect", path.to_str().unwrap()])
    }

    /// A model-local function is inlined: `y = MyScale(x)` with body `Mul(x, Constant 3)` and an
    /// attribute reference, and the result evaluates as the body says.
    #[test]
    fn local_function_is_inlined() {
        let mut call = node("MyAffine", "local", &["x"], &["y"]);
        call.attribute.push(p::AttributeProto {
            name: Some("alpha".into()),
            r#type: Some(p::attribute_proto::AttributeType::Float as i32),
            f: Some(0.5),
            ..Default::default()
        });
        let mut lrelu = node("LeakyRelu", "", &["a"], &["b"]);
        lrelu.attribute.push(p::AttributeProto {
            name: Some("alpha".into()),
            ref_attr_name: Some("alpha".into()),
            r#type: Some(p::attribute_proto::AttributeType::Float as i32),
            ..Default::default()
        });
        let f = p::FunctionProto {
            name: Some("MyAffine".into()),
            domain: Some("local".into()),
            input: vec!["a".into()],
            output: vec!["c".into()],
            attribute: vec!["alpha".into()],
            node: vec![lrelu, node("Neg", "", &["b"], &["c"])],
            opset_import: vec![p::OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(17),
            }],
            ..Default::default()
        };
        let mut m = model(vec![call], vec![]);
        m.functions.push(f);
        m.opset_import.push(p::OperatorSetIdProto {
            domain: Some("local".into()),
            version: Some(1),
        });
        let path = save("function", &m);
        let g = graphc::onnx::load_model(&path, vec![]).unwrap();
        let ops: Vec<&str> = g.nodes().map(|(_, n)| n.op.name()).collect();
        assert_eq!(ops, ["input", "leaky_relu", "neg"]);
        let x =
            graphc::passes::ir::Tensor::from_vec(&[2, 3], vec![-2.0f32, -1.0, 0.0, 1.0, 2.0, 4.0])
                .unwrap();
        let y = graphc::passes::eval::eval_graph(&g, &[Some(x)]).unwrap();
        assert_eq!(y[0].to_f64_vec(), vec![1.0, 0.5, -0.0, -1.0, -2.0, -4.0]);
    }

    #[test]
    fn undefined_value() {
        let e = inspect_err(
            "undef",
            &model(vec![node("Relu", "", &["nope"], &["y"])], vec![]),
        );
        assert_eq!(
            e,
            "error: node 'the_relu' (Relu): input 'nope' is not defined"
        );
    }

    #[test]
    fn unknown_op() {
        let e = inspect_err(
            "unknown-op",
            &model(vec![node("FrobnicateV2", "", &["x"], &["y"])], vec![]),
        );
        assert_eq!(
            e,
            "error: node 'the_frobnicatev2' (FrobnicateV2): operator is not supported"
        );
    }

    #[test]
    fn unknown_domain() {
        let e = inspect_err(
            "unknown-domain",
            &model(vec![node("Relu", "com.example", &["x"], &["y"])], vec![]),
        );
        assert_eq!(
            e,
            "error: node 'the_relu' (Relu): domain 'com.example' is not supported"
        );
    }

    #[test]
    fn cycle() {
        let m = model(
            vec![
                node("Relu", "", &["b"], &["a"]),
                node("Neg", "", &["a"], &["b"]),
                node("Identity", "", &["b"], &["y"]),
            ],
            vec![],
        );
        let e = inspect_err("cycle", &m);
        assert!(e.contains("cycle"), "{e}");
    }

    #[test]
    fn negative_dim() {
        let mut m = model(vec![node("Relu", "", &["x"], &["y"])], vec![]);
        m.graph.as_mut().unwrap().input = vec![vi("x", 1, &[2, -3])];
        let e = inspect_err("negdim", &m);
        assert_eq!(e, "error: model: input 'x': negative dimension -3");
    }

    #[test]
    fn huge_initializer() {
        let t = p::TensorProto {
            name: Some("w".into()),
            dims: vec![1_000_000, 1_000_000],
            data_type: Some(1),
            ..Default::default()
        };
        let m = model(vec![node("Add", "", &["x", "w"], &["y"])], vec![t]);
        let start = std::time::Instant::now();
        let e = inspect_err("huge", &m);
        assert!(start.elapsed().as_secs() < 5);
        assert!(
            e.contains("initializer 'w'") && e.contains("1000000000000 elements"),
            "{e}"
        );
    }

    fn external(location: &str) -> p::TensorProto {
        p::TensorProto {
            name: Some("w".into()),
            dims: vec![2, 3],
            data_type: Some(1),
            data_location: Some(p::tensor_proto::DataLocation::External as i32),
            external_data: vec![p::StringStringEntryProto {
                key: Some("location".into()),
                value: Some(location.into()),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn external_data_outside_folder() {
        for loc in ["/etc/passwd", "../secret", "sub/../../secret"] {
            let m = model(
                vec![node("Add", "", &["x", "w"], &["y"])],
                vec![external(loc)],
            );
            let e = inspect_err("ext", &m);
            assert!(
                e.contains("must be a relative path inside the model's folder"),
                "{loc}: {e}"
            );
        }
    }

    #[test]
    fn external_data_inside_folder() {
        let m = model(
            vec![node("Add", "", &["x", "w"], &["y"])],
            vec![external("w.bin")],
        );
        let path = save("ext-ok", &m);
        let bytes: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        std::fs::write(path.parent().unwrap().join("w.bin"), bytes).unwrap();
        let g = graphc::onnx::load_model(&path, vec![]).unwrap();
        let w = g
            .nodes()
            .find_map(|(_, n)| match &n.op {
                graphc::passes::ir::Op::Constant { value } => Some(value.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(w.to_f64_vec(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn wrong_input_shape_and_dtype() {
        let m = model(vec![node("Relu", "", &["x"], &["y"])], vec![]);
        let path = save("wrong-input", &m);
        let dir = path.parent().unwrap();
        let bad_shape = dir.join("bad_shape.npy");
        let t = graphc::passes::ir::Tensor::from_vec(&[3, 2], vec![0f32; 6]).unwrap();
        graphc::npy::write_npy(&bad_shape, &t).unwrap();
        let e = run_err(&[
            "run",
            path.to_str().unwrap(),
            "--input",
            bad_shape.to_str().unwrap(),
        ]);
        assert_eq!(
            e,
            "error: input 'x' must be f32[2,3] but the file holds f32[3,2]"
        );
        let bad_dtype = dir.join("bad_dtype.npy");
        let t = graphc::passes::ir::Tensor::from_vec(&[2, 3], vec![0i64; 6]).unwrap();
        graphc::npy::write_npy(&bad_dtype, &t).unwrap();
        let e = run_err(&[
            "run",
            path.to_str().unwrap(),
            "--input",
            bad_dtype.to_str().unwrap(),
        ]);
        assert_eq!(
            e,
            "error: input 'x' must be f32[2,3] but the file holds i64[2,3]"
        );
    }
}
