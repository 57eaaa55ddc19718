//! Dim and shape algebra for inference: broadcasting, unification (two dims that must be
//! equal), generalization (a dim that may be either of two), arithmetic, and accessors for
//! the facts an op's rule reads.

use super::Fact;
use crate::ir::{DType, Dim, Shape, Tensor, TypeInfo};

/// Result of a rule: a plain reason on error (the caller adds node and op).
pub type Res<T> = Result<T, String>;

/// Builds a type.
pub fn ty(dtype: DType, shape: Shape) -> TypeInfo {
    TypeInfo { dtype, shape }
}

/// `rank` unknown dims.
pub fn unknown(rank: usize) -> Shape {
    Shape::Ranked(vec![Dim::Unknown; rank])
}

/// A shape of `rank` unknown dims when the rank is known, else unranked.
pub fn unknown_or_unranked(rank: Option<usize>) -> Shape {
    rank.map_or(Shape::Unranked, unknown)
}

/// Input `i`, which must be present.
pub fn req<'a>(ins: &[Option<Fact<'a>>], i: usize) -> Res<Fact<'a>> {
    ins.get(i)
        .copied()
        .flatten()
        .ok_or_else(|| format!("missing required input {i}"))
}

/// Input `i` if present.
pub fn opt<'a>(ins: &[Option<Fact<'a>>], i: usize) -> Option<Fact<'a>> {
    ins.get(i).copied().flatten()
}

impl Fact<'_> {
    /// The dims, when the rank is known.
    pub fn dims(&self) -> Option<&[Dim]> {
        self.ty.shape.dims()
    }

    /// The rank, when known.
    pub fn rank(&self) -> Option<usize> {
        self.ty.shape.rank()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.ty.dtype
    }

    /// The value as integers, when known and of an integer type.
    pub fn ints(&self) -> Option<Vec<i64>> {
        self.value.and_then(|t| t.to_i64_vec().ok())
    }

    /// The value as floats, when known and numeric.
    pub fn floats(&self) -> Option<Vec<f64>> {
        self.value
            .filter(|t| t.dtype() != DType::String)
            .map(Tensor::to_f64_vec)
    }

    /// The number of elements of a 1-D (or scalar) input, from its shape when the value is
    /// unknown: how many axes a shape-like input names.
    pub fn len_1d(&self) -> Option<usize> {
        if let Some(v) = self.value {
            return Some(v.len());
        }
        match self.dims()? {
            [] => Some(1),
            [d] => d.known(),
            _ => None,
        }
    }
}

/// A single integer from a known value (scalar or 1-element tensor).
pub fn scalar_int(f: Option<Fact<'_>>) -> Option<i64> {
    match f?.ints()?.as_slice() {
        [v] => Some(*v),
        _ => None,
    }
}

/// Two dims that must be equal: the more precise of the two, or `None` if they are known
/// and differ.
pub fn unify(a: &Dim, b: &Dim) -> Option<Dim> {
    match (a, b) {
        (Dim::Known(x), Dim::Known(y)) => (x == y).then(|| a.clone()),
        (Dim::Known(_), _) => Some(a.clone()),
        (_, Dim::Known(_)) => Some(b.clone()),
        (Dim::Sym(_), _) => Some(a.clone()),
        (_, Dim::Sym(_)) => Some(b.clone()),
        _ => Some(Dim::Unknown),
    }
}

/// Two shapes that must be equal: the more precise of the two, or `None` on a conflict.
pub fn unify_shape(a: &Shape, b: &Shape) -> Option<Shape> {
    match (a, b) {
        (Shape::Unranked, s) | (s, Shape::Unranked) => Some(s.clone()),
        (Shape::Ranked(x), Shape::Ranked(y)) => {
            if x.len() != y.len() {
                return None;
            }
            x.iter()
                .zip(y)
                .map(|(p, q)| unify(p, q))
                .collect::<Option<Vec<_>>>()
                .map(Shape::Ranked)
        }
    }
}

/// A dim that may be either `a` or `b` (e.g. the two branches of an If).
pub fn join(a: &Dim, b: &Dim) -> Dim {
    if a == b {
        a.clone()
    } else {
        Dim::Unknown
    }
}

/// A shape that may be either `a` or `b`.
pub fn join_shape(a: &Shape, b: &Shape) -> Shape {
    match (a, b) {
        (Shape::Ranked(x), Shape::Ranked(y)) if x.len() == y.len() => {
            Shape::Ranked(x.iter().zip(y).map(|(p, q)| join(p, q)).collect())
        }
        _ => Shape::Unranked,
    }
}

/// Broadcast of two dims (numpy rules), or `None` when they cannot broadcast.
pub fn broadcast_dim(a: &Dim, b: &Dim) -> Option<Dim> {
    match (a, b) {
        (Dim::Known(1), d) | (d, Dim::Known(1)) => Some(d.clone()),
        (Dim::Known(x), Dim::Known(y)) => (x == y).then(|| a.clone()),
        // A dim that is not 1 wins: the other must be 1 or equal to it.
        (Dim::Known(_), _) => Some(a.clone()),
        (_, Dim::Known(_)) => Some(b.clone()),
        (Dim::Sym(x), Dim::Sym(y)) if x == y => Some(a.clone()),
        _ => Some(Dim::Unknown),
    }
}

/// Multidirectional broadcast of two shapes, or `None` when they cannot broadcast.
pub fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
    let (Some(x), Some(y)) = (a.dims(), b.dims()) else {
        return Some(Shape::Unranked);
    };
    let n = x.len().max(y.len());
    let one = Dim::Known(1);
    let at = |v: &[Dim], i: usize| {
        if i + v.len() >= n {
            v[i + v.len() - n].clone()
        } else {
            one.clone()
        }
    };
    (0..n)
        .map(|i| broadcast_dim(&at(x, i), &at(y, i)))
        .collect::<Option<Vec<_>>>()
        .map(Shape::Ranked)
}

/// Product of two dims.
pub fn mul(a: &Dim, b: &Dim) -> Dim {
    match (a, b) {
        (Dim::Known(x), Dim::Known(y)) => x.checked_mul(*y).map_or(Dim::Unknown, Dim::Known),
        (Dim::Known(0), _) | (_, Dim::Known(0)) => Dim::Known(0),
        (Dim::Known(1), d) | (d, Dim::Known(1)) => d.clone(),
        _ => Dim::Unknown,
    }
}

/// Product of dims.
pub fn product<'a>(dims: impl IntoIterator<Item = &'a Dim>) -> Dim {
    dims.into_iter().fold(Dim::Known(1), |acc, d| mul(&acc, d))
}

/// Sum of two dims.
pub fn add(a: &Dim, b: &Dim) -> Dim {
    match (a, b) {
        (Dim::Known(x), Dim::Known(y)) => x.checked_add(*y).map_or(Dim::Unknown, Dim::Known),
        (Dim::Known(0), d) | (d, Dim::Known(0)) => d.clone(),
        _ => Dim::Unknown,
    }
}

/// A dim plus a signed offset (padding), erroring if the result is negative.
pub fn offset(d: &Dim, by: i64) -> Res<Dim> {
    match d {
        _ if by == 0 => Ok(d.clone()),
        Dim::Known(n) => {
            let r = *n as i128 + by as i128;
            usize::try_from(r)
                .map(Dim::Known)
                .map_err(|_| format!("dim {n} with padding {by} is out of range"))
        }
        _ => Ok(Dim::Unknown),
    }
}

/// A known non-negative size computed in wide arithmetic, as a dim.
pub fn dim_from_i128(v: i128, what: &str) -> Res<Dim> {
    usize::try_from(v)
        .map(Dim::Known)
        .map_err(|_| format!("{what} {v} is out of range"))
}

/// A known non-negative integer as a dim, or an error naming what it is.
pub fn dim_from_i64(v: i64, what: &str) -> Res<Dim> {
    usize::try_from(v)
        .map(Dim::Known)
        .map_err(|_| format!("{what} {v} is negative"))
}

/// Normalizes a possibly negative axis into `0..rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Res<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// Normalizes a list of axes, rejecting duplicates.
pub fn norm_axes(axes: &[i64], rank: usize) -> Res<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let a = norm_axis(a, rank)?;
        if out.contains(&a) {
            return Err(format!("axis {a} is repeated"));
        }
        out.push(a);
    }
    Ok(out)
}

/// Converts an i64 attribute to usize, rejecting negatives.
pub fn pos(v: i64, what: &str) -> Res<usize> {
    usize::try_from(v).map_err(|_| format!("{what} must be non-negative, got {v}"))
}
