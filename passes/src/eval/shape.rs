//! Data movement, shape arithmetic, reductions, arg-max/min, softmax family, TopK, Unique, CumSum.
//!
//! This file routes the family's ops and holds the helpers they share: index-map gathering
//! ([`take_axes`]), lane iteration along one axis ([`map_lanes`]), a total order for sorting
//! ([`total_cmp`]) and the [`Num`] arithmetic trait (wrapping for integers). The ops live in
//! `shape/layout.rs` (shapes, copies, padding, creation), `shape/index.rs` (gather, scatter,
//! one-hot) and `shape/reduce.rs` (reductions, softmax, arg-max, cumulative ops, TopK,
//! Unique). Pure data movement works for every element type, strings and bools included.

// Bodies inside the dispatch macros clone elements generically, which is a no-op copy for
// numeric types.
#![allow(clippy::clone_on_copy)]

use std::cmp::Ordering;

use half::{bf16, f16};
use ndarray::{ArrayD, Axis, IxDyn};

use super::util::{norm_axes, norm_axis};
use crate::ir::{Elem, Op, Tensor};

mod index;
mod layout;
mod reduce;

/// Evaluates an op of this family.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], n_outputs: usize) -> Result<Vec<Tensor>, String> {
    let one = |r: Result<Tensor, String>| r.map(|t| vec![t]);
    match op {
        Op::Shape { start, end } => one(layout::shape(inputs, *start, *end)),
        Op::Size {} => one(layout::size(inputs)),
        Op::Reshape { allowzero } => one(layout::reshape(inputs, *allowzero != 0)),
        Op::Flatten { axis } => one(layout::flatten(inputs, *axis)),
        Op::Transpose { perm } => one(layout::transpose(inputs, perm.as_deref())),
        Op::Squeeze {} => one(layout::squeeze(inputs)),
        Op::Unsqueeze {} => one(layout::unsqueeze(inputs)),
        Op::Concat { axis } => one(layout::concat(inputs, *axis)),
        Op::Split { axis, num_outputs } => layout::split(inputs, *axis, *num_outputs, n_outputs),
        Op::Slice {} => one(layout::slice(inputs)),
        Op::Expand {} => one(layout::expand(inputs)),
        Op::Tile {} => one(layout::tile(inputs)),
        Op::Pad { mode } => one(layout::pad(inputs, mode)),
        Op::CenterCropPad { axes } => one(layout::center_crop_pad(inputs, axes.as_deref())),
        Op::DepthToSpace { blocksize, mode } => {
            one(layout::depth_to_space(inputs, *blocksize, mode))
        }
        Op::SpaceToDepth { blocksize } => one(layout::space_to_depth(inputs, *blocksize)),
        Op::ReverseSequence {
            batch_axis,
            time_axis,
        } => one(layout::reverse_sequence(inputs, *batch_axis, *time_axis)),
        Op::Trilu { upper } => one(layout::trilu(inputs, *upper != 0)),
        Op::Compress { axis } => one(layout::compress(inputs, *axis)),
        Op::NonZero {} => one(layout::non_zero(inputs)),
        Op::EyeLike { dtype, k } => one(layout::eye_like(inputs, *dtype, *k)),
        Op::ConstantOfShape { value } => one(layout::constant_of_shape(inputs, value.as_ref())),
        Op::Range {} => one(layout::range(inputs)),
        Op::Gather { axis } => one(index::gather(inputs, *axis)),
        Op::GatherElements { axis } => one(index::gather_elements(inputs, *axis)),
        Op::GatherND { batch_dims } => one(index::gather_nd(inputs, *batch_dims)),
        Op::ScatterElements { axis, reduction } => {
            one(index::scatter_elements(inputs, *axis, reduction))
        }
        Op::ScatterND { reduction } => one(index::scatter_nd(inputs, reduction)),
        Op::OneHot { axis } => one(index::one_hot(inputs, *axis)),
        Op::ReduceSum {
            keepdims,
            noop_with_empty_axes,
        } => one(reduce::reduce(
            inputs,
            reduce::Reduction::Sum,
            *keepdims != 0,
            *noop_with_empty_axes != 0,
        )),
        Op::ReduceMean {
            keepdims,
            noop_with_empty_axes,
        } => one(reduce::reduce(
            inputs,
            reduce::Reduction::Mean,
            *keepdims != 0,
            *noop_with_empty_axes != 0,
        )),
        Op::ReduceMax {
            keepdims,
            noop_with_empty_axes,
        } => one(reduce::reduce(
            inputs,
            reduce::Reduction::Max,
            *keepdims != 0,
            *noop_with_empty_axes != 0,
        )),
        Op::ReduceMin {
            keepdims,
            noop_with_empty_axes,
        } => one(reduce::reduce(
            inputs,
            reduce::Reduction::Min,
            *keepdims != 0,
            *noop_with_empty_axes != 0,
        )),
        Op::ReduceProd {
            keepdims,
            noop_with_empty_axes,
        } => one(reduce::reduce(
            inputs,
            reduce::Reduction::Prod,
            *keepdims != 0,
            *noop_with_empty_axes != 0,
        )),
        Op::ReduceL1 {
            keepdims,
            noop_with_empty_axes,
        } => one(reduce::reduce(
            inputs,
            reduce::Reduction::L1,
            *keepdims != 0,
            *noop_with_empty_axes != 0,
        )),
        Op::ReduceL2 {
            keepdims,
            noop_with_empty_axes,
        } => one(reduce::reduce(
            inputs,
            reduce::Reduction::L2,
            *keepdims != 0,
            *noop_with_empty_axes != 0,
        )),
        Op::ReduceLogSum {
            keepdims,
            noop_with_empty_axes,
        } => one(reduce::reduce(
            inputs,
            reduce::Reduction::LogSum,
            *keepdims != 0,
            *noop_with_empty_axes != 0,
        )),
        Op::ReduceLogSumExp {
            keepdims,
            noop_with_empty_axes,
        } => one(reduce::reduce(
            inputs,
            reduce::Reduction::LogSumExp,
            *keepdims != 0,
            *noop_with_empty_axes != 0,
        )),
        Op::ReduceSumSquare {
            keepdims,
            noop_with_empty_axes,
        } => one(reduce::reduce(
            inputs,
            reduce::Reduction::SumSquare,
            *keepdims != 0,
            *noop_with_empty_axes != 0,
        )),
        Op::ArgMax {
            axis,
            keepdims,
            select_last_index,
        } => one(reduce::arg_extremum(
            inputs,
            *axis,
            *keepdims != 0,
            *select_last_index != 0,
            true,
        )),
        Op::ArgMin {
            axis,
            keepdims,
            select_last_index,
        } => one(reduce::arg_extremum(
            inputs,
            *axis,
            *keepdims != 0,
            *select_last_index != 0,
            false,
        )),
        Op::Softmax { axis, coerce_2d } => one(reduce::softmax(
            inputs,
            *axis,
            *coerce_2d,
            reduce::SoftKind::Softmax,
        )),
        Op::LogSoftmax { axis, coerce_2d } => one(reduce::softmax(
            inputs,
            *axis,
            *coerce_2d,
            reduce::SoftKind::LogSoftmax,
        )),
        Op::Hardmax { axis, coerce_2d } => one(reduce::softmax(
            inputs,
            *axis,
            *coerce_2d,
            reduce::SoftKind::Hardmax,
        )),
        Op::CumSum { exclusive, reverse } => one(reduce::cumulative(
            inputs,
            *exclusive != 0,
            *reverse != 0,
            false,
        )),
        Op::CumProd { exclusive, reverse } => one(reduce::cumulative(
            inputs,
            *exclusive != 0,
            *reverse != 0,
            true,
        )),
        Op::TopK {
            axis,
            largest,
            sorted,
        } => reduce::top_k(inputs, *axis, *largest != 0, *sorted != 0, n_outputs),
        Op::Unique { axis, sorted } => reduce::unique(inputs, *axis, *sorted != 0, n_outputs),
        _ => Err(format!(
            "{} is not an op of the shape family",
            op.onnx_name()
        )),
    }
}

/// Arithmetic the numeric ops of this family need, for every numeric element type. Integer
/// arithmetic wraps (numpy semantics) instead of panicking on overflow.
pub(crate) trait Num: Elem + Copy + PartialOrd {
    /// Additive identity.
    fn zero() -> Self;
    /// Multiplicative identity.
    fn one() -> Self;
    /// Sum (wrapping for integers).
    fn add(self, o: Self) -> Self;
    /// Product (wrapping for integers).
    fn mul(self, o: Self) -> Self;
    /// Absolute value (wrapping for the most negative integer).
    fn abs(self) -> Self;
    /// The identity of `max`: -inf for floats, the minimum for integers.
    fn lowest() -> Self;
    /// The identity of `min`: +inf for floats, the maximum for integers.
    fn highest() -> Self;
    /// True for NaN.
    fn is_nan(self) -> bool;
}

macro_rules! num_int {
    ($($t:ty: $abs:expr),*) => {$(
        impl Num for $t {
            fn zero() -> Self { 0 }
            fn one() -> Self { 1 }
            fn add(self, o: Self) -> Self { self.wrapping_add(o) }
            fn mul(self, o: Self) -> Self { self.wrapping_mul(o) }
            fn abs(self) -> Self { let f: fn($t) -> $t = $abs; f(self) }
            fn lowest() -> Self { <$t>::MIN }
            fn highest() -> Self { <$t>::MAX }
            fn is_nan(self) -> bool { false }
        }
    )*};
}
num_int!(i8: |x| x.wrapping_abs(), i16: |x| x.wrapping_abs(), i32: |x| x.wrapping_abs(), i64: |x| x.wrapping_abs());
num_int!(u8: |x| x, u16: |x| x, u32: |x| x, u64: |x| x);

macro_rules! num_float {
    ($($t:ty),*) => {$(
        impl Num for $t {
            fn zero() -> Self { <$t as num_traits::Zero>::zero() }
            fn one() -> Self { <$t as num_traits::One>::one() }
            fn add(self, o: Self) -> Self { self + o }
            fn mul(self, o: Self) -> Self { self * o }
            fn abs(self) -> Self { num_traits::Float::abs(self) }
            fn lowest() -> Self { <$t as num_traits::Float>::neg_infinity() }
            fn highest() -> Self { <$t as num_traits::Float>::infinity() }
            fn is_nan(self) -> bool { num_traits::Float::is_nan(self) }
        }
    )*};
}
num_float!(f32, f64, f16, bf16);

/// A total order over any `PartialOrd` element: unordered values (NaN) sort after all others
/// and equal to each other.
pub(crate) fn total_cmp<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    match a.partial_cmp(b) {
        Some(o) => o,
        #[allow(clippy::eq_op)]
        None => (a != a).cmp(&(b != b)),
    }
}

/// `util::checked_size`, also refusing shapes whose non-zero dimensions multiply past the
/// limit (ndarray rejects those even when another dimension is 0).
pub(crate) fn checked_size(shape: &[usize]) -> Result<usize, String> {
    let nonzero: Vec<usize> = shape.iter().copied().filter(|&d| d != 0).collect();
    super::util::checked_size(&nonzero)?;
    super::util::checked_size(shape)
}

/// Normalizes an axis that must name an existing dimension (`util::norm_axis` also accepts
/// axis 0 of a scalar).
pub(crate) fn axis_in(axis: i64, rank: usize) -> Result<usize, String> {
    let a = norm_axis(axis, rank)?;
    if a >= rank {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(a)
}

/// Normalizes distinct axes that must name existing dimensions.
pub(crate) fn axes_in(axes: &[i64], rank: usize) -> Result<Vec<usize>, String> {
    let v = norm_axes(axes, rank)?;
    if v.iter().any(|&a| a >= rank) {
        return Err(format!("axes {axes:?} are out of range for rank {rank}"));
    }
    Ok(v)
}

/// The elements of an integer tensor (`what` names it in errors).
pub(crate) fn ints(t: &Tensor, what: &str) -> Result<Vec<i64>, String> {
    t.to_i64_vec().map_err(|e| format!("{what}: {e}"))
}

/// The single element of a one-element integer tensor.
pub(crate) fn int_scalar(t: &Tensor, what: &str) -> Result<i64, String> {
    match ints(t, what)?.as_slice() {
        [v] => Ok(*v),
        v => Err(format!(
            "{what} must have exactly one element, it has {}",
            v.len()
        )),
    }
}

/// Converts dimension values to sizes, refusing negative ones.
pub(crate) fn dims(v: &[i64], what: &str) -> Result<Vec<usize>, String> {
    v.iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("{what} has a negative dimension {d}")))
        .collect()
}

/// Row-major strides of a shape.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The array's elements in row-major order.
pub(crate) fn row_major<T: Clone>(a: &ArrayD<T>) -> Vec<T> {
    match a.as_slice() {
        Some(s) => s.to_vec(),
        None => a.iter().cloned().collect(),
    }
}

/// Builds an array from a shape and row-major data whose length is known to match.
pub(crate) fn from_parts<T>(shape: &[usize], data: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), data)
        .expect("data length matches the shape by construction")
}

/// Gathers along every axis independently: output element `[j0, j1, ...]` is input element
/// `[idx[0][j0], idx[1][j1], ...]`, or `fill` where any index is `None`. The output shape is
/// the lengths of the index lists.
pub(crate) fn take_axes<T: Clone>(
    a: &ArrayD<T>,
    idx: &[Vec<Option<usize>>],
    fill: &T,
) -> Result<ArrayD<T>, String> {
    let shape: Vec<usize> = idx.iter().map(Vec::len).collect();
    checked_size(&shape)?;
    let src = a.as_standard_layout();
    let data = src.as_slice().expect("standard layout is contiguous");
    let st = strides(a.shape());
    let offs: Vec<Vec<Option<usize>>> = idx
        .iter()
        .zip(&st)
        .map(|(v, s)| v.iter().map(|i| i.map(|i| i * s)).collect())
        .collect();
    Ok(ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
        let mut off = 0;
        for (ax, o) in offs.iter().enumerate() {
            match o[ix[ax]] {
                Some(o) => off += o,
                None => return fill.clone(),
            }
        }
        data[off].clone()
    }))
}

/// Applies `f` to every lane of `a` along `axis`: `f(lane_in, lane_out)` fills an output lane
/// of length `out_len`. The output has `a`'s shape with `axis` resized to `out_len`.
pub(crate) fn map_lanes<T: Clone, U: Clone + Default>(
    a: &ArrayD<T>,
    axis: usize,
    out_len: usize,
    mut f: impl FnMut(&[T], &mut [U]) -> Result<(), String>,
) -> Result<ArrayD<U>, String> {
    let mut out_shape = a.shape().to_vec();
    out_shape[axis] = out_len;
    checked_size(&out_shape)?;
    let mut out = ArrayD::from_elem(IxDyn(&out_shape), U::default());
    let mut lane_in = Vec::with_capacity(a.shape()[axis]);
    let mut lane_out = vec![U::default(); out_len];
    for (src, mut dst) in a
        .lanes(Axis(axis))
        .into_iter()
        .zip(out.lanes_mut(Axis(axis)))
    {
        lane_in.clear();
        lane_in.extend(src.iter().cloned());
        f(&lane_in, &mut lane_out)?;
        for (d, v) in dst.iter_mut().zip(&lane_out) {
            *d = v.clone();
        }
    }
    Ok(out)
}
