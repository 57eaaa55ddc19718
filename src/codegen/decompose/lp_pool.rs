//! LpPool (f32, floor mode, any number of spatial dims: the 1-D and 3-D AveragePools run on
//! `pool_nd`) as `AveragePool(|x|^p, count_include_pad) · taps` then `^(1/p)`: with floor mode every window lies inside the padded input, so the average over a
//! window that counts padding is its sum over the taps divided by the window's size, and
//! padding adds nothing to a sum of `|x|^p`, which is the reference's sum over valid taps
//! (`passes/src/eval/nn/pool.rs`). p = 1 and p = 2 use Abs and Mul / Sqrt; other p use Pow.

use graphc_passes::ir::{DType, Graph, NodeId, Op, Tensor};

use super::{become_last_step, known, Builder};

/// Rewrites an LpPool node `id`; leaves other forms as they are.
pub fn decompose(g: &mut Graph, id: NodeId) {
    let node = g.node(id);
    let Op::LpPool {
        auto_pad,
        ceil_mode: 0,
        dilations,
        kernel_shape,
        p,
        pads,
        strides,
    } = &node.op
    else {
        return;
    };
    let Some(x) = node.inputs.first().copied().flatten() else {
        return;
    };
    let (Some(xs), Some(ys)) = (known(g, x), node.outputs[0].ty.shape.as_known()) else {
        return;
    };
    if node.outputs.len() != 1 || g.dtype(x) != DType::F32 || *p < 1 {
        return;
    }
    let taps: i64 = kernel_shape.iter().product();
    if kernel_shape.is_empty() || xs.len() != kernel_shape.len() + 2 || taps < 1 {
        return;
    }
    let avg = Op::AveragePool {
        auto_pad: *auto_pad,
        ceil_mode: 0,
        count_include_pad: 1,
        dilations: dilations.clone(),
        kernel_shape: kernel_shape.clone(),
        pads: pads.clone(),
        strides: strides.clone(),
    };
    let p = *p;
    let mut bld = Builder::for_node(g, id);
    let a = bld.f32("abs", Op::Abs {}, vec![x], &xs);
    let powered = match p {
        1 => a,
        2 => bld.f32("square", Op::Mul {}, vec![a, a], &xs),
        _ => {
            let e = bld.constant("p", Tensor::scalar(p as f32));
            bld.f32("pow", Op::Pow {}, vec![a, e], &xs)
        }
    };
    let mean = bld.f32("mean", avg, vec![powered], &ys);
    let n = bld.constant("taps", Tensor::scalar(taps as f32));
    let (op, inputs) = match p {
        1 => (Op::Mul {}, vec![mean, n]),
        2 => {
            let sum = bld.f32("sum", Op::Mul {}, vec![mean, n], &ys);
            (Op::Sqrt {}, vec![sum])
        }
        _ => {
            let sum = bld.f32("sum", Op::Mul {}, vec![mean, n], &ys);
            let inv = bld.constant("inv_p", Tensor::scalar(1.0 / p as f32));
            (Op::Pow {}, vec![sum, inv])
        }
    };
    become_last_step(bld.g, id, op, inputs, &[]);
}
