//! Kernels: the ops that are neither matrix products nor elementwise.
//!
//! - [`movement`]: Transpose, Concat, Split, Slice, Expand, Tile, Pad (constant mode, the
//!   value constant or read at run time), CenterCropPad and Gather, for every fixed-size
//!   element type, as strided row copies; edge/reflect/wrap Pads as a table gather (the one
//!   nearest Resize uses).
//! - [`pool`]: MaxPool, AveragePool (2-D, f32, NCHW), GlobalAveragePool, GlobalMaxPool.
//! - [`pool_nd`]: MaxPool (f32/u8/i8, with Indices) and AveragePool (f32) over any number of
//!   spatial dims.
//! - [`unpool`]: MaxUnpool and Col2Im (constant shape inputs).
//! - [`strings`]: Equal of string tensors (graph inputs: arrays of C string pointers).
//! - [`compact`]: NonZero and Compress, whose output shape the data decides (compiled with
//!   an upper bound, the actual dims reported).
//! - [`unique`]: Unique (flattened or along an axis, sorted or not, every output; bounded
//!   like `compact`).
//! - [`nms`]: NonMaxSuppression (f32; optional inputs absent, constant or run-time), its
//!   output compiled with an upper bound like `compact`'s.
//! - [`reduce`]: Reduce{Sum,Mean,Max,Min,Prod,L1,L2,SumSquare,LogSum,LogSumExp} over any axes
//!   (constant or run-time), ArgMax/ArgMin (f32).
//! - [`scan`]: CumSum/CumProd, Hardmax, LpNormalization, TopK along one axis, Trilu.
//! - [`softmax`]: Softmax, LogSoftmax, FusedSoftmax, LayerNormalization, RMSNormalization
//!   (f32).
//! - [`norm`]: LRN, BatchNormalization (inference), InstanceNormalization (f32, NCHW-like).
//! - `elem`: ConstantOfShape, Cast (f32/f64/integers/bool), Where (broadcasting).
//! - `index`: GatherElements, GatherND, ScatterElements, ScatterND (reductions), OneHot,
//!   EyeLike, NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (f32).
//! - `linalg`: ReverseSequence (run-time lengths, clamped), Det (f32, f64; partial pivoting).
//! - [`signal`]: DFT (f32, f64; forward, inverse, one-sided, constant `dft_length`/`axis`).
//! - [`resize`]: Resize and Upsample with constant scales/sizes/roi: nearest (any rank, most
//!   types), and for f32 linear and cubic over any axes, antialias, exclude_outside,
//!   tf_crop_and_resize, keep_aspect_ratio_policy.
//! - [`sample`]: GridSample (1-3 spatial dims, every mode and padding), AffineGrid (2-D, 3-D,
//!   constant size), RoiAlign (avg, max; run-time rois); f32.
//!
//! Every emitter declines (`Ok(None)`) what it does not handle exactly like the reference
//! evaluator: other element types, dynamic shapes, inputs that must be constants and are not,
//! attributes outside the handled set.

use graphc_passes::ir::{Graph, NodeId, Op, Tensor, ValueRef};

use crate::codegen::kernel::{KernelCx, Lowered};

pub mod compact;
mod elem;
mod index;
pub(crate) mod ir;
mod linalg;
pub mod movement;
pub mod nms;
pub mod norm;
pub mod pool;
pub mod pool_nd;
pub mod reduce;
pub mod resize;
pub mod sample;
pub mod scan;
pub mod signal;
pub mod softmax;
pub mod strings;
pub mod unique;
pub mod unpool;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_compact;
#[cfg(test)]
mod tests_index;
#[cfg(test)]
mod tests_more;
#[cfg(test)]
mod tests_nms;
#[cfg(test)]
mod tests_pool;
#[cfg(test)]
mod tests_reduce;
#[cfg(test)]
mod tests_resize;
#[cfg(test)]
mod tests_sample;
#[cfg(test)]
mod tests_unique;

/// See [`super`]: `None` for nodes this family does not compile.
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    match &n.op {
        Op::Transpose { .. }
        | Op::Concat { .. }
        | Op::Split { .. }
        | Op::Slice {}
        | Op::Expand {}
        | Op::Tile {}
        | Op::Pad { .. }
        | Op::CenterCropPad { .. }
        | Op::Gather { .. } => movement::lower(cx, g, node),
        Op::MaxPool { .. }
        | Op::AveragePool { .. }
        | Op::GlobalAveragePool {}
        | Op::GlobalMaxPool {} => pool::lower(cx, g, node),
        Op::ReduceSum { .. }
        | Op::ReduceMean { .. }
        | Op::ReduceMax { .. }
        | Op::ReduceMin { .. }
        | Op::ReduceProd { .. }
        | Op::ReduceL1 { .. }
        | Op::ReduceL2 { .. }
        | Op::ReduceSumSquare { .. }
        | Op::ReduceLogSum { .. }
        | Op::ReduceLogSumExp { .. }
        | Op::ArgMax { .. }
        | Op::ArgMin { .. } => reduce::lower(cx, g, node),
        Op::CumSum { .. }
        | Op::CumProd { .. }
        | Op::Hardmax { .. }
        | Op::LpNormalization { .. }
        | Op::Trilu { .. }
        | Op::TopK { .. } => scan::lower(cx, g, node),
        Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::FusedSoftmax { .. }
        | Op::LayerNormalization { .. }
        | Op::RmsNormalization { .. } => softmax::lower(cx, g, node),
        Op::Lrn { .. } | Op::BatchNormalization { .. } | Op::InstanceNormalization { .. } => {
            norm::lower(cx, g, node)
        }
        Op::Resize { .. } | Op::Upsample { .. } => resize::lower(cx, g, node),
        Op::GridSample { .. } | Op::AffineGrid { .. } | Op::RoiAlign { .. } => {
            sample::lower(cx, g, node)
        }
        Op::Dft { .. } => signal::lower(cx, g, node),
        Op::ReverseSequence { .. } | Op::Det {} => linalg::lower(cx, g, node),
        Op::MaxUnpool { .. } | Op::Col2Im { .. } => unpool::lower(cx, g, node),
        Op::NonZero {} | Op::Compress { .. } => compact::lower(cx, g, node),
        Op::Equal {} => strings::lower(cx, g, node),
        Op::Unique { .. } => unique::lower(cx, g, node),
        Op::NonMaxSuppression { .. } => nms::lower(cx, g, node),
        Op::ConstantOfShape { .. } | Op::Cast { .. } | Op::Where {} => elem::lower(cx, g, node),
        Op::GatherElements { .. }
        | Op::GatherND { .. }
        | Op::ScatterElements { .. }
        | Op::ScatterND { .. }
        | Op::OneHot { .. }
        | Op::EyeLike { .. }
        | Op::NegativeLogLikelihoodLoss { .. }
        | Op::SoftmaxCrossEntropyLoss { .. } => index::lower(cx, g, node),
        _ => Ok(None),
    }
}

/// The value feeding input slot `i`, when present.
fn input(g: &Graph, node: NodeId, i: usize) -> Option<ValueRef> {
    g.node(node).inputs.get(i).copied().flatten()
}

/// The static shape of input slot `i`.
fn in_shape(g: &Graph, node: NodeId, i: usize) -> Option<Vec<usize>> {
    g.ty(input(g, node, i)?).shape.as_known()
}

/// The static shape of output `i`.
fn out_shape(g: &Graph, node: NodeId, i: usize) -> Option<Vec<usize>> {
    g.node(node).outputs.get(i)?.ty.shape.as_known()
}

/// The tensor of input slot `i` when it is a constant (not an overridable initializer).
fn const_input(g: &Graph, node: NodeId, i: usize) -> Option<&Tensor> {
    match &g.node(input(g, node, i)?.node).op {
        Op::Constant { value } => Some(value),
        _ => None,
    }
}

/// Whether output `i` has consumers or is a graph output (an unused optional output is free).
fn output_used(g: &Graph, node: NodeId, i: usize) -> bool {
    g.consumers(node)
        .iter()
        .any(|&(_, _, port)| port as usize == i)
        || g.outputs
            .iter()
            .any(|o| o.value.node == node && o.value.port as usize == i)
}

/// Row-major element strides of a shape.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Normalizes a possibly negative axis into `0..rank`.
fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}
