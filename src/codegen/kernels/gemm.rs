//! Kernels: gemm (not written yet; every node falls back).

use graphc_passes::ir::{Graph, NodeId};

use crate::codegen::kernel::{KernelCx, Lowered};

/// See [`super`]: `None` for nodes this family does not compile.
pub fn lower(_cx: &mut KernelCx, _g: &Graph, _node: NodeId) -> Result<Option<Lowered>, String> {
    Ok(None)
}
