//! 1-D MaxPool and AveragePool as the 2-D pools (which have kernels) over a height of 1:
//! `[N, C, L]` is viewed as `[N, C, 1, L]`, the window as `[1, k]`, and the result back as
//! `[N, C, L']`. Pools with an Indices output are left whole.

use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::{become_last_step, known, Builder};

/// `[1, v]` for a 1-D attribute list (or `[]` when empty).
fn widen(v: &[i64], one: i64) -> Option<Vec<i64>> {
    match v {
        [] => Some(vec![]),
        [x] => Some(vec![one, *x]),
        _ => None,
    }
}

/// The 2-D form of a 1-D pool op.
fn widened(op: &Op) -> Option<Op> {
    let pads2 = |p: &[i64]| match p {
        [] => Some(vec![]),
        [b, e] => Some(vec![0, *b, 0, *e]),
        _ => None,
    };
    Some(match op {
        Op::MaxPool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            pads,
            storage_order,
            strides,
        } => Op::MaxPool {
            auto_pad: *auto_pad,
            ceil_mode: *ceil_mode,
            dilations: widen(dilations, 1)?,
            kernel_shape: widen(kernel_shape, 1).filter(|k| !k.is_empty())?,
            pads: pads2(pads)?,
            storage_order: *storage_order,
            strides: widen(strides, 1)?,
        },
        Op::AveragePool {
            auto_pad,
            ceil_mode,
            count_include_pad,
            dilations,
            kernel_shape,
            pads,
            strides,
        } => Op::AveragePool {
            auto_pad: *auto_pad,
            ceil_mode: *ceil_mode,
            count_include_pad: *count_include_pad,
            dilations: widen(dilations, 1)?,
            kernel_shape: widen(kernel_shape, 1).filter(|k| !k.is_empty())?,
            pads: pads2(pads)?,
            strides: widen(strides, 1)?,
        },
        _ => return None,
    })
}

/// Rewrites a 1-D pool node `id` into Reshape, the 2-D pool and Reshape; leaves other pools
/// as they are.
pub fn decompose(g: &mut Graph, id: NodeId) {
    let node = g.node(id);
    let Some(x) = node.inputs.first().copied().flatten() else {
        return;
    };
    if node.outputs.len() != 1 || g.dtype(x) != DType::F32 {
        return;
    }
    let (Some(xs), Some(ys)) = (known(g, x), node.outputs[0].ty.shape.as_known()) else {
        return;
    };
    let (&[n, c, l], &[_, _, lo]) = (xs.as_slice(), ys.as_slice()) else {
        return;
    };
    let Some(op) = widened(&node.op) else {
        return;
    };
    let mut bld = Builder::for_node(g, id);
    let x4 = bld.reshape("rows", x, &[n, c, 1, l]);
    let y4 = bld.f32("pool", op, vec![x4], &[n, c, 1, lo]);
    let s = bld.shape("y.shape", &[n, c, lo]);
    become_last_step(bld.g, id, Op::Reshape { allowzero: 0 }, vec![y4, s], &[]);
}
