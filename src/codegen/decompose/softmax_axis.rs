//! Softmax and LogSoftmax along an axis that is not the innermost (opset 13 semantics) as
//! Transpose, the kernel's innermost-axis form, and Transpose back: the swap of that axis with
//! the last one is its own inverse.

use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::{become_last_step, known, Builder};

/// Rewrites a Softmax / LogSoftmax node `id` whose axis has non-unit dims after it; leaves
/// other forms (the kernel's own) as they are.
pub fn decompose(g: &mut Graph, id: NodeId) {
    let node = g.node(id);
    let (axis, log) = match node.op {
        Op::Softmax {
            axis,
            coerce_2d: false,
        } => (axis, false),
        Op::LogSoftmax {
            axis,
            coerce_2d: false,
        } => (axis, true),
        _ => return,
    };
    let Some(x) = node.inputs.first().copied().flatten() else {
        return;
    };
    let Some(xs) = known(g, x) else {
        return;
    };
    if g.dtype(x) != DType::F32 || node.outputs.len() != 1 {
        return;
    }
    let r = xs.len() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    let Some(a) = usize::try_from(a).ok().filter(|&a| a < xs.len()) else {
        return;
    };
    if xs[a + 1..].iter().all(|&d| d == 1) {
        return;
    }
    let last = xs.len() - 1;
    let mut perm: Vec<i64> = (0..xs.len() as i64).collect();
    perm.swap(a, last);
    let mut moved = xs.clone();
    moved.swap(a, last);
    let mut bld = Builder::for_node(g, id);
    let t = bld.f32(
        "moved",
        Op::Transpose {
            perm: Some(perm.clone()),
        },
        vec![x],
        &moved,
    );
    let inner = if log {
        Op::LogSoftmax {
            axis: -1,
            coerce_2d: false,
        }
    } else {
        Op::Softmax {
            axis: -1,
            coerce_2d: false,
        }
    };
    let s = bld.f32("inner", inner, vec![t], &moved);
    become_last_step(bld.g, id, Op::Transpose { perm: Some(perm) }, vec![s], &[]);
}
