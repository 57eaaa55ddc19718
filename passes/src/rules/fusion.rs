//! Fusion: Conv and MatMul/Gemm absorb their epilogue (bias, a residual Add, an activation)
//! into graphc's `fused_conv` / `fused_mat_mul` (see `ir::fused`), and multi-op patterns are
//! recognized as the single ops they compute (SiLU, GELU in its Erf form, HardSwish in its
//! Clip form, LayerNorm, scaled dot-product attention with an optional additive mask as
//! ONNX Attention, and a Softmax of `x + mask` as `fused_softmax`).
//!
//! Whether a fusion pays is the extractor's call: when a Conv's output has a second consumer,
//! the fused node and the plain Conv would both be needed, and the DAG-aware cost keeps the
//! Conv. Rules only check that the epilogue keeps the producer's type (no broadcast that
//! grows the result).

use std::f64::consts::{FRAC_1_SQRT_2, SQRT_2};

use egg::{rewrite as rw, Applier, Id, PatternAst, Subst, Symbol, Var};

use super::{absent, add_op, constant, is_splat_near, is_splat_of, same_type_as_root, var};
use crate::egraph::{ENode, GraphAnalysis, Rewrite, EG};
use crate::ir::fused::Activation;
use crate::ir::{Dim, Op, Shape};

/// The fusion rule set.
#[rustfmt::skip]
pub fn rules() -> Vec<Rewrite> {
    let mut r = vec![
        // Patterns computing one standard op.
        rw!("silu";          "(mul ?x (sigmoid ?x))" => "(swish ?x)"),
        rw!("silu-left";     "(mul (sigmoid ?x) ?x)" => "(swish ?x)"),
        rw!("gelu-erf";      "(mul (mul ?x (add (erf (div ?x ?s)) ?one)) ?half)" => "(gelu ?x)"
            if is_splat_near("?s", SQRT_2, 1e-6) if is_splat_of("?one", 1.0) if is_splat_of("?half", 0.5)),
        rw!("gelu-erf-half-first"; "(mul (mul ?x ?half) (add (erf (div ?x ?s)) ?one))" => "(gelu ?x)"
            if is_splat_near("?s", SQRT_2, 1e-6) if is_splat_of("?one", 1.0) if is_splat_of("?half", 0.5)),
        rw!("gelu-erf-mul";  "(mul (mul ?x (add (erf (mul ?x ?s)) ?one)) ?half)" => "(gelu ?x)"
            if is_splat_near("?s", FRAC_1_SQRT_2, 1e-6) if is_splat_of("?one", 1.0) if is_splat_of("?half", 0.5)),
        rw!("hard-swish-clip"; "(div (mul ?x (clip (add ?x ?three) ?zero ?six)) ?six2)" => "(hard_swish ?x)"
            if is_splat_of("?three", 3.0) if is_splat_of("?zero", 0.0) if is_splat_of("?six", 6.0) if is_splat_of("?six2", 6.0)),
        rw!("hard-swish-clip-mul"; "(mul ?x (div (clip (add ?x ?three) ?zero ?six) ?six2))" => "(hard_swish ?x)"
            if is_splat_of("?three", 3.0) if is_splat_of("?zero", 0.0) if is_splat_of("?six", 6.0) if is_splat_of("?six2", 6.0)),
        rw!("layer-norm";
            "(add (mul (div (sub ?x (reduce_mean ?x ?a1)) (sqrt (add (reduce_mean (pow (sub ?x (reduce_mean ?x ?a1)) ?two) ?a2) ?eps))) ?gamma) ?beta)"
            => { LayerNorm { x: var("?x"), a1: var("?a1"), a2: var("?a2"), eps: var("?eps"), gamma: var("?gamma"), beta: var("?beta") } }
            if is_splat_of("?two", 2.0) if same_type_as_root("?x")),
        rw!("attention-masked"; "(mat_mul (softmax (add (mul (mat_mul ?q ?kt) ?s) ?m)) ?v)"
            => { AttentionOp { q: var("?q"), kt: var("?kt"), v: var("?v"), s: var("?s"), m: Some(var("?m")) } }),
        rw!("attention";        "(mat_mul (softmax (mul (mat_mul ?q ?kt) ?s)) ?v)"
            => { AttentionOp { q: var("?q"), kt: var("?kt"), v: var("?v"), s: var("?s"), m: None } }),
        rw!("softmax-mask";      "(softmax (add ?x ?m))" => { MaskedSoftmax { x: var("?x"), m: var("?m") } }),
        rw!("softmax-mask-left"; "(softmax (add ?m ?x))" => { MaskedSoftmax { x: var("?x"), m: var("?m") } }),
        rw!("transpose-transpose"; "(transpose ?t)" => { super::algebra::ComposeTranspose { t: var("?t") } }),
        rw!("transpose-splat"; "(transpose ?t)" => { super::algebra::TransposeSplat { t: var("?t") } }),
        // Gemm as a matrix product with a bias.
        rw!("gemm-to-fused-2"; "(gemm ?a ?b)" => { GemmToFused { a: var("?a"), b: var("?b"), c: None } }),
        rw!("gemm-to-fused-3"; "(gemm ?a ?b ?c)" => { GemmToFused { a: var("?a"), b: var("?b"), c: Some(var("?c")) } }),
        // Epilogues.
        rw!("fuse-add";      "(add ?y ?r)" => { FuseAdd { y: var("?y"), r: var("?r") } }),
        rw!("fuse-add-left"; "(add ?r ?y)" => { FuseAdd { y: var("?y"), r: var("?r") } }),
        rw!("fuse-clip";     "(clip ?y ?lo ?hi)" => { FuseActivation { y: var("?y"), bounds: Some((var("?lo"), var("?hi"))) } }),
    ];
    for act in ["relu", "leaky_relu", "sigmoid", "hard_sigmoid", "hard_swish", "swish", "gelu", "tanh"] {
        let name = format!("fuse-{act}");
        let pattern: egg::Pattern<ENode> = format!("({act} ?y)").parse().expect("constant pattern");
        r.push(egg::Rewrite::new(name, pattern, FuseActivation { y: var("?y"), bounds: None }).expect("valid rule"));
    }
    r
}

/// Unions `root` with each of `new` and returns the classes that changed.
fn union_all(eg: &mut EG, root: Id, new: Vec<Id>) -> Vec<Id> {
    new.into_iter()
        .filter(|&n| super::union_typed(eg, root, n))
        .collect()
}

/// `act(y)` where `y` is a Conv, MatMul or a fused op without activation: the fused op with
/// the activation. `bounds` are Clip's min and max, which must be constant scalars.
#[derive(Debug)]
pub struct FuseActivation {
    /// The producer's class.
    pub y: Var,
    /// Clip's bound classes.
    pub bounds: Option<(Var, Var)>,
}

impl Applier<ENode, GraphAnalysis> for FuseActivation {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let y = eg.find(subst[self.y]);
        let act = match self.bounds {
            Some((lo, hi)) => {
                let scalar = |v: Var| {
                    constant(eg, subst[v])
                        .filter(|t| t.len() == 1)
                        .map(|t| t.to_f64_vec()[0] as f32)
                };
                match (scalar(lo), scalar(hi)) {
                    (Some(lo), Some(hi)) if lo <= hi => Activation::Clip(lo, hi),
                    _ => return vec![],
                }
            }
            None => {
                let found = eg[root].iter().find_map(|n| {
                    (n.children.len() == 1 && eg.find(n.children[0]) == y)
                        .then(|| n.op().and_then(Activation::of_op))
                        .flatten()
                });
                match found {
                    Some(a) => a,
                    None => return vec![],
                }
            }
        };
        let mut new = Vec::new();
        let nodes: Vec<ENode> = eg[y].nodes.clone();
        for n in nodes {
            let Some(op) = n.op() else { continue };
            let fused = match op {
                Op::Conv { .. } => Op::fused_conv(op, &act),
                Op::MatMul {} => Some(Op::fused_mat_mul(&act)),
                Op::FusedConv { .. } | Op::FusedMatMul { .. }
                    if op.activation() == Some(Activation::None) =>
                {
                    op.with_activation(&act)
                }
                _ => None,
            };
            if let Some(f) = fused {
                new.push(add_op(eg, f, n.children.clone()));
            }
        }
        union_all(eg, root, new)
    }
}

/// `y + r` where `y` is a Conv, MatMul or fused op without activation or residual: a
/// constant `r` becomes a MatMul's bias, anything else of `y`'s exact type the residual.
/// (A constant per-channel `r` after a Conv is folded into its bias by the BatchNorm rules.)
#[derive(Debug)]
pub struct FuseAdd {
    /// The producer's class.
    pub y: Var,
    /// The addend's class.
    pub r: Var,
}

impl Applier<ENode, GraphAnalysis> for FuseAdd {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let (y, r) = (eg.find(subst[self.y]), eg.find(subst[self.r]));
        let (Some(ty), Some(rty), Some(root_ty)) =
            (eg[y].data.ty(), eg[r].data.ty(), eg[root].data.ty())
        else {
            return vec![];
        };
        // Equal types with no unknown dim mean equal shapes (symbolic dims compare by name).
        let no_unknown = |s: &Shape| {
            s.dims()
                .is_some_and(|d| d.iter().all(|d| !matches!(d, Dim::Unknown)))
        };
        if ty != root_ty || !no_unknown(&ty.shape) || y == r {
            return vec![];
        }
        let r_is_const = eg[r].data.tensor().is_some();
        let r_is_residual = !r_is_const && rty == ty;
        let mut new = Vec::new();
        let nodes: Vec<ENode> = eg[y].nodes.clone();
        for n in nodes {
            let Some(op) = n.op() else { continue };
            let no_act = op.activation().is_none_or(|a| a == Activation::None);
            let mut kids = n.children.clone();
            let fused = match op {
                // A product without bias: a constant is its bias, else the residual.
                Op::MatMul {} | Op::FusedMatMul { .. } if no_act && kids.len() == 2 => {
                    if r_is_const {
                        kids.push(r);
                    } else if r_is_residual {
                        let a = absent(eg);
                        kids.extend([a, r]);
                    } else {
                        continue;
                    }
                    Op::fused_mat_mul(&Activation::None)
                }
                Op::FusedMatMul { .. } if no_act && kids.len() == 3 && r_is_residual => {
                    kids.push(r);
                    op.clone()
                }
                Op::Conv { .. } | Op::FusedConv { .. }
                    if no_act && kids.len() <= 3 && r_is_residual =>
                {
                    if kids.len() == 2 {
                        let a = absent(eg);
                        kids.push(a);
                    }
                    kids.push(r);
                    match op {
                        Op::Conv { .. } => match Op::fused_conv(op, &Activation::None) {
                            Some(f) => f,
                            None => continue,
                        },
                        _ => op.clone(),
                    }
                }
                _ => continue,
            };
            new.push(add_op(eg, fused, kids));
        }
        union_all(eg, root, new)
    }
}

/// `gemm(a, b, c)` with `alpha = beta = 1` and `a` not transposed: `fused_mat_mul(a, b', c)`
/// with `b' = b` or `transpose(b)`.
#[derive(Debug)]
pub struct GemmToFused {
    /// A.
    pub a: Var,
    /// B.
    pub b: Var,
    /// C, when present.
    pub c: Option<Var>,
}

impl Applier<ENode, GraphAnalysis> for GemmToFused {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let (a, b) = (eg.find(subst[self.a]), eg.find(subst[self.b]));
        let c = self.c.map(|c| eg.find(subst[c]));
        let arity = 2 + c.is_some() as usize;
        let trans: Vec<bool> = eg[root]
            .iter()
            .filter(|n| n.children.len() == arity)
            .filter_map(|n| match n.op() {
                Some(Op::Gemm {
                    alpha,
                    beta,
                    trans_a: 0,
                    trans_b,
                }) if *alpha == 1.0 && (*beta == 1.0 || c.is_none()) => Some(*trans_b != 0),
                _ => None,
            })
            .collect();
        let mut new = Vec::new();
        for t in trans {
            let b2 = if t {
                add_op(eg, Op::Transpose { perm: None }, vec![b])
            } else {
                b
            };
            let mut kids = vec![a, b2];
            kids.extend(c);
            new.push(add_op(eg, Op::fused_mat_mul(&Activation::None), kids));
        }
        union_all(eg, root, new)
    }
}

/// The LayerNorm chain `(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * gamma + beta`
/// over the trailing axes: `layer_normalization(x, gamma, beta)`. Both means must keep
/// dims (checked by finding the default-attribute `reduce_mean` node in the e-graph), reduce
/// the same trailing axes, and `eps`, `gamma`, `beta` must fit LayerNormalization: `eps` a
/// constant scalar, `gamma` and `beta` no larger than the normalized shape.
#[derive(Debug)]
pub struct LayerNorm {
    /// x.
    pub x: Var,
    /// The first mean's axes.
    pub a1: Var,
    /// The variance's axes.
    pub a2: Var,
    /// Epsilon.
    pub eps: Var,
    /// Scale.
    pub gamma: Var,
    /// Shift.
    pub beta: Var,
}

impl Applier<ENode, GraphAnalysis> for LayerNorm {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let x = eg.find(subst[self.x]);
        let Some(dims) = eg[x].data.ty().and_then(|t| t.shape.as_known()) else {
            return vec![];
        };
        let rank = dims.len() as i64;
        let axes = |v: Var| -> Option<Vec<i64>> {
            let mut a: Vec<i64> = constant(eg, subst[v])?
                .to_i64_vec()
                .ok()?
                .into_iter()
                .map(|a| if a < 0 { a + rank } else { a })
                .collect();
            a.sort_unstable();
            Some(a)
        };
        let (Some(a1), Some(a2)) = (axes(self.a1), axes(self.a2)) else {
            return vec![];
        };
        // Trailing, contiguous axes: [rank-k, ..., rank-1].
        let k = a1.len() as i64;
        let trailing = k > 0 && a1.iter().copied().eq(rank - k..rank);
        if !trailing || a1 != a2 {
            return vec![];
        }
        // Both means keep dims: the default-attribute reduce_mean(x, a1) exists.
        let mean = super::op_node(
            Op::ReduceMean {
                keepdims: 1,
                noop_with_empty_axes: 0,
            },
            vec![x, eg.find(subst[self.a1])],
        );
        if eg.lookup(mean).is_none() {
            return vec![];
        }
        let eps = match constant(eg, subst[self.eps]) {
            Some(t) if t.len() == 1 => t.to_f64_vec()[0] as f32,
            _ => return vec![],
        };
        let normalized = &dims[(rank - k) as usize..];
        let fits = |v: Var| {
            eg[subst[v]]
                .data
                .ty()
                .and_then(|t| t.shape.as_known())
                .is_some_and(|s| {
                    s.len() <= normalized.len()
                        && s.iter()
                            .rev()
                            .zip(normalized.iter().rev())
                            .all(|(a, b)| a == b || *a == 1)
                })
        };
        if !fits(self.gamma) || !fits(self.beta) {
            return vec![];
        }
        let op = Op::LayerNormalization {
            axis: rank - k,
            epsilon: eps,
            stash_type: 1,
        };
        let kids = vec![x, eg.find(subst[self.gamma]), eg.find(subst[self.beta])];
        let new = add_op(eg, op, kids);
        union_all(eg, root, vec![new])
    }
}

/// `matmul(softmax(matmul(q, kt) * s + m, axis=-1), v)` on 4-D `[batch, heads, seq, dim]`
/// tensors: `attention(q, transpose(kt), v, m) {scale: s}`. The chain is re-found node by
/// node with the attributes it needs (Softmax over the last axis, not `coerce_2d`), since
/// patterns match ops by name only.
#[derive(Debug)]
pub struct AttentionOp {
    /// Queries.
    pub q: Var,
    /// Keys, transposed.
    pub kt: Var,
    /// Values.
    pub v: Var,
    /// The scale.
    pub s: Var,
    /// The additive mask.
    pub m: Option<Var>,
}

impl Applier<ENode, GraphAnalysis> for AttentionOp {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let (q, kt, v, s) = (subst[self.q], subst[self.kt], subst[self.v], subst[self.s]);
        let rank4 = |id: Id| {
            eg[id]
                .data
                .ty()
                .and_then(|t| t.shape.rank())
                .is_some_and(|r| r == 4)
        };
        let float = eg[q].data.ty().is_some_and(|t| super::is_float(t.dtype));
        if !float || !rank4(q) || !rank4(kt) || !rank4(v) || !rank4(root) {
            return vec![];
        }
        let scale = match constant(eg, s) {
            Some(t) if t.len() == 1 => t.to_f64_vec()[0] as f32,
            _ => return vec![],
        };
        if let Some(m) = self.m {
            let fits = eg[subst[m]].data.ty().is_some_and(|t| {
                super::is_float(t.dtype) && t.shape.rank().is_some_and(|r| r <= 4)
            });
            if !fits {
                return vec![];
            }
        }
        let node = super::op_node;
        // Re-find the chain: matmul(q, kt) -> mul(., s) -> add(., m) -> softmax(axis -1) -> root.
        let Some(qk) = eg.lookup(node(Op::MatMul {}, vec![q, kt])) else {
            return vec![];
        };
        let Some(mut x) = eg.lookup(node(Op::Mul {}, vec![qk, s])) else {
            return vec![];
        };
        if let Some(m) = self.m {
            let Some(a) = eg.lookup(node(Op::Add {}, vec![x, subst[m]])) else {
                return vec![];
            };
            x = a;
        }
        let softmax = [-1, 3].into_iter().find_map(|axis| {
            eg.lookup(node(
                Op::Softmax {
                    axis,
                    coerce_2d: false,
                },
                vec![x],
            ))
        });
        let Some(p) = softmax else { return vec![] };
        if eg
            .lookup(node(Op::MatMul {}, vec![p, v]))
            .map(|r| eg.find(r))
            != Some(eg.find(root))
        {
            return vec![];
        }
        let k = add_op(
            eg,
            Op::Transpose {
                perm: Some(vec![0, 1, 3, 2]),
            },
            vec![kt],
        );
        let mut kids = vec![q, k, v];
        kids.extend(self.m.map(|m| subst[m]));
        let op = Op::Attention {
            is_causal: 0,
            kv_num_heads: None,
            q_num_heads: None,
            qk_matmul_output_mode: 0,
            scale: Some(scale),
            softcap: 0.0,
            softmax_precision: None,
        };
        let new = add_op(eg, op, kids);
        union_all(eg, root, vec![new])
    }
}

/// `softmax(x + m, axis)` (not `coerce_2d`) where the mask broadcasts into `x` without
/// growing it: `fused_softmax(x, m) {axis}`.
#[derive(Debug)]
pub struct MaskedSoftmax {
    /// The scores.
    pub x: Var,
    /// The additive mask.
    pub m: Var,
}

impl Applier<ENode, GraphAnalysis> for MaskedSoftmax {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let (x, m) = (eg.find(subst[self.x]), eg.find(subst[self.m]));
        let same = match (eg[x].data.ty(), eg[root].data.ty()) {
            (Some(a), Some(b)) => {
                a == b
                    && super::is_float(a.dtype)
                    && a.shape
                        .dims()
                        .is_some_and(|d| d.iter().all(|d| !matches!(d, Dim::Unknown)))
            }
            _ => false,
        };
        if !same {
            return vec![];
        }
        // The Softmax nodes of the class that read this very sum.
        let add = |a: Id, b: Id| super::op_node(Op::Add {}, vec![a, b]);
        let sums: Vec<Id> = [eg.lookup(add(x, m)), eg.lookup(add(m, x))]
            .into_iter()
            .flatten()
            .map(|s| eg.find(s))
            .collect();
        let axes: Vec<i64> = eg[root]
            .iter()
            .filter(|n| n.children.len() == 1 && sums.contains(&eg.find(n.children[0])))
            .filter_map(|n| match n.op() {
                Some(Op::Softmax {
                    axis,
                    coerce_2d: false,
                }) => Some(*axis),
                _ => None,
            })
            .collect();
        let new: Vec<Id> = axes
            .into_iter()
            .map(|axis| add_op(eg, Op::FusedSoftmax { axis }, vec![x, m]))
            .collect();
        union_all(eg, root, new)
    }
}
