//! Rust types for the ONNX protobuf schema.
//!
//! The types are generated at build time by `prost-build` from
//! `proto/onnx.proto` (parsed with `protox`, so no `protoc` binary is needed).
//! The schema uses proto2 field presence: scalar fields that may be absent are
//! `Option<_>` in Rust, with generated getters (e.g. [`ModelProto::ir_version`])
//! returning the default when unset.
//!
//! Nested messages and enums live in snake_case modules named after their
//! parent, e.g. [`tensor_proto::DataType`] or [`type_proto::Tensor`].
//!
//! ```
//! use onnx_proto::prost::Message;
//! use onnx_proto::{decode_model, ModelProto};
//!
//! let model = ModelProto { ir_version: Some(9), ..Default::default() };
//! let bytes = model.encode_to_vec();
//! assert_eq!(decode_model(&bytes).unwrap().ir_version(), 9);
//! ```

#![allow(missing_docs)]

pub use prost;

include!(concat!(env!("OUT_DIR"), "/onnx.rs"));

/// Decodes a serialized `ModelProto` (the contents of an `.onnx` file).
pub fn decode_model(bytes: &[u8]) -> Result<ModelProto, prost::DecodeError> {
    <ModelProto as prost::Message>::decode(bytes)
}

/// Decodes a serialized `TensorProto` (e.g. a `.pb` test-data file).
pub fn decode_tensor(bytes: &[u8]) -> Result<TensorProto, prost::DecodeError> {
    <TensorProto as prost::Message>::decode(bytes)
}
