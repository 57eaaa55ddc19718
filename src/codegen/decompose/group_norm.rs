//! GroupNormalization (f32, per-channel scale and bias) as LayerNormalization over each
//! group: `[n, c, ...]` viewed as `[n, groups, c / groups · spatial]`, normalized over the
//! last axis with a unit scale, viewed back, then `· scale + bias` per channel, as the
//! reference evaluator computes it (`passes/src/eval/nn/norm.rs`).

use graphc_passes::ir::{DType, Graph, NodeId, Op, Tensor};

use super::{become_last_step, known, Builder};

/// Rewrites a GroupNormalization node `id`; leaves other forms as they are.
pub fn decompose(g: &mut Graph, id: NodeId) {
    let node = g.node(id);
    let Op::GroupNormalization {
        epsilon,
        num_groups,
        ..
    } = node.op
    else {
        return;
    };
    let input = |i: usize| node.inputs.get(i).copied().flatten();
    let (Some(x), Some(scale), Some(bias)) = (input(0), input(1), input(2)) else {
        return;
    };
    if node.outputs.len() != 1 || [x, scale, bias].iter().any(|&v| g.dtype(v) != DType::F32) {
        return;
    }
    let Some(xs) = known(g, x) else {
        return;
    };
    if xs.len() < 2 {
        return;
    }
    let (n, c) = (xs[0], xs[1]);
    let Some(groups) = usize::try_from(num_groups)
        .ok()
        .filter(|&gr| gr > 0 && c % gr == 0)
    else {
        return;
    };
    // Scale and bias: one value per channel.
    if [scale, bias]
        .iter()
        .any(|&v| known(g, v).as_deref() != Some(&[c][..]))
    {
        return;
    }
    let inner: usize = xs[1..].iter().product::<usize>() / groups;
    let mut per_channel = vec![1; xs.len()];
    per_channel[1] = c;
    let mut bld = Builder::for_node(g, id);
    let grouped = bld.reshape("groups", x, &[n, groups, inner]);
    let one = bld.constant("unit", Tensor::from_vec(&[1], vec![1f32]).expect("size"));
    let ln = Op::LayerNormalization {
        axis: 2,
        epsilon,
        stash_type: 1,
    };
    let normed = bld.f32("normalized", ln, vec![grouped, one], &[n, groups, inner]);
    let back = bld.reshape("channels", normed, &xs);
    let s = bld.reshape("scale", scale, &per_channel);
    let b = bld.reshape("bias", bias, &per_channel);
    let scaled = bld.f32("scaled", Op::Mul {}, vec![back, s], &xs);
    become_last_step(bld.g, id, Op::Add {}, vec![scaled, b], &[]);
}
