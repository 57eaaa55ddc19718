//! BatchNorm and channel arithmetic.
//!
//! - An inference BatchNormalization with constant statistics is a per-channel scale and
//!   shift: `x * s + t` with `s = scale / sqrt(var + eps)` and `t = bias - mean * s`.
//! - A constant per-output-channel Mul after a Conv, ConvTranspose, MatMul or Gemm with
//!   constant weights scales the weights (and bias); a constant per-channel Add after a Conv
//!   or ConvTranspose shifts its bias.
//!
//! Together they fold a BatchNormalization into the preceding layer. Folded constants are
//! computed in f64 and rounded once to the weights' type. When the producer's output has
//! another consumer the folded layer would be computed twice, and the DAG-aware extraction
//! keeps the unfolded form.

use egg::{rewrite as rw, Applier, Id, PatternAst, Subst, Symbol, Var};

use super::{add_const, add_op, constant, is_float, materialize, var};
use crate::egraph::{ENode, GraphAnalysis, Rewrite, EG};
use crate::ir::{Op, Tensor};

/// The BatchNorm rule set.
#[rustfmt::skip]
pub fn rules() -> Vec<Rewrite> { vec![
    rw!("batchnorm-to-scale-shift"; "(batch_normalization ?x ?s ?b ?m ?v)" => { ScaleShift {
        x: var("?x"), scale: var("?s"), bias: var("?b"), mean: var("?m"), var: var("?v") } }),
    rw!("mul-into-weights";       "(mul ?y ?c)" => { FoldChannel { y: var("?y"), c: var("?c"), add: false } }),
    rw!("mul-into-weights-left";  "(mul ?c ?y)" => { FoldChannel { y: var("?y"), c: var("?c"), add: false } }),
    rw!("add-into-bias";          "(add ?y ?c)" => { FoldChannel { y: var("?y"), c: var("?c"), add: true } }),
    rw!("add-into-bias-left";     "(add ?c ?y)" => { FoldChannel { y: var("?y"), c: var("?c"), add: true } }),
]}

/// `batch_normalization(x, scale, bias, mean, var)` in inference mode with constant
/// parameters: `add(mul(x, s), t)`, with `s`, `t` shaped `[C, 1, ..., 1]` to broadcast over
/// axis 1.
#[derive(Debug)]
pub struct ScaleShift {
    /// x.
    pub x: Var,
    /// Scale.
    pub scale: Var,
    /// Bias.
    pub bias: Var,
    /// Running mean.
    pub mean: Var,
    /// Running variance.
    pub var: Var,
}

impl Applier<ENode, GraphAnalysis> for ScaleShift {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let x = eg.find(subst[self.x]);
        let Some(ty) = eg[x].data.ty().cloned() else {
            return vec![];
        };
        let Some(rank) = ty.shape.rank() else {
            return vec![];
        };
        let eps: Vec<f32> = eg[root]
            .iter()
            .filter(|n| n.children.len() == 5)
            .filter_map(|n| match n.op() {
                Some(Op::BatchNormalization {
                    epsilon,
                    training_mode: 0,
                    ..
                }) => Some(*epsilon),
                _ => None,
            })
            .collect();
        let params: Option<Vec<Vec<f64>>> = [self.scale, self.bias, self.mean, self.var]
            .iter()
            .map(|v| constant(eg, subst[*v]).map(|t| t.to_f64_vec()))
            .collect();
        let Some(p) = params else { return vec![] };
        let c = p[0].len();
        if rank < 2 || !is_float(ty.dtype) || p.iter().any(|v| v.len() != c) {
            return vec![];
        }
        let mut shape = vec![c];
        shape.resize(rank - 1, 1);
        let mut changed = vec![];
        for e in eps {
            let s: Vec<f64> = (0..c)
                .map(|i| p[0][i] / (p[3][i] + e as f64).sqrt())
                .collect();
            let t: Vec<f64> = (0..c).map(|i| p[1][i] - p[2][i] * s[i]).collect();
            let tensor = |v: Vec<f64>| {
                Tensor::from_vec(&shape, v)
                    .expect("length matches shape")
                    .cast(ty.dtype)
            };
            let (s, t) = (add_const(eg, tensor(s)), add_const(eg, tensor(t)));
            let m = add_op(eg, Op::Mul {}, vec![x, s]);
            let a = add_op(eg, Op::Add {}, vec![m, t]);
            if super::union_typed(eg, root, a) {
                changed.push(a);
            }
        }
        changed
    }
}

/// The per-channel factors of a constant `c` broadcast against an output of rank `rank`
/// whose channel axis is `axis` with `channels` channels: `Some(vec)` of length `channels`
/// when `c` varies along that axis only (`None` when `channels` is 0: the dim is unknown).
fn per_channel(c: &Tensor, rank: usize, axis: usize, channels: usize) -> Option<Vec<f64>> {
    let shape = c.shape();
    if shape.len() > rank || channels == 0 {
        return None;
    }
    let offset = rank - shape.len();
    let mut along = 1;
    for (i, &d) in shape.iter().enumerate() {
        if offset + i == axis {
            along = d;
        } else if d != 1 {
            return None;
        }
    }
    let v = c.to_f64_vec();
    match along {
        1 => Some(vec![v[0]; channels]),
        n if n == channels => Some(v),
        _ => None,
    }
}

/// `y * c` or `y + c` with `c` constant per output channel and `y` a Conv, ConvTranspose,
/// MatMul or Gemm with constant weights: the same op with folded weights or bias.
#[derive(Debug)]
pub struct FoldChannel {
    /// The producer's class.
    pub y: Var,
    /// The constant's class.
    pub c: Var,
    /// Add (fold into the bias) rather than Mul (scale weights and bias).
    pub add: bool,
}

/// Scales or shifts one layer; returns its new inputs.
struct Fold<'a> {
    k: &'a [f64],
    add: bool,
}

impl Fold<'_> {
    /// Weights with output channel `o` at index `[.., o, ..]` given by `channel(i)` for flat
    /// index `i`, scaled by `k[o]`.
    fn scale(&self, w: &Tensor, channel: impl Fn(usize) -> usize) -> Tensor {
        let v: Vec<f64> = w
            .to_f64_vec()
            .iter()
            .enumerate()
            .map(|(i, x)| x * self.k[channel(i)])
            .collect();
        Tensor::from_vec(w.shape(), v)
            .expect("same length")
            .cast(w.dtype())
    }

    /// The bias after the fold (`None`: no bias before and nothing to add).
    fn bias(&self, b: Option<&Tensor>, dtype: crate::ir::DType) -> Option<Tensor> {
        let n = self.k.len();
        let old: Vec<f64> = match b {
            Some(b) if b.len() == n => b.to_f64_vec(),
            Some(_) => return None,
            None if !self.add => return None,
            None => vec![0.0; n],
        };
        let new: Vec<f64> = old
            .iter()
            .zip(self.k)
            .map(|(b, k)| if self.add { b + k } else { b * k })
            .collect();
        Some(
            Tensor::from_vec(&[n], new)
                .expect("same length")
                .cast(dtype),
        )
    }
}

impl Applier<ENode, GraphAnalysis> for FoldChannel {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let y = eg.find(subst[self.y]);
        let Some(c) = constant(eg, subst[self.c]) else {
            return vec![];
        };
        let (Some(ty), Some(root_ty)) = (eg[y].data.ty().cloned(), eg[root].data.ty()) else {
            return vec![];
        };
        // Only the rank and the channel dim need to be known (a batch dim may be symbolic).
        let Some(dims) = ty.shape.dims() else {
            return vec![];
        };
        let dims: Vec<usize> = dims.iter().map(|d| d.known().unwrap_or(0)).collect();
        if &ty != root_ty || !is_float(ty.dtype) || c.dtype() != ty.dtype || dims.len() < 2 {
            return vec![];
        }
        let rank = dims.len();
        let nodes: Vec<ENode> = eg[y].nodes.clone();
        let mut new = Vec::new();
        for n in nodes {
            let Some(op) = n.op().cloned() else { continue };
            let layer = matches!(
                op,
                Op::Conv { .. } | Op::ConvTranspose { .. } | Op::MatMul {} | Op::Gemm { .. }
            );
            if !layer || (self.add && matches!(op, Op::MatMul {} | Op::Gemm { .. })) {
                continue;
            }
            let kids = n.children.clone();
            let w = match kids.get(1).and_then(|&w| materialize(eg, w)) {
                Some(w) if w.dtype() == ty.dtype => w,
                _ => continue,
            };
            let bias = match kids.get(2) {
                Some(&b) if !eg[b].data.absent => match constant(eg, b) {
                    Some(b) => Some(b),
                    None => continue,
                },
                _ => None,
            };
            let ws = w.shape().to_vec();
            let folded: Option<Vec<Option<Tensor>>> = match &op {
                Op::Conv { .. } => {
                    let m = dims[1];
                    per_channel(&c, rank, 1, m).and_then(|k| {
                        let f = Fold {
                            k: &k,
                            add: self.add,
                        };
                        let per = ws.iter().skip(1).product::<usize>().max(1);
                        let w2 = (!self.add).then(|| f.scale(&w, |i| i / per));
                        Some(vec![w2, f.bias(bias.as_ref(), ty.dtype)])
                    })
                }
                Op::ConvTranspose { group, .. } => {
                    let m = dims[1];
                    let g = usize::try_from(*group).ok().filter(|g| *g > 0);
                    per_channel(&c, rank, 1, m).zip(g).and_then(|(k, g)| {
                        // Weights are [C, M/g, k...]; input channel ci is in group ci / (C/g).
                        let (cin, mg) = (ws[0], *ws.get(1)?);
                        let per = ws.iter().skip(2).product::<usize>().max(1);
                        let f = Fold {
                            k: &k,
                            add: self.add,
                        };
                        let w2 = (!self.add).then(|| {
                            f.scale(&w, |i| {
                                let (ci, j) = (i / (mg * per), (i / per) % mg);
                                (ci / (cin / g).max(1)) * mg + j
                            })
                        });
                        Some(vec![w2, f.bias(bias.as_ref(), ty.dtype)])
                    })
                }
                Op::MatMul {} if !self.add && ws.len() == 2 => {
                    let n_out = ws[1];
                    per_channel(&c, rank, rank - 1, n_out).map(|k| {
                        let f = Fold { k: &k, add: false };
                        vec![Some(f.scale(&w, |i| i % n_out)), None]
                    })
                }
                Op::Gemm { trans_b, .. } if !self.add && ws.len() == 2 => {
                    let n_out = dims[1];
                    per_channel(&c, rank, rank - 1, n_out).and_then(|k| {
                        let f = Fold { k: &k, add: false };
                        let w2 = if *trans_b != 0 {
                            f.scale(&w, |i| i / ws[1])
                        } else {
                            f.scale(&w, |i| i % ws[1])
                        };
                        // Gemm's C broadcasts to [M, N]: scale it as a full [M, N] tensor
                        // unless it is per column.
                        let c2 = match &bias {
                            None => None,
                            Some(b) => {
                                let bs = b.shape();
                                let per_col = bs.len() <= 1 || bs[0] == 1;
                                if !per_col || b.len() != n_out && b.len() != 1 {
                                    return None;
                                }
                                let bv = b.to_f64_vec();
                                let v: Vec<f64> =
                                    (0..n_out).map(|j| bv[j % bv.len()] * k[j]).collect();
                                Some(Tensor::from_vec(&[n_out], v).ok()?.cast(ty.dtype))
                            }
                        };
                        Some(vec![Some(w2), c2])
                    })
                }
                _ => None,
            };
            let Some(folded) = folded else { continue };
            let mut kids2 = kids.clone();
            if let Some(Some(w2)) = folded.first() {
                kids2[1] = add_const(eg, w2.clone());
            }
            if let Some(Some(b2)) = folded.get(1) {
                let b = add_const(eg, b2.clone());
                if kids2.len() > 2 {
                    kids2[2] = b;
                } else {
                    kids2.push(b);
                }
            }
            if kids2 == kids {
                continue;
            }
            new.push(add_op(eg, op, kids2));
        }
        new.into_iter()
            .filter(|&n| super::union_typed(eg, root, n))
            .collect()
    }
}
