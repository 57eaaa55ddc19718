//! Kernel selection: which family compiles a node, if any.
//!
//! Each family module exposes `lower(cx, g, node) -> Result<Option<Lowered>, String>`:
//! `Ok(None)` when it does not handle this node (another family may, or the node falls back
//! to the reference evaluator), `Err` when it should have and could not (a compiler bug,
//! reported, never silently replaced).

use graphc_passes::ir::{Graph, NodeId};

use super::kernel::{KernelCx, Lowered};

pub mod copy;
pub mod elementwise;
pub mod gemm;
pub mod misc;
pub mod vmath;

type LowerFn = fn(&mut KernelCx, &Graph, NodeId) -> Result<Option<Lowered>, String>;

/// The families, most specific first.
const FAMILIES: &[LowerFn] = &[copy::lower, gemm::lower, elementwise::lower, misc::lower];

/// Compiles `node` of `g` (all shapes static) into kernels, or `None` when no family has a
/// kernel for it.
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    for family in FAMILIES {
        if let Some(l) = family(cx, g, node)? {
            return Ok(Some(l));
        }
    }
    Ok(None)
}
