//! A Gemm the GEMM kernel cannot take whole (alpha ≠ 1 with B known only at run time, a C or
//! beta its epilogue does not fit) as `Transpose`s, `MatMul`, `· alpha` and `+ beta · C`,
//! each with a kernel: `alpha · A' · B' + beta · C` as the reference evaluator computes it.

use graphc_passes::ir::{DType, Graph, NodeId, Op, Tensor};

use super::{become_last_step, known, Builder};
use crate::codegen::kernels::gemm::takes_gemm;

/// Rewrites Gemm node `id` when the GEMM kernel declines it; leaves it as it is otherwise.
pub fn decompose(g: &mut Graph, id: NodeId) {
    let node = g.node(id);
    let Op::Gemm {
        alpha,
        beta,
        trans_a,
        trans_b,
    } = node.op
    else {
        return;
    };
    let input = |i: usize| node.inputs.get(i).copied().flatten();
    let (Some(a), Some(b), c) = (input(0), input(1), input(2)) else {
        return;
    };
    if node.outputs.len() != 1 || takes_gemm(g, id) {
        return;
    }
    if [Some(a), Some(b), c]
        .into_iter()
        .flatten()
        .any(|v| g.dtype(v) != DType::F32)
    {
        return;
    }
    let (Some(ad), Some(bd), Some(yd)) = (
        known(g, a),
        known(g, b),
        node.outputs[0].ty.shape.as_known(),
    ) else {
        return;
    };
    if ad.len() != 2 || bd.len() != 2 || yd.len() != 2 {
        return;
    }
    let mut bld = Builder::for_node(g, id);
    let a = if trans_a != 0 {
        bld.transpose("a.t", a, &[1, 0], &[ad[1], ad[0]])
    } else {
        a
    };
    let b = if trans_b != 0 {
        bld.transpose("b.t", b, &[1, 0], &[bd[1], bd[0]])
    } else {
        b
    };
    let mut y = bld.f32("product", Op::MatMul {}, vec![a, b], &yd);
    if alpha != 1.0 {
        let s = bld.constant("alpha", Tensor::scalar(alpha));
        y = bld.f32("scaled", Op::Mul {}, vec![y, s], &yd);
    }
    let (op, inputs) = match c.filter(|_| beta != 0.0) {
        Some(c) => {
            let c = if beta != 1.0 {
                let cd = known(bld.g, c).unwrap_or_default();
                let s = bld.constant("beta", Tensor::scalar(beta));
                bld.f32("c.scaled", Op::Mul {}, vec![c, s], &cd)
            } else {
                c
            };
            (Op::Add {}, vec![y, c])
        }
        None => {
            let s = bld.shape("y.shape", &yd);
            (Op::Reshape { allowzero: 0 }, vec![y, s])
        }
    };
    become_last_step(bld.g, id, op, inputs, &[]);
}
