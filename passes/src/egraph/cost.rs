//! The cost model: a rough estimate of FLOPs plus bytes moved per op, from the types the
//! analysis knows. Unknown and symbolic dims count as 1. Leaves (inputs, constants, `_`) and
//! `get` projections cost 0; every other op costs at least 1, so extraction never prefers a
//! longer chain of no-op ops.
//!
//! - elementwise and data movement: one FLOP per output element;
//! - MatMul / Gemm / fused MatMul: `2*M*N*K`;
//! - inference BatchNormalization and Div: four FLOPs per element (BatchNorm as written,
//!   unfolded; division for its latency);
//! - Conv / fused Conv / ConvTranspose: `2 * out_elems * Cin/group * prod(kernel)`;
//! - pooling and reductions: one FLOP per input element;
//! - plus bytes read and written (inputs and outputs), divided by [`BYTES_PER_FLOP`];
//! - the blocked layout (`ir::blocked`): reorders are copies (one FLOP per output element
//!   plus their bytes, about 3 per element); a blocked op costs its NCHW op on the padded
//!   blocked shapes, minus a model of what its kernel saves: [`BLOCKED_CONV_SAVING`] per
//!   input and output element for a convolution (no im2col/repack of the input, output
//!   written in whole vectors), a factor [`BLOCKED_POOL_FACTOR`] for pooling (contiguous
//!   vector lanes). These numbers are a model, not a measurement (the back end has no
//!   blocked kernels yet); they are chosen so that the blocked form pays for a chain of two
//!   or more convolutions, whose savings exceed the two boundary reorders (about 3 per
//!   element each), and not for one isolated convolution (saving 2 per element of its input
//!   and output against 3 for their reorders). Channel padding counts in full, so small or
//!   odd channel counts stay NCHW.

use crate::ir::{Op, TypeInfo};

/// How many bytes moved cost as much as one FLOP.
pub const BYTES_PER_FLOP: f64 = 4.0;

/// What a blocked convolution saves over its NCHW form, per element of its (blocked) input
/// and output: a model, see the module docs.
pub const BLOCKED_CONV_SAVING: f64 = 2.0;

/// A blocked pooling op's cost relative to its NCHW form on the same (padded) shapes.
pub const BLOCKED_POOL_FACTOR: f64 = 0.9;

fn elems(t: &TypeInfo) -> f64 {
    match t.shape.dims() {
        None => 1.0,
        Some(d) => d.iter().map(|d| d.known().unwrap_or(1) as f64).product(),
    }
}

fn dims(t: &TypeInfo) -> Vec<f64> {
    t.shape
        .dims()
        .unwrap_or(&[])
        .iter()
        .map(|d| d.known().unwrap_or(1) as f64)
        .collect()
}

/// The cost of one op given its (present) input types and its output types.
pub fn op_cost(op: &Op, inputs: &[Option<&TypeInfo>], outputs: &[TypeInfo]) -> f64 {
    if matches!(op, Op::Constant { .. } | Op::Input { .. }) {
        return 0.0;
    }
    let out_elems: f64 = outputs.iter().map(elems).sum();
    let in_elems: f64 = inputs.iter().flatten().map(|t| elems(t)).sum();
    let bytes: f64 = inputs
        .iter()
        .flatten()
        .map(|t| elems(t) * t.dtype.size() as f64)
        .sum::<f64>()
        + outputs
            .iter()
            .map(|t| elems(t) * t.dtype.size() as f64)
            .sum::<f64>();
    let first = inputs.first().copied().flatten();
    let second = inputs.get(1).copied().flatten();
    let flops = match op {
        Op::BlockedConv { group, .. } => {
            // Like Conv, on the padded channels: [N, Cb, H, W, c] input, [M, C, k...] weights.
            let x = first.map(dims).unwrap_or_default();
            let cin = x.get(1).copied().unwrap_or(1.0) * x.last().copied().unwrap_or(1.0)
                / (*group).max(1) as f64;
            let kernel = second
                .map(dims)
                .unwrap_or_default()
                .iter()
                .skip(2)
                .product::<f64>();
            let x_elems = first.map(elems).unwrap_or(1.0);
            let full = 1.0 + 2.0 * out_elems * cin * kernel + bytes / BYTES_PER_FLOP;
            let saved = full - BLOCKED_CONV_SAVING * (x_elems + out_elems);
            return saved.max(1.0 + full / 2.0);
        }
        Op::BlockedMaxPool { .. }
        | Op::BlockedAveragePool { .. }
        | Op::BlockedGlobalAveragePool { .. } => {
            let full = 1.0 + in_elems.max(out_elems) + bytes / BYTES_PER_FLOP;
            return (BLOCKED_POOL_FACTOR * full).max(1.0);
        }
        // A copy: one FLOP per element written.
        Op::ReorderToBlocked { .. } | Op::ReorderFromBlocked { .. } => out_elems,
        Op::MatMul {} | Op::MatMulInteger {} | Op::Gemm { .. } | Op::FusedMatMul { .. } => {
            // out = M x N (times batch), K from A's last dim (or first when transposed).
            let k = match (op, first.map(dims)) {
                (Op::Gemm { trans_a: 1, .. }, Some(a)) => a.first().copied().unwrap_or(1.0),
                (_, Some(a)) => a.last().copied().unwrap_or(1.0),
                _ => 1.0,
            };
            2.0 * out_elems * k
        }
        Op::Conv { group, .. }
        | Op::FusedConv { group, .. }
        | Op::ConvInteger { group, .. }
        | Op::ConvTranspose { group, .. } => {
            let w = second.map(dims).unwrap_or_default();
            let (cin, kernel) = match op {
                // Weights are [M, C/group, k...] for Conv and [C, M/group, k...] for ConvTranspose.
                Op::ConvTranspose { .. } => (
                    w.first().copied().unwrap_or(1.0) / (*group).max(1) as f64,
                    w.iter().skip(2).product::<f64>(),
                ),
                _ => (
                    w.get(1).copied().unwrap_or(1.0),
                    w.iter().skip(2).product::<f64>(),
                ),
            };
            2.0 * out_elems * cin * kernel
        }
        Op::MaxPool { .. }
        | Op::AveragePool { .. }
        | Op::LpPool { .. }
        | Op::GlobalAveragePool {}
        | Op::GlobalMaxPool {}
        | Op::ReduceSum { .. }
        | Op::ReduceMean { .. }
        | Op::ReduceMax { .. }
        | Op::ReduceMin { .. }
        | Op::ReduceProd { .. }
        | Op::Softmax { .. }
        | Op::FusedSoftmax { .. }
        | Op::LogSoftmax { .. } => in_elems.max(out_elems),
        // Two matrix products over [batch, heads, seq, kv_seq] scores, plus the softmax.
        // Q [.., S, D], K [.., L, D], output [.., S, Dv]: scores are rows(Q) x L.
        Op::Attention { .. } => {
            let q = first.map(dims).unwrap_or_default();
            let d = q.last().copied().unwrap_or(1.0).max(1.0);
            let rows = q.iter().product::<f64>() / d;
            let kv_seq = second
                .map(dims)
                .and_then(|k| k.iter().rev().nth(1).copied())
                .unwrap_or(1.0);
            let dv = out_elems / rows.max(1.0);
            let scores = rows * kv_seq;
            2.0 * scores * d + 2.0 * scores * dv + scores
        }
        // Division is several times slower than multiplication on every CPU.
        Op::Div {} => 4.0 * out_elems,
        // Inference BatchNorm as written: subtract, divide, scale, shift per element (a
        // per-channel scale and shift is cheaper).
        Op::BatchNormalization { .. } => 4.0 * out_elems,
        // Pure reshapes move no data in a real kernel but still cost a little.
        Op::Identity {}
        | Op::Reshape { .. }
        | Op::Flatten { .. }
        | Op::Squeeze {}
        | Op::Unsqueeze {} => {
            return 1.0;
        }
        _ => out_elems,
    };
    1.0 + flops + bytes / BYTES_PER_FLOP
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{DType, Shape};

    fn t(d: &[usize]) -> TypeInfo {
        TypeInfo {
            dtype: DType::F32,
            shape: Shape::known(d),
        }
    }

    #[test]
    fn matmul_and_conv_flops() {
        // [2,3] x [3,4] -> [2,4]: 2*2*4*3 = 48 flops; bytes (6+12+8)*4 = 104 -> 26.
        let c = op_cost(
            &Op::MatMul {},
            &[Some(&t(&[2, 3])), Some(&t(&[3, 4]))],
            &[t(&[2, 4])],
        );
        assert_eq!(c, 1.0 + 48.0 + 26.0);
        // x [1,4,5,5], w [8,2,3,3] group 2 -> [1,8,3,3]: 2*72*2*9 = 2592 flops.
        let conv = Op::Conv {
            auto_pad: Default::default(),
            dilations: vec![],
            group: 2,
            kernel_shape: vec![],
            pads: vec![],
            strides: vec![],
        };
        let c = op_cost(
            &conv,
            &[Some(&t(&[1, 4, 5, 5])), Some(&t(&[8, 2, 3, 3]))],
            &[t(&[1, 8, 3, 3])],
        );
        let bytes = (100.0 + 144.0 + 72.0) * 4.0;
        assert_eq!(c, 1.0 + 2592.0 + bytes / BYTES_PER_FLOP);
        assert_eq!(
            op_cost(
                &Op::Constant {
                    value: crate::ir::Tensor::scalar(1.0f32)
                },
                &[],
                &[t(&[])]
            ),
            0.0
        );
    }
}
