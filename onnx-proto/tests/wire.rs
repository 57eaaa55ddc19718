//! Hand-assembled wire bytes pin the field numbers of the schema.
//!
//! The encoder here is a tiny stand-alone one (keys and varints written by
//! hand), so a wrong tag in `onnx.proto` shows up as a decode mismatch instead
//! of being hidden by a symmetric prost encode/decode.

use onnx_proto::prost::Message;
use onnx_proto::{
    attribute_proto::AttributeType, tensor_proto, tensor_shape_proto::dimension, type_proto,
    AttributeProto,
};

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Varint field (wire type 0).
fn vi(field: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(field) << 3, &mut out);
    varint(v, &mut out);
    out
}

/// Length-delimited field (wire type 2).
fn ld(field: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint((u64::from(field) << 3) | 2, &mut out);
    varint(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

/// 32-bit field (wire type 5).
fn f32f(field: u32, v: f32) -> Vec<u8> {
    let mut out = Vec::new();
    varint((u64::from(field) << 3) | 5, &mut out);
    out.extend_from_slice(&v.to_le_bytes());
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn kv(k: &str, v: &str) -> Vec<u8> {
    cat(&[ld(1, k.as_bytes()), ld(2, v.as_bytes())])
}

#[test]
fn tensor_proto_field_numbers() {
    let mut packed_i64 = Vec::new();
    varint(1, &mut packed_i64);
    varint(300, &mut packed_i64);
    let mut packed_u64 = Vec::new();
    varint(u64::MAX, &mut packed_u64);
    let floats = [1.5f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat();

    // Fields in ascending number order, packed where ONNX declares packing,
    // which is also the order and form prost emits.
    let bytes = cat(&[
        vi(1, 2),
        vi(1, 3),
        vi(2, tensor_proto::DataType::Float as u64),
        ld(3, &cat(&[vi(1, 0), vi(2, 6)])),
        ld(4, &floats),
        ld(5, &[7, 127]),
        ld(6, b"hi"),
        ld(7, &packed_i64),
        ld(8, b"w"),
        ld(9, &[1, 2, 3]),
        ld(10, &1.0f64.to_le_bytes()),
        ld(11, &packed_u64),
        ld(12, b"d"),
        ld(13, &kv("location", "w.bin")),
        vi(14, 1),
        ld(16, &kv("k", "v")),
    ]);

    let t = onnx_proto::decode_tensor(&bytes).unwrap();
    assert_eq!(t.dims, [2, 3]);
    assert_eq!(t.data_type(), tensor_proto::DataType::Float as i32);
    let seg = t.segment.as_ref().unwrap();
    assert_eq!((seg.begin, seg.end), (Some(0), Some(6)));
    assert_eq!(t.float_data, [1.5, -2.5]);
    assert_eq!(t.int32_data, [7, 127]);
    assert_eq!(t.string_data, [b"hi".to_vec()]);
    assert_eq!(t.int64_data, [1, 300]);
    assert_eq!(t.name(), "w");
    assert_eq!(t.raw_data(), [1, 2, 3]);
    assert_eq!(t.double_data, [1.0]);
    assert_eq!(t.uint64_data, [u64::MAX]);
    assert_eq!(t.doc_string(), "d");
    assert_eq!(t.external_data.len(), 1);
    assert_eq!(t.external_data[0].key(), "location");
    assert_eq!(t.external_data[0].value(), "w.bin");
    assert_eq!(t.data_location(), tensor_proto::DataLocation::External);
    assert_eq!(t.metadata_props[0].key(), "k");
    assert_eq!(t.metadata_props[0].value(), "v");

    assert_eq!(
        t.encode_to_vec(),
        bytes,
        "re-encoding must be byte-identical"
    );
}

#[test]
fn unpacked_repeated_scalars_are_accepted() {
    // Writers may emit packed fields unpacked; decoders must accept both.
    let bytes = cat(&[f32f(4, 1.0), f32f(4, 2.0), vi(7, 5), vi(7, 6)]);
    let t = onnx_proto::decode_tensor(&bytes).unwrap();
    assert_eq!(t.float_data, [1.0, 2.0]);
    assert_eq!(t.int64_data, [5, 6]);
}

#[test]
fn model_graph_node_field_numbers() {
    let dim_param = ld(1, &ld(2, b"N"));
    let dim_value = ld(1, &vi(1, 3));
    let shape = cat(&[dim_param, dim_value]);
    let tensor_type = cat(&[vi(1, 1), ld(2, &shape)]);
    let type_proto = cat(&[ld(1, &tensor_type), ld(6, b"IMAGE")]);
    let value_info = cat(&[ld(1, b"x"), ld(2, &type_proto), ld(3, b"vi-doc")]);

    let attr = cat(&[
        ld(1, b"alpha"),
        f32f(2, 0.25),
        vi(3, (-4i64) as u64),
        vi(8, 1),
        vi(8, 2),
        ld(13, b"a-doc"),
        vi(20, AttributeType::Float as u64),
        ld(21, b"outer"),
    ]);
    let node = cat(&[
        ld(1, b"x"),
        ld(1, b""),
        ld(2, b"y"),
        ld(3, b"n0"),
        ld(4, b"Relu"),
        ld(5, &attr),
        ld(6, b"n-doc"),
        ld(7, b"com.example"),
        ld(8, b"ov"),
        ld(9, &kv("nk", "nv")),
    ]);
    let init = cat(&[vi(1, 1), vi(2, 7), ld(8, b"c")]);
    let graph = cat(&[
        ld(1, &node),
        ld(2, b"g"),
        ld(5, &init),
        ld(10, b"g-doc"),
        ld(11, &value_info),
        ld(12, &ld(1, b"y")),
        ld(13, &ld(1, b"mid")),
        ld(14, &ld(1, b"c")),
        ld(16, &kv("gk", "gv")),
    ]);
    let function = cat(&[
        ld(1, b"F"),
        ld(4, b"a"),
        ld(5, b"b"),
        ld(6, b"alpha"),
        ld(8, b"f-doc"),
        ld(10, b"com.example"),
        ld(13, b"fo"),
    ]);
    let bytes = cat(&[
        vi(1, 10),
        ld(2, b"prod"),
        ld(3, b"1.0"),
        ld(4, b"org.example"),
        vi(5, 42),
        ld(6, b"m-doc"),
        ld(7, &graph),
        ld(8, &cat(&[ld(1, b""), vi(2, 21)])),
        ld(14, &kv("author", "me")),
        ld(20, &ld(2, &ld(2, b"train"))),
        ld(25, &function),
        ld(26, &cat(&[ld(1, b"cfg"), vi(2, 2), ld(3, b"gpu0")])),
    ]);

    let m = onnx_proto::decode_model(&bytes).unwrap();
    assert_eq!(m.ir_version(), 10);
    assert_eq!(m.producer_name(), "prod");
    assert_eq!(m.producer_version(), "1.0");
    assert_eq!(m.domain(), "org.example");
    assert_eq!(m.model_version(), 42);
    assert_eq!(m.doc_string(), "m-doc");
    assert_eq!(m.opset_import.len(), 1);
    assert_eq!(m.opset_import[0].domain(), "");
    assert_eq!(m.opset_import[0].version(), 21);
    assert_eq!(m.metadata_props[0].key(), "author");
    assert_eq!(
        m.training_info[0].algorithm.as_ref().unwrap().name(),
        "train"
    );
    assert_eq!(m.configuration[0].name(), "cfg");
    assert_eq!(m.configuration[0].num_devices(), 2);
    assert_eq!(m.configuration[0].device, ["gpu0"]);

    let f = &m.functions[0];
    assert_eq!(f.name(), "F");
    assert_eq!(
        (f.input.as_slice(), f.output.as_slice()),
        (&["a".to_string()][..], &["b".to_string()][..])
    );
    assert_eq!(f.attribute, ["alpha"]);
    assert_eq!(f.doc_string(), "f-doc");
    assert_eq!(f.domain(), "com.example");
    assert_eq!(f.overload(), "fo");

    let g = m.graph.as_ref().unwrap();
    assert_eq!(g.name(), "g");
    assert_eq!(g.doc_string(), "g-doc");
    assert_eq!(g.initializer[0].dims, [1]);
    assert_eq!(g.initializer[0].data_type(), 7);
    assert_eq!(g.initializer[0].name(), "c");
    assert_eq!(g.output[0].name(), "y");
    assert_eq!(g.value_info[0].name(), "mid");
    assert_eq!(g.quantization_annotation[0].tensor_name(), "c");
    assert_eq!(g.metadata_props[0].value(), "gv");

    let vi0 = &g.input[0];
    assert_eq!(vi0.name(), "x");
    assert_eq!(vi0.doc_string(), "vi-doc");
    let tp = vi0.r#type.as_ref().unwrap();
    assert_eq!(tp.denotation(), "IMAGE");
    let Some(type_proto::Value::TensorType(tt)) = &tp.value else {
        panic!("expected tensor_type, got {:?}", tp.value)
    };
    assert_eq!(tt.elem_type(), 1);
    let dims = &tt.shape.as_ref().unwrap().dim;
    assert_eq!(dims[0].value, Some(dimension::Value::DimParam("N".into())));
    assert_eq!(dims[1].value, Some(dimension::Value::DimValue(3)));

    let n = &g.node[0];
    assert_eq!(n.input, ["x", ""]);
    assert_eq!(n.output, ["y"]);
    assert_eq!(n.name(), "n0");
    assert_eq!(n.op_type(), "Relu");
    assert_eq!(n.doc_string(), "n-doc");
    assert_eq!(n.domain(), "com.example");
    assert_eq!(n.overload(), "ov");
    assert_eq!(n.metadata_props[0].key(), "nk");

    let a: &AttributeProto = &n.attribute[0];
    assert_eq!(a.name(), "alpha");
    assert_eq!(a.f(), 0.25);
    assert_eq!(a.i(), -4);
    assert_eq!(a.ints, [1, 2]);
    assert_eq!(a.doc_string(), "a-doc");
    assert_eq!(a.r#type(), AttributeType::Float);
    assert_eq!(a.ref_attr_name(), "outer");

    assert_eq!(
        m.encode_to_vec(),
        bytes,
        "re-encoding must be byte-identical"
    );
}

#[test]
fn type_proto_oneof_members() {
    let elem = ld(1, &vi(1, 1)); // TypeProto { tensor_type { elem_type: FLOAT } }
    let cases: [(u32, Vec<u8>); 5] = [
        (4, ld(1, &elem)),                     // sequence_type
        (5, cat(&[vi(1, 7), ld(2, &elem)])),   // map_type
        (7, cat(&[ld(1, b"d"), ld(2, b"n")])), // opaque_type
        (8, vi(1, 1)),                         // sparse_tensor_type
        (9, ld(1, &elem)),                     // optional_type
    ];
    for (field, body) in cases {
        let bytes = ld(field, &body);
        let tp = onnx_proto::TypeProto::decode(bytes.as_slice()).unwrap();
        let ok = match (field, tp.value.as_ref()) {
            (4, Some(type_proto::Value::SequenceType(s))) => s.elem_type.is_some(),
            (5, Some(type_proto::Value::MapType(m))) => m.key_type() == 7 && m.value_type.is_some(),
            (7, Some(type_proto::Value::OpaqueType(o))) => o.domain() == "d" && o.name() == "n",
            (8, Some(type_proto::Value::SparseTensorType(s))) => s.elem_type() == 1,
            (9, Some(type_proto::Value::OptionalType(o))) => o.elem_type.is_some(),
            _ => false,
        };
        assert!(ok, "field {field} decoded as {:?}", tp.value);
        assert_eq!(tp.encode_to_vec(), bytes);
    }
}

#[test]
fn sparse_tensor_and_attribute_lists() {
    let values = cat(&[vi(1, 2), vi(2, 1), ld(4, &[0, 0, 128, 63, 0, 0, 0, 64])]);
    let indices = cat(&[vi(1, 2), vi(2, 7), ld(7, &[0, 5])]);
    let sparse = cat(&[ld(1, &values), ld(2, &indices), vi(3, 2), vi(3, 3)]);
    let attr = cat(&[
        ld(1, b"a"),
        ld(4, b"s"),
        f32f(7, 1.0),
        ld(9, b"x"),
        ld(9, b"y"),
        vi(20, AttributeType::SparseTensor as u64),
        ld(22, &sparse),
        ld(23, &sparse),
    ]);
    let a = AttributeProto::decode(attr.as_slice()).unwrap();
    assert_eq!(a.s(), b"s");
    assert_eq!(a.floats, [1.0]);
    assert_eq!(a.strings, [b"x".to_vec(), b"y".to_vec()]);
    assert_eq!(a.r#type(), AttributeType::SparseTensor);
    let sp = a.sparse_tensor.as_ref().unwrap();
    assert_eq!(sp.dims, [2, 3]);
    assert_eq!(sp.values.as_ref().unwrap().float_data, [1.0, 2.0]);
    assert_eq!(sp.indices.as_ref().unwrap().int64_data, [0, 5]);
    assert_eq!(a.sparse_tensors.len(), 1);
}

#[test]
fn data_type_enum_values() {
    use tensor_proto::DataType as D;
    let expected = [
        (D::Undefined, 0),
        (D::Float, 1),
        (D::Uint8, 2),
        (D::Int8, 3),
        (D::Uint16, 4),
        (D::Int16, 5),
        (D::Int32, 6),
        (D::Int64, 7),
        (D::String, 8),
        (D::Bool, 9),
        (D::Float16, 10),
        (D::Double, 11),
        (D::Uint32, 12),
        (D::Uint64, 13),
        (D::Complex64, 14),
        (D::Complex128, 15),
        (D::Bfloat16, 16),
        (D::Float8e4m3fn, 17),
        (D::Float8e4m3fnuz, 18),
        (D::Float8e5m2, 19),
        (D::Float8e5m2fnuz, 20),
        (D::Uint4, 21),
        (D::Int4, 22),
        (D::Float4e2m1, 23),
        (D::Float8e8m0, 24),
        (D::Uint2, 25),
        (D::Int2, 26),
    ];
    for (d, v) in expected {
        assert_eq!(d as i32, v, "{}", d.as_str_name());
        assert_eq!(D::try_from(v), Ok(d));
    }
    assert!(D::try_from(27).is_err());
    assert_eq!(onnx_proto::Version::IrVersion as i32, 13);
}
