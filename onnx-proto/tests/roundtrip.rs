//! prost encode -> decode round trips of hand-built messages.

use onnx_proto::prost::Message;
use onnx_proto::{
    attribute_proto::AttributeType, tensor_proto, tensor_shape_proto, type_proto, AttributeProto,
    FunctionProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, SparseTensorProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TrainingInfoProto, TypeProto,
    ValueInfoProto,
};

fn entry(k: &str, v: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v.into()),
    }
}

fn tensor_type(elem: tensor_proto::DataType, dims: &[Result<i64, &str>]) -> TypeProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Ok(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                Err(p) => tensor_shape_proto::dimension::Value::DimParam((*p).into()),
            }),
            denotation: None,
        })
        .collect();
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: Some(elem as i32),
            shape: Some(TensorShapeProto { dim }),
        })),
        denotation: None,
    }
}

fn sample_model() -> ModelProto {
    let weight = TensorProto {
        dims: vec![2, 2],
        data_type: Some(tensor_proto::DataType::Float as i32),
        name: Some("W".into()),
        raw_data: Some(
            [1.0f32, 2.0, 3.0, 4.0]
                .iter()
                .flat_map(|f| f.to_le_bytes())
                .collect(),
        ),
        ..Default::default()
    };
    let mut external = TensorProto {
        dims: vec![1024],
        data_type: Some(tensor_proto::DataType::Bfloat16 as i32),
        name: Some("E".into()),
        external_data: vec![entry("location", "weights.bin"), entry("offset", "0")],
        ..Default::default()
    };
    external.set_data_location(tensor_proto::DataLocation::External);

    let mut attr = AttributeProto {
        name: Some("perm".into()),
        ints: vec![0, 2, 1],
        ..Default::default()
    };
    attr.set_type(AttributeType::Ints);

    let node = NodeProto {
        input: vec!["X".into(), "W".into()],
        output: vec!["Y".into()],
        name: Some("mm".into()),
        op_type: Some("MatMul".into()),
        attribute: vec![attr],
        ..Default::default()
    };

    let sparse = SparseTensorProto {
        values: Some(TensorProto {
            data_type: Some(tensor_proto::DataType::Float as i32),
            dims: vec![1],
            float_data: vec![5.0],
            name: Some("S".into()),
            ..Default::default()
        }),
        indices: Some(TensorProto {
            data_type: Some(tensor_proto::DataType::Int64 as i32),
            dims: vec![1],
            int64_data: vec![3],
            ..Default::default()
        }),
        dims: vec![4],
    };

    let graph = GraphProto {
        node: vec![node],
        name: Some("g".into()),
        initializer: vec![weight, external],
        sparse_initializer: vec![sparse],
        input: vec![ValueInfoProto {
            name: Some("X".into()),
            r#type: Some(tensor_type(
                tensor_proto::DataType::Float,
                &[Err("N"), Ok(2)],
            )),
            ..Default::default()
        }],
        output: vec![ValueInfoProto {
            name: Some("Y".into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::SequenceType(Box::new(
                    type_proto::Sequence {
                        elem_type: Some(Box::new(tensor_type(tensor_proto::DataType::Float, &[]))),
                    },
                ))),
                denotation: None,
            }),
            ..Default::default()
        }],
        ..Default::default()
    };

    ModelProto {
        ir_version: Some(onnx_proto::Version::IrVersion as i64),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(21),
        }],
        producer_name: Some("graphc-test".into()),
        graph: Some(graph.clone()),
        metadata_props: vec![entry("k", "v")],
        training_info: vec![TrainingInfoProto {
            algorithm: Some(graph),
            ..Default::default()
        }],
        functions: vec![FunctionProto {
            name: Some("F".into()),
            domain: Some("local".into()),
            input: vec!["a".into()],
            output: vec!["b".into()],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn model_round_trip() {
    let model = sample_model();
    let bytes = model.encode_to_vec();
    let back = onnx_proto::decode_model(&bytes).unwrap();
    assert_eq!(back, model);
    assert_eq!(back.encode_to_vec(), bytes);

    let g = back.graph.as_ref().unwrap();
    assert_eq!(g.initializer[0].raw_data().len(), 16);
    assert_eq!(
        g.initializer[1].data_location(),
        tensor_proto::DataLocation::External
    );
    assert_eq!(g.node[0].attribute[0].r#type(), AttributeType::Ints);
}

#[test]
fn presence_is_kept() {
    // proto2 semantics: an explicit zero/empty value is distinct from absence.
    let t = TensorProto {
        data_type: Some(0),
        name: Some(String::new()),
        ..Default::default()
    };
    let back = onnx_proto::decode_tensor(&t.encode_to_vec()).unwrap();
    assert_eq!(back.data_type, Some(0));
    assert_eq!(back.name.as_deref(), Some(""));
    assert_eq!(back.raw_data, None);

    let empty = onnx_proto::decode_tensor(&[]).unwrap();
    assert_eq!(empty, TensorProto::default());
    assert_eq!(empty.data_type, None);
}

#[test]
fn garbage_is_an_error() {
    // A truncated length-delimited field must fail rather than panic.
    assert!(onnx_proto::decode_model(&[0x3a, 0x10, 0x0a]).is_err());
}
