//! Helpers shared by the op families: input access, axes, broadcasting, size limits.

use crate::ir::{Elem, Tensor};
use ndarray::{ArrayD, IxDyn};

/// Largest number of elements one tensor may have (2^31): anything larger is refused before
/// allocating.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// Input `i`, which must be present.
pub fn req<'a>(inputs: &[Option<&'a Tensor>], i: usize) -> Result<&'a Tensor, String> {
    inputs
        .get(i)
        .copied()
        .flatten()
        .ok_or_else(|| format!("missing required input {i}"))
}

/// Input `i` if present.
pub fn opt<'a>(inputs: &[Option<&'a Tensor>], i: usize) -> Option<&'a Tensor> {
    inputs.get(i).copied().flatten()
}

/// Input `i` as an array of element type `T`, which must be present and of that type.
pub fn arr<'a, T: Elem>(inputs: &[Option<&'a Tensor>], i: usize) -> Result<&'a ArrayD<T>, String> {
    let t = req(inputs, i)?;
    T::unwrap(t).ok_or_else(|| format!("input {i} has type {}, expected {}", t.dtype(), T::DTYPE))
}

/// Normalizes a possibly negative axis into `0..rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize, String> {
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
pub fn norm_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, String> {
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

/// The multidirectional (numpy) broadcast of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(format!("shapes {a:?} and {b:?} do not broadcast"));
        };
    }
    Ok(out)
}

thread_local! {
    static ELEMENT_LIMIT: std::cell::Cell<usize> = const { std::cell::Cell::new(MAX_ELEMENTS) };
}

/// The element limit [`checked_size`] enforces on this thread: [`MAX_ELEMENTS`] unless
/// lowered by [`with_element_limit`].
pub fn element_limit() -> usize {
    ELEMENT_LIMIT.with(|l| l.get())
}

/// Runs `f` with the per-tensor element limit lowered to `limit` on this thread (a limit
/// above [`MAX_ELEMENTS`] is [`MAX_ELEMENTS`]), restoring the previous limit afterwards.
pub fn with_element_limit<R>(limit: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            ELEMENT_LIMIT.with(|l| l.set(self.0));
        }
    }
    let _restore = Restore(element_limit());
    ELEMENT_LIMIT.with(|l| l.set(limit.min(MAX_ELEMENTS)));
    f()
}

/// Number of elements of a shape, refusing overflow and anything above the element limit
/// ([`MAX_ELEMENTS`], or lower under [`with_element_limit`]).
pub fn checked_size(shape: &[usize]) -> Result<usize, String> {
    let limit = element_limit();
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    if n > limit {
        return Err(format!(
            "shape {shape:?} has {n} elements, more than the limit of {limit}"
        ));
    }
    // ndarray also bounds the product of the non-zero dims, even when there are no elements.
    let nonzero = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if nonzero.is_none_or(|p| p > isize::MAX as usize) {
        return Err(format!("shape {shape:?} is too large"));
    }
    Ok(n)
}

/// Broadcasts an array to `shape` (a view copied into an owned array).
pub fn broadcast_to<T: Elem>(a: &ArrayD<T>, shape: &[usize]) -> Result<ArrayD<T>, String> {
    checked_size(shape)?;
    a.broadcast(IxDyn(shape))
        .map(|v| v.to_owned())
        .ok_or_else(|| format!("cannot broadcast {:?} to {shape:?}", a.shape()))
}
