//! Elementwise ops: unary, binary with multidirectional broadcasting, variadic, comparison, logical, bitwise, activations, Cast, Clip, Where.

use crate::ir::{Op, Tensor};

/// Evaluates an op of this family.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], n_outputs: usize) -> Result<Vec<Tensor>, String> {
    let _ = (inputs, n_outputs);
    Err(format!("the reference evaluator does not implement {} yet", op.onnx_name()))
}
