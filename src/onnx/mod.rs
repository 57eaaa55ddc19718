//! The ONNX front end: protobuf model -> IR graph, and back (`export`).
//!
//! `import` walks a `ModelProto` into a [`Graph`]: opset-aware (default domain, opsets
//! [`MIN_OPSET`]..=[`MAX_OPSET`]), with initializers (graph inputs that also have one become
//! inputs with a default), Constant nodes, symbolic dims, input-shape overrides, a
//! topological order even when the file's order is not, model-local functions inlined, and
//! subgraphs (If/Loop/Scan) with their captured outer values made explicit. `normalize`
//! rewrites older opsets' attribute forms into the newest input forms the IR uses. `tensor`
//! converts `TensorProto`s. Errors name the node, its op type and the reason.

pub mod export;
pub mod import;
pub mod normalize;
pub mod tensor;

pub use export::{export_model, write_model, ExportError, MIN_EXPORT_OPSET};
pub use import::{import_model, load_model, load_model_with, ImportOptions};
pub use tensor::{read_pb, tensor_from_proto, tensor_to_proto, DataDir};

/// Oldest default-domain opset graphc reads.
pub const MIN_OPSET: i64 = 7;
/// Newest default-domain opset graphc reads.
pub const MAX_OPSET: i64 = 26;

/// Why a model could not be imported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    /// The bytes are not a model.
    #[error("cannot read the model: {0}")]
    Decode(String),
    /// A problem with the model as a whole.
    #[error("model: {0}")]
    Model(String),
    /// A problem with one node.
    #[error("node '{node}' ({op}): {reason}")]
    Node {
        /// The node's name, or a description of it when unnamed.
        node: String,
        /// Its op type.
        op: String,
        /// What is wrong.
        reason: String,
    },
}
