//! Kernels: softmax (not written yet).

use graphc_passes::ir::{Graph, NodeId};

use crate::codegen::kernel::{KernelCx, Lowered};

/// See [`super`].
pub fn lower(_cx: &mut KernelCx, _g: &Graph, _node: NodeId) -> Result<Option<Lowered>, String> {
    Ok(None)
}
