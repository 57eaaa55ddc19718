//! Rewrite rules, one family per module (like Cranelift's `opts/*.isle`), and the conditions
//! they share. Conditions read analysis data (types, constant values), never the absence of
//! a node, since later merges invalidate absence.
//!
//! In patterns, ops match by name and arity (see `egraph::lang`): attribute-dependent rules
//! check attributes in conditions or build their result in a custom applier.

pub mod algebra;
pub mod batchnorm;
pub mod fusion;
pub mod layout;

use egg::{Id, Subst, Var};

use crate::egraph::{ENode, Head, KeyedOp, Rewrite, EG};
use crate::ir::{DType, Dim, Op, Tensor};

/// The rule sets of the `simplify` pass: algebra and identities, BatchNorm and channel
/// arithmetic (constant folding is the e-graph analysis itself).
pub fn simplify_rules() -> Vec<Rewrite> {
    let mut r = algebra::rules();
    r.extend(batchnorm::rules());
    r
}

/// Every rule set that is on by default, for a single saturation run.
pub fn default_rules() -> Vec<Rewrite> {
    let mut r = simplify_rules();
    r.extend(fusion::rules());
    r
}

/// An e-node of a one-output op (to add, or to look up whether it exists).
pub(crate) fn op_node(op: Op, children: Vec<Id>) -> ENode {
    ENode {
        head: Head::Op(KeyedOp::new(op, 1)),
        children,
    }
}

/// Adds an op node with one output.
pub(crate) fn add_op(eg: &mut EG, op: Op, children: Vec<Id>) -> Id {
    eg.add(op_node(op, children))
}

/// Adds a constant.
pub(crate) fn add_const(eg: &mut EG, t: Tensor) -> Id {
    eg.add(ENode::leaf(Head::Op(KeyedOp::constant(t))))
}

/// Unions `new` into `root` when the analysis typed `new` exactly as `root` (a rewrite that
/// builds an op whose inference fails, or that changes the type, is dropped, never merged);
/// returns whether the e-graph changed.
pub(crate) fn union_typed(eg: &mut EG, root: Id, new: Id) -> bool {
    let same = match (&eg[new].data.types, &eg[root].data.types) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    };
    same && eg.union(root, new)
}

/// The absent input `_`.
pub(crate) fn absent(eg: &mut EG) -> Id {
    eg.add(ENode::leaf(Head::Absent))
}

/// The constant value of a class.
pub(crate) fn constant(eg: &EG, id: Id) -> Option<Tensor> {
    eg[id].data.tensor().cloned()
}

/// At most this many elements are materialized for a rule that needs a value as data.
pub const MATERIALIZE_LIMIT: usize = 1 << 26;

/// The value of a class, for a rule that needs it as data (weights being rewritten): its
/// constant, or else a `constant_of_shape` / `expand` / `tile` of constants that the folding
/// budget left compact, evaluated here (up to [`MATERIALIZE_LIMIT`] elements).
pub(crate) fn materialize(eg: &EG, id: Id) -> Option<Tensor> {
    if let Some(t) = constant(eg, id) {
        return Some(t);
    }
    let n = eg[id].data.ty()?.shape.num_elements()?;
    if n > MATERIALIZE_LIMIT {
        return None;
    }
    eg[id].iter().find_map(|node| {
        let op = node.op()?;
        if !matches!(op, Op::ConstantOfShape { .. } | Op::Expand {} | Op::Tile {}) {
            return None;
        }
        let args: Vec<Tensor> = node
            .children
            .iter()
            .map(|&c| constant(eg, c))
            .collect::<Option<_>>()?;
        let refs: Vec<Option<&Tensor>> = args.iter().map(Some).collect();
        crate::eval::eval_op(op, &refs, 1).ok()?.pop()
    })
}

/// Whether the element type is a floating-point one (rewrites that reassociate arithmetic
/// are only done on floats).
pub(crate) fn is_float(d: DType) -> bool {
    matches!(d, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
}

/// `?v` is a non-empty numeric splat within `tol` (relative) of `want`.
pub fn is_splat_near(v: &str, want: f64, tol: f64) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| {
        eg[s[v]].data.tensor().is_some_and(|t| {
            !t.is_empty()
                && t.is_splat()
                && first_f64(t).is_some_and(|x| (x - want).abs() <= tol * want.abs().max(1.0))
        })
    }
}

/// A pattern variable; panics on a malformed name (rules are constants, and a test builds
/// every rule set).
pub(crate) fn var(s: &str) -> Var {
    s.parse().expect("pattern variable names are constants")
}

/// The first element of a tensor as f64, for numeric non-string tensors.
fn first_f64(t: &Tensor) -> Option<f64> {
    use crate::ir::Elem;
    if matches!(t.dtype(), DType::String) {
        return None;
    }
    crate::dispatch!(t, a => a.iter().next().map(|x| x.to_f64()))
}

/// `?v` is a constant whose every element equals `want` (a non-empty numeric splat).
pub fn is_splat_of(v: &str, want: f64) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| {
        eg[s[v]]
            .data
            .tensor()
            .is_some_and(|t| !t.is_empty() && t.is_splat() && first_f64(t) == Some(want))
    }
}

/// `?v` has exactly the type (dtype and shape) of the matched class, and that shape has no
/// unknown dims, so replacing the class by `?v` cannot change a shape through broadcasting.
pub fn same_type_as_root(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, root, s| match (eg[s[v]].data.ty(), eg[root].data.ty()) {
        (Some(a), Some(b)) => {
            a == b
                && a.shape
                    .dims()
                    .is_some_and(|d| d.iter().all(|d| !matches!(d, Dim::Unknown)))
        }
        _ => false,
    }
}

/// `?v` is absent or a constant whose elements are all zero/false (Dropout's
/// `training_mode` off).
pub fn absent_or_false(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| {
        let d = &eg[s[v]].data;
        d.absent
            || d.tensor()
                .is_some_and(|t| t.to_f64_vec().iter().all(|x| *x == 0.0))
    }
}

/// `?v` is a constant integer shape with no zero entry (so `Reshape` never copies a dim
/// from its input, whatever `allowzero` says).
pub fn shape_without_zero(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| {
        eg[s[v]].data.tensor().is_some_and(|t| {
            t.dtype() == DType::I64 && t.to_i64_vec().is_ok_and(|d| !d.contains(&0))
        })
    }
}
