//! Algebra and identities: ops that compute their input (Identity, Dropout in inference,
//! Cast to the same type, x*1, x+0, x-0, x/1, Sum/Mean/Max/Min/Concat of one input, Expand
//! to the same shape, a full-range Slice, Reshape/Flatten/Squeeze/Unsqueeze chains back to
//! the input's shape), compositions of layout ops (Transpose of Transpose, Reshape of
//! Reshape, Flatten as a Reshape), Sum as Add chains, and division by a float constant as
//! multiplication by its reciprocal (which may differ from the division in the last bit).
//!
//! Shape-sensitive identities require the replacement to have exactly the matched class's
//! type, so a constant that broadcasts to a larger shape (x[3] * ones[2,3]) is never
//! dropped. `x + 0` with a `+0.0` constant turns `-0.0` into `+0.0`; the rewrite treats them
//! as equal (the numeric checks compare values, not signs of zero).

use egg::{rewrite as rw, Applier, Id, PatternAst, Subst, Symbol, Var};

use super::{absent_or_false, is_splat_of, same_type_as_root, shape_without_zero, var};
use crate::egraph::{ENode, GraphAnalysis, Rewrite, EG};
use crate::ir::{Op, Tensor};

/// The algebra rule set.
#[rustfmt::skip]
pub fn rules() -> Vec<Rewrite> { vec![
    rw!("identity";             "(identity ?x)"           => "?x"),
    rw!("dropout-inference-1";  "(dropout ?x)"            => "?x"),
    rw!("dropout-inference-2";  "(dropout ?x ?r)"         => "?x"),
    rw!("dropout-inference-3";  "(dropout ?x ?r ?t)"      => "?x" if absent_or_false("?t")),
    rw!("dropout-mask-1";       "(get.0 (dropout/2 ?x))"  => "?x"),
    rw!("dropout-mask-2";       "(get.0 (dropout/2 ?x ?r))" => "?x"),
    rw!("dropout-mask-3";       "(get.0 (dropout/2 ?x ?r ?t))" => "?x" if absent_or_false("?t")),
    rw!("cast-same-type";       "(cast ?x)"               => "?x" if same_type_as_root("?x")),
    rw!("mul-one";              "(mul ?x ?c)"             => "?x" if is_splat_of("?c", 1.0) if same_type_as_root("?x")),
    rw!("mul-one-left";         "(mul ?c ?x)"             => "?x" if is_splat_of("?c", 1.0) if same_type_as_root("?x")),
    rw!("add-zero";             "(add ?x ?c)"             => "?x" if is_splat_of("?c", 0.0) if same_type_as_root("?x")),
    rw!("add-zero-left";        "(add ?c ?x)"             => "?x" if is_splat_of("?c", 0.0) if same_type_as_root("?x")),
    rw!("sub-zero";             "(sub ?x ?c)"             => "?x" if is_splat_of("?c", 0.0) if same_type_as_root("?x")),
    rw!("div-one";              "(div ?x ?c)"             => "?x" if is_splat_of("?c", 1.0) if same_type_as_root("?x")),
    rw!("transpose-transpose";  "(transpose ?t)"          => { ComposeTranspose { t: var("?t") } }),
    rw!("transpose-splat";      "(transpose ?t)"          => { TransposeSplat { t: var("?t") } }),
    rw!("reshape-reshape";      "(reshape (reshape ?x ?a) ?s)" => "(reshape ?x ?s)" if shape_without_zero("?s")),
    rw!("reshape-same-shape";   "(reshape ?x ?s)"         => "?x" if same_type_as_root("?x")),
    rw!("squeeze-unsqueeze";    "(squeeze (unsqueeze ?x ?a) ?b)" => "?x" if same_type_as_root("?x")),
    rw!("squeeze-all-unsqueeze"; "(squeeze (unsqueeze ?x ?a))"  => "?x" if same_type_as_root("?x")),
    rw!("unsqueeze-squeeze";    "(unsqueeze (squeeze ?x ?a) ?b)" => "?x" if same_type_as_root("?x")),
    rw!("sum-one";              "(sum ?x)"                => "?x" if same_type_as_root("?x")),
    rw!("mean-one";             "(mean ?x)"               => "?x" if same_type_as_root("?x")),
    rw!("max-one";              "(max ?x)"                => "?x" if same_type_as_root("?x")),
    rw!("min-one";              "(min ?x)"                => "?x" if same_type_as_root("?x")),
    rw!("concat-one";           "(concat ?x)"             => "?x" if same_type_as_root("?x")),
    rw!("sum-two";              "(sum ?a ?b)"             => "(add ?a ?b)"),
    rw!("sum-three";            "(sum ?a ?b ?c)"          => "(add (add ?a ?b) ?c)"),
    rw!("expand-same-shape";    "(expand ?x ?s)"          => "?x" if same_type_as_root("?x")),
    rw!("slice-full-3";         "(slice ?x ?s ?e)"        => "?x" if same_type_as_root("?x")),
    rw!("slice-full-4";         "(slice ?x ?s ?e ?a)"     => "?x" if same_type_as_root("?x")),
    rw!("slice-full-5";         "(slice ?x ?s ?e ?a ?p)"  => "?x" if same_type_as_root("?x") if all_positive("?p")),
    rw!("flatten-same-shape";   "(flatten ?x)"            => "?x" if same_type_as_root("?x")),
    rw!("flatten-to-reshape";   "(flatten ?x)"            => { ReshapeToRootShape { x: var("?x") } }),
    rw!("div-to-mul";           "(div ?x ?c)"             => "(mul ?x (reciprocal ?c))" if nonzero_float_constant("?c")),
]}

/// `?v` is a constant whose elements are all positive (Slice steps).
fn all_positive(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| {
        eg[s[v]]
            .data
            .tensor()
            .is_some_and(|t| t.to_f64_vec().iter().all(|x| *x > 0.0))
    }
}

/// `?v` is a floating-point constant with no zero element (its reciprocal is finite).
fn nonzero_float_constant(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| {
        eg[s[v]].data.tensor().is_some_and(|t| {
            super::is_float(t.dtype())
                && !t.is_empty()
                && t.to_f64_vec().iter().all(|x| *x != 0.0 && x.is_finite())
        })
    }
}

/// `op(x) => reshape(x, shape)` where `shape` is the matched class's static shape (Flatten
/// is a Reshape to a 2-D shape known at compile time; Reshape of Reshape then composes).
#[derive(Debug)]
pub struct ReshapeToRootShape {
    /// The input.
    pub x: Var,
}

impl Applier<ENode, GraphAnalysis> for ReshapeToRootShape {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let Some(dims) = eg[root].data.ty().and_then(|t| t.shape.as_known()) else {
            return vec![];
        };
        if dims.contains(&0) {
            return vec![];
        }
        let shape: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        let Ok(t) = crate::ir::Tensor::from_vec(&[shape.len()], shape) else {
            return vec![];
        };
        let c = super::add_const(eg, t);
        let x = eg.find(subst[self.x]);
        let r = super::add_op(eg, Op::Reshape { allowzero: 0 }, vec![x, c]);
        if super::union_typed(eg, root, r) {
            vec![r]
        } else {
            vec![]
        }
    }
}

/// `transpose(transpose(x, p1), p2) => transpose(x, q)` with `q[i] = p1[p2[i]]`, or `x` when
/// `q` is the identity. An absent `perm` reverses the axes.
#[derive(Debug)]
pub struct ComposeTranspose {
    /// The inner transpose's class.
    pub t: Var,
}

/// `transpose(constant_of_shape(s))`: a splat transposed is the splat of the permuted shape
/// (weights that the folding budget keeps compact stay compact, e.g. a Gemm's transposed B).
#[derive(Debug)]
pub struct TransposeSplat {
    /// The transposed class.
    pub t: Var,
}

impl Applier<ENode, GraphAnalysis> for TransposeSplat {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let t = eg.find(subst[self.t]);
        let Some(rank) = eg[t].data.ty().and_then(|ty| ty.shape.rank()) else {
            return vec![];
        };
        let perms: Vec<Vec<usize>> = eg[root]
            .iter()
            .filter(|n| n.children.len() == 1 && eg.find(n.children[0]) == t)
            .filter_map(|n| n.op().and_then(|op| perm_of(op, rank)))
            .collect();
        let splats: Vec<(Op, Vec<i64>)> = eg[t]
            .iter()
            .filter(|n| n.children.len() == 1)
            .filter_map(|n| match n.op() {
                Some(op @ Op::ConstantOfShape { .. }) => {
                    let dims = super::constant(eg, n.children[0])?.to_i64_vec().ok()?;
                    (dims.len() == rank).then(|| (op.clone(), dims))
                }
                _ => None,
            })
            .collect();
        let mut changed = vec![];
        for p in &perms {
            for (op, dims) in &splats {
                let shape: Vec<i64> = p.iter().map(|&i| dims[i]).collect();
                let Ok(shape) = Tensor::from_vec(&[shape.len()], shape) else {
                    continue;
                };
                let s = super::add_const(eg, shape);
                let new = super::add_op(eg, op.clone(), vec![s]);
                if super::union_typed(eg, root, new) {
                    changed.push(new);
                }
            }
        }
        changed
    }
}

fn perm_of(op: &Op, rank: usize) -> Option<Vec<usize>> {
    match op {
        Op::Transpose { perm: None } => Some((0..rank).rev().collect()),
        Op::Transpose { perm: Some(p) } => {
            let p: Vec<usize> = p
                .iter()
                .map(|&a| usize::try_from(a).ok().filter(|a| *a < rank))
                .collect::<Option<_>>()?;
            (p.len() == rank).then_some(p)
        }
        _ => None,
    }
}

impl Applier<ENode, GraphAnalysis> for ComposeTranspose {
    fn apply_one(
        &self,
        eg: &mut EG,
        root: Id,
        subst: &Subst,
        _: Option<&PatternAst<ENode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let t = eg.find(subst[self.t]);
        let Some(rank) = eg[t].data.ty().and_then(|ty| ty.shape.rank()) else {
            return vec![];
        };
        let outer: Vec<Vec<usize>> = eg[root]
            .iter()
            .filter(|n| n.children.len() == 1 && eg.find(n.children[0]) == t)
            .filter_map(|n| n.op().and_then(|op| perm_of(op, rank)))
            .collect();
        let inner: Vec<(Vec<usize>, Id)> = eg[t]
            .iter()
            .filter(|n| n.children.len() == 1)
            .filter_map(|n| {
                n.op()
                    .and_then(|op| perm_of(op, rank))
                    .map(|p| (p, n.children[0]))
            })
            .collect();
        let mut changed = vec![];
        for p2 in &outer {
            for (p1, x) in &inner {
                let q: Vec<usize> = p2.iter().map(|&i| p1[i]).collect();
                let new = if q.iter().enumerate().all(|(i, &a)| i == a) {
                    *x
                } else {
                    let perm = Some(q.iter().map(|&a| a as i64).collect());
                    super::add_op(eg, Op::Transpose { perm }, vec![*x])
                };
                if super::union_typed(eg, root, new) {
                    changed.push(new);
                }
            }
        }
        changed
    }
}
