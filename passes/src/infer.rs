//! Shape and dtype inference (stub; being written).

use crate::ir::{Graph, Op, Tensor, TypeInfo};

/// What inference knows about one input value: its type, and its value when it is a known
/// constant (so that shape arithmetic such as `Shape -> Gather -> Concat -> Reshape` resolves).
#[derive(Clone, Copy, Debug)]
pub struct Fact<'a> {
    /// Element type and shape.
    pub ty: &'a TypeInfo,
    /// The value, when known at compile time.
    pub value: Option<&'a Tensor>,
}

/// An inference error, naming the node and op.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("node '{node}' ({op}): {reason}")]
pub struct InferError {
    /// Node name.
    pub node: String,
    /// ONNX op type.
    pub op: String,
    /// What went wrong.
    pub reason: String,
}

/// Infers the output types of one op.
pub fn infer_op(op: &Op, inputs: &[Option<Fact<'_>>], n_outputs: usize) -> Result<Vec<TypeInfo>, String> {
    let _ = (op, inputs, n_outputs);
    Err("not implemented".into())
}

/// Infers the type of every node output in the graph, in order, refining what the graph
/// already records.
pub fn infer_graph(g: &mut Graph) -> Result<(), InferError> {
    let _ = g;
    Ok(())
}
