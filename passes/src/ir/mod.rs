//! The IR: one op vocabulary, typed values, a petgraph-based graph, its text format and its
//! verifier. Nothing here knows about protobuf, files or code generation.

pub mod attr;
pub mod blocked;
pub mod fused;
pub mod graph;
pub mod op;
pub mod tensor;
pub mod text;
pub mod types;
pub mod verify;

pub use attr::{Attr, AttrType, Attrs, AutoPad};
pub use graph::{Edge, Graph, GraphOutput, Node, NodeId, ValueInfo, ValueRef};
pub use op::{BuildError, Op};
pub use tensor::{Elem, Tensor};
pub use types::{DType, Dim, Shape, TypeInfo};
