//! The blocked channel layout NCHWc (`ir::blocked`, c = [`BLOCK`] = 8 f32 lanes for AVX2) as
//! an alternative for chains of convolutions and the ops between them.
//!
//! - `layout-conv-*`: `conv(x, w, ...) = reorder_from(blocked_conv(reorder_to(x), w, ...))`
//!   (a residual is reordered too); only 4-D f32 convolutions with `group = 1`.
//! - `layout-push`: `reorder_to(op(a, ...)) = op'(reorder_to(a), ...)`, moving a reorder to
//!   blocked up through the ops a blocked region may contain: unary ops that map 0 to 0
//!   (Relu, LeakyRelu, Clip around 0, ...), Add/Sub/Mul/Max/Min of two same-shape tensors or
//!   of a tensor and a per-channel constant (the constant reordered, its padding zero),
//!   MaxPool/AveragePool/GlobalAveragePool (their blocked forms) and a channel Concat whose
//!   parts fill whole blocks.
//! - `layout-pull-*`: `op(reorder_from(y)) = reorder_from(op'(y))` for pools and unary ops
//!   (exact for any padding: the op works per channel and the reorder drops the padding), so
//!   a pool or activation after a region's last convolution may run blocked too.
//! - `layout-cancel`: `reorder_to(reorder_from(y)) = y` when the blocks agree, the types
//!   agree, and `y`'s padding lanes are zero: `y` has a producer that guarantees it (a
//!   blocked op or a reorder to blocked), or there is no padding.
//!
//! So every convolution gets a blocked alternative, the reorders between two of them cancel
//! once the reorder to blocked has moved up to the previous one's reorder back, and the
//! extractor keeps the blocked form only where the cost model (`egraph::cost`) says the
//! cheaper blocked kernels pay for the reorders at the region's boundaries. Each class gets at
//! most one reorder to blocked, so the e-graph grows linearly.

use egg::{rewrite as rw, Applier, Id, PatternAst, Subst, Symbol, Var};

use super::{absent, add_const, add_op, constant, union_typed, var};
use crate::egraph::{ENode, GraphAnalysis, Head, Rewrite, EG};
use crate::ir::fused::Activation;
use crate::ir::{DType, Dim, Op, Tensor, TypeInfo};

/// The block: 8 f32 lanes (one AVX2 register).
pub const BLOCK: i64 = 8;

/// The layout rule set.
#[rustfmt::skip]
pub fn rules() -> Vec<Rewrite> {
    let mut r = vec![
    rw!("layout-conv-2";       "(conv ?x ?w)"             => { BlockConv { x: var("?x"), w: var("?w"), b: None, r: None } }),
    rw!("layout-conv-3";       "(conv ?x ?w ?b)"          => { BlockConv { x: var("?x"), w: var("?w"), b: Some(var("?b")), r: None } }),
    rw!("layout-fused-conv-2"; "(fused_conv ?x ?w)"       => { BlockConv { x: var("?x"), w: var("?w"), b: None, r: None } }),
    rw!("layout-fused-conv-3"; "(fused_conv ?x ?w ?b)"    => { BlockConv { x: var("?x"), w: var("?w"), b: Some(var("?b")), r: None } }),
    rw!("layout-fused-conv-4"; "(fused_conv ?x ?w ?b ?r)" => { BlockConv { x: var("?x"), w: var("?w"), b: Some(var("?b")), r: Some(var("?r")) } }),
    rw!("layout-push";         "(reorder_to_blocked ?z)"  => { Push { z: var("?z") } }),
    rw!("layout-cancel";       "(reorder_to_blocked (reorder_from_blocked ?y))" => { Cancel { y: var("?y") } }),
    ];
    // Outward: a per-channel op of a reorder back to NCHW runs on the blocked tensor.
    for op in ["max_pool", "average_pool", "global_average_pool", "relu", "leaky_relu", "tanh", "hard_swish", "swish", "gelu"] {
        let pattern: egg::Pattern<ENode> =
            format!("({op} (reorder_from_blocked ?y))").parse().expect("constant pattern");
        r.push(egg::Rewrite::new(format!("layout-pull-{op}"), pattern, Pull { y: var("?y") }).expect("valid rule"));
    }
    r
}

/// The dims of a 4-D f32 type whose channel count is known (`None` for unknown or symbolic
/// dims), and that channel count.
fn nchw_dims(t: Option<&TypeInfo>) -> Option<(Vec<Option<usize>>, usize)> {
    let t = t?;
    if t.dtype != DType::F32 {
        return None;
    }
    let d: Vec<Option<usize>> = t.shape.dims()?.iter().map(Dim::known).collect();
    let c = (d.len() == 4).then(|| d[1]).flatten()?;
    Some((d, c))
}

fn to_blocked(eg: &mut EG, x: Id) -> Id {
    add_op(eg, Op::ReorderToBlocked { block: BLOCK }, vec![x])
}

/// `conv(x, w, b?, r?)` (plain or fused): its blocked alternative between reorders.
#[derive(Debug)]
pub struct BlockConv {
    /// Input.
    pub x: Var,
    /// Weights.
    pub w: Var,
    /// Bias.
    pub b: Option<Var>,
    /// Residual.
    pub r: Option<Var>,
}

impl Applier<ENode, GraphAnalysis> for BlockConv {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let x = eg.find(subst[self.x]);
        let w = eg.find(subst[self.w]);
        let b = self.b.map(|b| eg.find(subst[b]));
        let r = self.r.map(|r| eg.find(subst[r]));
        let mut kids = vec![x, w];
        kids.extend(b);
        kids.extend(r);
        let (Some(_), Some(out)) = (nchw_dims(eg[x].data.ty()), nchw_dims(eg[root].data.ty()))
        else {
            return vec![];
        };
        if r.is_some_and(|r| eg[r].data.ty() != eg[root].data.ty()) {
            return vec![];
        }
        // The conv nodes of the class with exactly these children.
        let ops: Vec<Op> = eg[root]
            .iter()
            .filter(|n| {
                n.children.len() == kids.len()
                    && n.children.iter().zip(&kids).all(|(c, k)| eg.find(*c) == *k)
            })
            .filter_map(|n| match n.op()? {
                op @ Op::Conv { group: 1, .. } => Op::fused_conv(op, &Activation::None),
                op @ Op::FusedConv { group: 1, .. } => Some(op.clone()),
                _ => None,
            })
            .collect();
        let mut changed = Vec::new();
        for op in ops {
            let Some(blocked) = Op::blocked(&op, BLOCK) else {
                continue;
            };
            let xb = to_blocked(eg, x);
            let mut args = vec![xb, w, b.unwrap_or_else(|| absent(eg))];
            if let Some(r) = r {
                args.push(to_blocked(eg, r));
            }
            let y = add_op(eg, blocked, args);
            let from = Op::ReorderFromBlocked {
                block: BLOCK,
                channels: out.1 as i64,
            };
            let back = add_op(eg, from, vec![y]);
            if union_typed(eg, root, back) {
                changed.push(root);
            }
        }
        changed
    }
}

/// Whether a unary op maps 0 to 0 (so it keeps a blocked tensor's padding zero).
fn keeps_zero(op: &Op) -> bool {
    matches!(
        op,
        Op::Identity {}
            | Op::Relu {}
            | Op::LeakyRelu { .. }
            | Op::Neg {}
            | Op::Abs {}
            | Op::Tanh {}
            | Op::HardSwish {}
            | Op::Swish { .. }
            | Op::Gelu { .. }
            | Op::Elu { .. }
            | Op::Selu { .. }
    )
}

/// A constant operand broadcasting per channel into `[1, C, 1, 1]` (a scalar, `[C, 1, 1]`,
/// `[1, C, 1, 1]`, ...), as `[1, C, 1, 1]` reordered to blocked.
fn blocked_channel_const(t: &Tensor, channels: usize) -> Option<Tensor> {
    if t.dtype() != DType::F32 || t.shape().len() > 4 {
        return None;
    }
    let mut full = vec![1usize; 4 - t.shape().len()];
    full.extend_from_slice(t.shape());
    let per_channel = full
        .iter()
        .enumerate()
        .all(|(i, &d)| d == 1 || (i == 1 && d == channels));
    if !per_channel {
        return None;
    }
    let v = t.to_f64_vec();
    let data: Vec<f32> = (0..channels)
        .map(|c| {
            v.get(if v.len() == 1 { 0 } else { c })
                .copied()
                .unwrap_or(0.0) as f32
        })
        .collect();
    let t = Tensor::from_vec(&[1, channels, 1, 1], data).ok()?;
    crate::eval::blocked::to_blocked(&t, BLOCK).ok()
}

/// `reorder_to(z)`: for each op of `z`'s class a blocked region may contain, the op on
/// blocked operands (see the module docs).
#[derive(Debug)]
pub struct Push {
    /// The reordered class.
    pub z: Var,
}

impl Applier<ENode, GraphAnalysis> for Push {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let z = eg.find(subst[self.z]);
        let Some((_, zc)) = nchw_dims(eg[z].data.ty()) else {
            return vec![];
        };
        let block_ok = eg[root]
            .iter()
            .any(|n| matches!(n.op(), Some(Op::ReorderToBlocked { block: BLOCK })));
        if !block_ok {
            return vec![];
        }
        let zty = eg[z].data.ty().cloned();
        let nodes: Vec<ENode> = eg[z].nodes.clone();
        let mut new = Vec::new();
        for n in nodes {
            let Some(op) = n.op() else { continue };
            let kids: Vec<Id> = n.children.iter().map(|c| eg.find(*c)).collect();
            let made = match op {
                op if keeps_zero(op) && kids.len() == 1 => {
                    let a = to_blocked(eg, kids[0]);
                    Some(add_op(eg, op.clone(), vec![a]))
                }
                Op::Clip {} if kids.len() == 3 => {
                    let bound = |eg: &EG, i: usize| {
                        constant(eg, kids[i])
                            .filter(|t| t.len() == 1)
                            .map(|t| t.to_f64_vec()[0])
                    };
                    match (bound(eg, 1), bound(eg, 2)) {
                        (Some(lo), Some(hi)) if lo <= 0.0 && hi >= 0.0 => {
                            let a = to_blocked(eg, kids[0]);
                            Some(add_op(eg, Op::Clip {}, vec![a, kids[1], kids[2]]))
                        }
                        _ => None,
                    }
                }
                Op::Add {} | Op::Sub {} | Op::Mul {} | Op::Max {} | Op::Min {}
                    if kids.len() == 2 =>
                {
                    let mut args = Vec::with_capacity(2);
                    for &k in &kids {
                        if eg[k].data.ty() == zty.as_ref() && eg[k].data.tensor().is_none() {
                            args.push(to_blocked(eg, k));
                        } else if let Some(c) =
                            constant(eg, k).and_then(|t| blocked_channel_const(&t, zc))
                        {
                            args.push(add_const(eg, c));
                        } else {
                            break;
                        }
                    }
                    (args.len() == 2).then(|| add_op(eg, op.clone(), args))
                }
                Op::MaxPool { .. } | Op::AveragePool { .. } | Op::GlobalAveragePool {}
                    if kids.len() == 1 && matches!(&n.head, Head::Op(k) if k.n_out == 1) =>
                {
                    Op::blocked(op, BLOCK).map(|b| {
                        let a = to_blocked(eg, kids[0]);
                        add_op(eg, b, vec![a])
                    })
                }
                Op::Concat { axis } if (*axis == 1 || *axis == -3) && !kids.is_empty() => {
                    let whole = kids.iter().all(|&k| {
                        nchw_dims(eg[k].data.ty()).is_some_and(|(_, c)| c % BLOCK as usize == 0)
                    });
                    whole.then(|| {
                        let parts: Vec<Id> = kids.iter().map(|&k| to_blocked(eg, k)).collect();
                        add_op(eg, Op::Concat { axis: 1 }, parts)
                    })
                }
                _ => None,
            };
            new.extend(made);
        }
        new.into_iter()
            .filter(|&n| union_typed(eg, root, n))
            .map(|_| root)
            .collect()
    }
}

/// `op(reorder_from(y)) = reorder_from(op'(y))` for a pool or a unary op of the class: exact
/// whatever `y`'s padding lanes hold, since the op works per channel and the reorder drops
/// them.
#[derive(Debug)]
pub struct Pull {
    /// The blocked class.
    pub y: Var,
}

impl Applier<ENode, GraphAnalysis> for Pull {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let y = eg.find(subst[self.y]);
        if nchw_dims(eg[root].data.ty()).is_none() {
            return vec![];
        }
        let mut todo = Vec::new();
        for n in eg[root].iter() {
            let (Some(op), [mid]) = (n.op(), n.children.as_slice()) else {
                continue;
            };
            if !matches!(&n.head, Head::Op(k) if k.n_out == 1) {
                continue;
            }
            for m in eg[*mid].iter() {
                if let Some(Op::ReorderFromBlocked {
                    block: BLOCK,
                    channels,
                }) = m.op()
                {
                    if m.children.first().is_some_and(|c| eg.find(*c) == y) {
                        todo.push((op.clone(), *channels));
                    }
                }
            }
        }
        let mut changed = Vec::new();
        for (op, channels) in todo {
            let blocked = if keeps_zero(&op) {
                op
            } else if let Some(b) = Op::blocked(&op, BLOCK) {
                b
            } else {
                continue;
            };
            let inner = add_op(eg, blocked, vec![y]);
            let back = add_op(
                eg,
                Op::ReorderFromBlocked {
                    block: BLOCK,
                    channels,
                },
                vec![inner],
            );
            if union_typed(eg, root, back) {
                changed.push(root);
            }
        }
        changed
    }
}

/// `reorder_to(reorder_from(y)) = y` (see the module docs).
#[derive(Debug)]
pub struct Cancel {
    /// The blocked class.
    pub y: Var,
}

impl Applier<ENode, GraphAnalysis> for Cancel {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let y = eg.find(subst[self.y]);
        if eg.find(root) == y || eg[y].data.ty() != eg[root].data.ty() {
            return vec![];
        }
        // Every (reorder_to, reorder_from) pair of this match with one block.
        let mut pair = None;
        for n in eg[root].iter() {
            let Some(Op::ReorderToBlocked { block }) = n.op() else {
                continue;
            };
            let Some(&mid) = n.children.first() else {
                continue;
            };
            for m in eg[mid].iter() {
                if let Some(Op::ReorderFromBlocked {
                    block: b2,
                    channels,
                }) = m.op()
                {
                    if b2 == block && m.children.first().is_some_and(|c| eg.find(*c) == y) {
                        pair = Some((*block, *channels));
                    }
                }
            }
        }
        let Some((block, channels)) = pair else {
            return vec![];
        };
        let no_padding = block > 0 && channels % block == 0;
        let zero_padded = eg[y].iter().any(|n| match n.op() {
            Some(op @ Op::ReorderToBlocked { .. }) => *op == Op::ReorderToBlocked { block },
            Some(op) => op
                .unblock()
                .is_some_and(|u| u.is_ok_and(|u| u.block as i64 == block)),
            None => false,
        });
        if !(no_padding || zero_padded) {
            return vec![];
        }
        if union_typed(eg, root, y) {
            vec![root]
        } else {
            vec![]
        }
    }
}

/// Whether a type is a blocked one (`[N, Cb, H, W, BLOCK]`), for tests.
pub fn is_blocked_type(t: &TypeInfo) -> bool {
    t.shape
        .dims()
        .is_some_and(|d| d.len() == 5 && d[4] == Dim::Known(BLOCK as usize))
}
