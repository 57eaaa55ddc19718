//! Rewrite rules, one family per module (like Cranelift's `opts/*.isle`), and the conditions
//! they share. Conditions read analysis data (types, constant values), never the absence of
//! a node, since later merges invalidate absence.
//!
//! In patterns, ops match by name and arity (see `egraph::lang`): attribute-dependent rules
//! check attributes in conditions or build their result in a custom applier.

pub mod algebra;

use egg::{Id, Subst, Var};

use crate::egraph::{Rewrite, EG};
use crate::ir::{DType, Dim, Tensor};

/// Every rule set that is on by default.
pub fn default_rules() -> Vec<Rewrite> {
    algebra::rules()
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
