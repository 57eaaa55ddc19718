//! Reductions (ReduceSum and friends), ArgMax/ArgMin, the softmax family, CumSum/CumProd,
//! TopK and Unique. Float reductions accumulate in f64; integer sums and products wrap.

use std::cmp::Ordering;

use ndarray::{ArrayD, IxDyn};

use super::{
    axes_in, axis_in, checked_size, from_parts, int_scalar, ints, map_lanes, row_major, total_cmp,
    Num,
};
use crate::eval::util::{opt, req};
use crate::ir::{Elem, Tensor};

/// Which Reduce* op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// ReduceSum.
    Sum,
    /// ReduceMean.
    Mean,
    /// ReduceMax.
    Max,
    /// ReduceMin.
    Min,
    /// ReduceProd.
    Prod,
    /// ReduceL1.
    L1,
    /// ReduceL2.
    L2,
    /// ReduceLogSum.
    LogSum,
    /// ReduceLogSumExp.
    LogSumExp,
    /// ReduceSumSquare.
    SumSquare,
}

/// A reduction computed in f64 (floats, and the integer reductions with a float result).
fn reduce_f64(kind: Reduction, v: &[f64]) -> f64 {
    let sum = |f: fn(f64) -> f64| v.iter().map(|&x| f(x)).sum::<f64>();
    match kind {
        Reduction::Sum => sum(|x| x),
        Reduction::Mean => sum(|x| x) / v.len() as f64,
        Reduction::Prod => v.iter().product(),
        Reduction::L1 => sum(f64::abs),
        Reduction::L2 => sum(|x| x * x).sqrt(),
        Reduction::SumSquare => sum(|x| x * x),
        Reduction::LogSum => sum(|x| x).ln(),
        Reduction::LogSumExp => {
            let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if m.is_finite() {
                m + v.iter().map(|&x| (x - m).exp()).sum::<f64>().ln()
            } else {
                sum(f64::exp).ln()
            }
        }
        Reduction::Max | Reduction::Min => unreachable!("max and min reduce in the element type"),
    }
}

/// Reduces one lane of values.
fn reduce_lane<T: Num>(kind: Reduction, v: &[T]) -> T {
    let float = T::DTYPE.is_float();
    let pick = |init: T, better: fn(&T, &T) -> bool| {
        v.iter().fold(init, |a, &b| {
            if a.is_nan() || (!b.is_nan() && !better(&b, &a)) {
                a
            } else {
                b
            }
        })
    };
    match kind {
        Reduction::Max => pick(T::lowest(), |b, a| b > a),
        Reduction::Min => pick(T::highest(), |b, a| b < a),
        Reduction::Sum if !float => v.iter().fold(T::zero(), |a, &b| a.add(b)),
        Reduction::Prod if !float => v.iter().fold(T::one(), |a, &b| a.mul(b)),
        Reduction::L1 if !float => v.iter().fold(T::zero(), |a, &b| a.add(b.abs())),
        Reduction::SumSquare if !float => v.iter().fold(T::zero(), |a, &b| a.add(b.mul(b))),
        _ => T::from_f64(reduce_f64(
            kind,
            &v.iter().map(Elem::to_f64).collect::<Vec<_>>(),
        )),
    }
}

/// Applies `f` to the lanes formed by `axes` (all reduced axes at once); returns the
/// keepdims-shaped output.
fn reduce_axes<T: Clone, U>(a: &ArrayD<T>, axes: &[usize], f: impl Fn(&[T]) -> U) -> ArrayD<U> {
    let r = a.ndim();
    let kept: Vec<usize> = (0..r).filter(|i| !axes.contains(i)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let moved = a.view().permuted_axes(IxDyn(&perm));
    let moved = moved.as_standard_layout();
    let data = moved.as_slice().expect("standard layout is contiguous");
    let inner: usize = axes.iter().map(|&i| a.shape()[i]).product();
    let outer: usize = kept.iter().map(|&i| a.shape()[i]).product();
    let out: Vec<U> = (0..outer)
        .map(|o| f(&data[o * inner..(o + 1) * inner]))
        .collect();
    let shape: Vec<usize> = (0..r)
        .map(|i| if axes.contains(&i) { 1 } else { a.shape()[i] })
        .collect();
    from_parts(&shape, out)
}

/// Drops the given (1-sized) axes from a shape.
fn drop_axes(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    (0..shape.len())
        .filter(|i| !axes.contains(i))
        .map(|i| shape[i])
        .collect()
}

/// Reduce*: reduces over the `axes` input (all axes when absent or empty, none when
/// `noop_with_empty_axes`), keeping reduced axes as 1 when `keepdims`.
pub fn reduce(
    inputs: &[Option<&Tensor>],
    kind: Reduction,
    keepdims: bool,
    noop: bool,
) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let r = x.shape().len();
    let given = opt(inputs, 1)
        .map(|t| ints(t, "axes"))
        .transpose()?
        .unwrap_or_default();
    let axes = match (given.is_empty(), noop) {
        (true, true) => vec![],
        (true, false) => (0..r).collect(),
        (false, _) => axes_in(&given, r)?,
    };
    let out = match x {
        Tensor::Bool(a) if matches!(kind, Reduction::Max | Reduction::Min) => {
            let any = kind == Reduction::Max;
            Tensor::Bool(reduce_axes(a, &axes, |v| {
                if any {
                    v.iter().any(|&b| b)
                } else {
                    v.iter().all(|&b| b)
                }
            }))
        }
        _ => {
            crate::dispatch_numeric!(x, a => T::wrap(reduce_axes(a, &axes, |v| reduce_lane(kind, v))),
            _ => return Err(format!("cannot reduce a {} tensor", x.dtype())))
        }
    };
    if keepdims {
        Ok(out)
    } else {
        let shape = drop_axes(out.shape(), &axes);
        out.reshape(&shape)
    }
}

/// Orders candidates for "best" selection: `Greater` means `a` is better. NaN beats
/// everything (numpy's arg-max/min return the first NaN).
fn better<T: PartialOrd>(a: &T, b: &T, largest: bool) -> Ordering {
    #[allow(clippy::eq_op)]
    let (an, bn) = (a != a, b != b);
    if an || bn {
        return an.cmp(&bn);
    }
    let o = total_cmp(a, b);
    if largest {
        o
    } else {
        o.reverse()
    }
}

/// ArgMax (`largest`) / ArgMin along `axis`, as i64 indices.
pub fn arg_extremum(
    inputs: &[Option<&Tensor>],
    axis: i64,
    keepdims: bool,
    last: bool,
    largest: bool,
) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let ax = axis_in(axis, x.shape().len())?;
    if x.shape().is_empty() || x.shape()[ax] == 0 {
        return Err("arg-max/min of an empty axis".into());
    }
    fn go<T: PartialOrd + Clone>(
        a: &ArrayD<T>,
        ax: usize,
        last: bool,
        largest: bool,
    ) -> Result<ArrayD<i64>, String> {
        map_lanes(a, ax, 1, |v: &[T], out: &mut [i64]| {
            let mut best = 0;
            for i in 1..v.len() {
                let o = better(&v[i], &v[best], largest);
                if o == Ordering::Greater || (last && o == Ordering::Equal) {
                    best = i;
                }
            }
            out[0] = best as i64;
            Ok(())
        })
    }
    let out = match x {
        Tensor::Bool(a) => go(a, ax, last, largest)?,
        _ => crate::dispatch_numeric!(x, a => go(a, ax, last, largest)?,
            _ => return Err(format!("cannot take arg-max/min of a {} tensor", x.dtype()))),
    };
    let t = Tensor::I64(out);
    if keepdims {
        Ok(t)
    } else {
        t.reshape(&drop_axes(t.shape(), &[ax]))
    }
}

/// Which of the softmax family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftKind {
    /// Softmax.
    Softmax,
    /// LogSoftmax.
    LogSoftmax,
    /// Hardmax: 1 at the first maximum, 0 elsewhere.
    Hardmax,
}

/// Softmax, LogSoftmax or Hardmax along `axis`; with `coerce_2d` (opset < 13), over all axes
/// from `axis` on, as if flattened to 2-D.
pub fn softmax(
    inputs: &[Option<&Tensor>],
    axis: i64,
    coerce_2d: bool,
    kind: SoftKind,
) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let shape = x.shape().to_vec();
    let r = shape.len();
    if coerce_2d {
        let a = if axis < 0 { axis + r as i64 } else { axis };
        if !(0..=r as i64).contains(&a) {
            return Err(format!("axis {axis} is out of range for rank {r}"));
        }
        let outer: usize = shape[..a as usize].iter().product();
        let flat = x.reshape(&[outer, x.len() / outer.max(1)])?;
        return softmax(&[Some(&flat)], 1, false, kind)?.reshape(&shape);
    }
    if r == 0 {
        return Err("softmax of a scalar".into());
    }
    let ax = axis_in(axis, r)?;
    fn lane(kind: SoftKind, v: &[f64], out: &mut [f64]) {
        let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        match kind {
            SoftKind::Hardmax => {
                let first = v.iter().position(|&x| x == m);
                for (i, o) in out.iter_mut().enumerate() {
                    *o = if Some(i) == first { 1.0 } else { 0.0 };
                }
            }
            SoftKind::Softmax | SoftKind::LogSoftmax => {
                let s: f64 = v.iter().map(|&x| (x - m).exp()).sum();
                for (o, &x) in out.iter_mut().zip(v) {
                    *o = if kind == SoftKind::Softmax {
                        (x - m).exp() / s
                    } else {
                        x - m - s.ln()
                    };
                }
            }
        }
    }
    crate::dispatch_float!(x, a => {
        let d = shape[ax];
        let mut buf = vec![0.0; d];
        let out = map_lanes(a, ax, d, |v: &[T], o: &mut [T]| {
            let v: Vec<f64> = v.iter().map(Elem::to_f64).collect();
            lane(kind, &v, &mut buf);
            for (o, &b) in o.iter_mut().zip(&buf) {
                *o = T::from_f64(b);
            }
            Ok(())
        })?;
        Ok(T::wrap(out))
    }, _ => Err(format!("softmax needs a float tensor, got {}", x.dtype())))
}

/// CumSum (or CumProd when `product`) along the `axis` input.
pub fn cumulative(
    inputs: &[Option<&Tensor>],
    exclusive: bool,
    reverse: bool,
    product: bool,
) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let ax = axis_in(int_scalar(req(inputs, 1)?, "axis")?, x.shape().len())?;
    if x.shape().is_empty() {
        return Err("cumulative op on a scalar".into());
    }
    fn go<T: Num>(
        a: &ArrayD<T>,
        ax: usize,
        exclusive: bool,
        reverse: bool,
        product: bool,
    ) -> Result<ArrayD<T>, String> {
        let d = a.shape()[ax];
        map_lanes(a, ax, d, |v: &[T], out: &mut [T]| {
            let mut acc = if product { T::one() } else { T::zero() };
            for k in 0..d {
                let i = if reverse { d - 1 - k } else { k };
                let next = if product {
                    acc.mul(v[i])
                } else {
                    acc.add(v[i])
                };
                out[i] = if exclusive { acc } else { next };
                acc = next;
            }
            Ok(())
        })
    }
    crate::dispatch_numeric!(x, a => go(a, ax, exclusive, reverse, product).map(T::wrap),
        _ => Err(format!("cumulative op on a {} tensor", x.dtype())))
}

/// TopK: the `k` largest (or smallest) entries along `axis` and their i64 indices, best
/// first; ties keep the lower index first.
pub fn top_k(
    inputs: &[Option<&Tensor>],
    axis: i64,
    largest: bool,
    _sorted: bool,
    n_outputs: usize,
) -> Result<Vec<Tensor>, String> {
    if n_outputs > 2 {
        return Err(format!("TopK has 2 outputs, {n_outputs} were requested"));
    }
    let x = req(inputs, 0)?;
    let ax = axis_in(axis, x.shape().len())?;
    let d = x.shape()[ax];
    let k = int_scalar(req(inputs, 1)?, "k")?;
    if k < 0 || k as usize > d {
        return Err(format!("k {k} is out of range for a dimension of size {d}"));
    }
    fn go<T: PartialOrd + Elem>(
        a: &ArrayD<T>,
        ax: usize,
        k: usize,
        largest: bool,
    ) -> Result<(Tensor, Tensor), String> {
        let pairs = map_lanes(a, ax, k, |v: &[T], out: &mut [(T, i64)]| {
            let mut order: Vec<usize> = (0..v.len()).collect();
            order.sort_by(|&i, &j| better(&v[j], &v[i], largest));
            for (o, &i) in out.iter_mut().zip(&order) {
                *o = (v[i].clone(), i as i64);
            }
            Ok(())
        })?;
        Ok((
            T::wrap(pairs.map(|p| p.0.clone())),
            Tensor::I64(pairs.map(|p| p.1)),
        ))
    }
    let (values, indices) = crate::dispatch_numeric!(x, a => go(a, ax, k as usize, largest)?,
        _ => return Err(format!("top-k of a {} tensor", x.dtype())));
    Ok([values, indices].into_iter().take(n_outputs).collect())
}

/// Unique: distinct elements (or slices along `axis`), sorted or in order of first occurrence,
/// with first-occurrence indices, inverse indices and counts.
pub fn unique(
    inputs: &[Option<&Tensor>],
    axis: Option<i64>,
    sorted: bool,
    n_outputs: usize,
) -> Result<Vec<Tensor>, String> {
    if n_outputs > 4 {
        return Err(format!("Unique has 4 outputs, {n_outputs} were requested"));
    }
    let x = req(inputs, 0)?;
    let ax = axis.map(|a| axis_in(a, x.shape().len())).transpose()?;
    fn go<T: Elem + PartialOrd>(a: &ArrayD<T>, ax: Option<usize>, sorted: bool) -> [Tensor; 4] {
        // Items: elements of the flattened input, or slices along `ax` laid out axis-first.
        let (data, n, moved_shape) = match ax {
            None => (row_major(a), a.len(), vec![a.len()]),
            Some(ax) => {
                let perm: Vec<usize> = std::iter::once(ax)
                    .chain((0..a.ndim()).filter(|&i| i != ax))
                    .collect();
                let m = a.view().permuted_axes(IxDyn(&perm));
                let shape = m.shape().to_vec();
                (m.iter().cloned().collect(), a.shape()[ax], shape)
            }
        };
        let inner = data.len().checked_div(n).unwrap_or(0);
        let item = |i: usize| &data[i * inner..(i + 1) * inner];
        let cmp = |i: usize, j: usize| {
            item(i)
                .iter()
                .zip(item(j))
                .map(|(p, q)| total_cmp(p, q))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        };
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| cmp(i, j));
        // Groups of equal items: (first occurrence, members).
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for &i in &order {
            match groups.last_mut() {
                Some(g) if cmp(g.0, i) == Ordering::Equal => g.1.push(i),
                _ => groups.push((i, vec![i])),
            }
        }
        if !sorted {
            groups.sort_by_key(|g| g.0);
        }
        let mut inverse = vec![0i64; n];
        for (u, g) in groups.iter().enumerate() {
            for &i in &g.1 {
                inverse[i] = u as i64;
            }
        }
        let u = groups.len();
        let ydata: Vec<T> = groups
            .iter()
            .flat_map(|g| item(g.0).iter().cloned())
            .collect();
        let mut yshape = moved_shape;
        yshape[0] = u;
        let y = from_parts(&yshape, ydata);
        let y = match ax {
            None => y,
            Some(ax) => {
                let perm: Vec<usize> = (0..y.ndim())
                    .map(|k| {
                        if k == ax {
                            0
                        } else if k < ax {
                            k + 1
                        } else {
                            k
                        }
                    })
                    .collect();
                y.permuted_axes(IxDyn(&perm))
                    .as_standard_layout()
                    .into_owned()
            }
        };
        let first: Vec<i64> = groups.iter().map(|g| g.0 as i64).collect();
        let counts: Vec<i64> = groups.iter().map(|g| g.1.len() as i64).collect();
        [
            T::wrap(y),
            Tensor::I64(from_parts(&[u], first)),
            Tensor::I64(from_parts(&[n], inverse)),
            Tensor::I64(from_parts(&[u], counts)),
        ]
    }
    checked_size(x.shape())?;
    let outs = crate::dispatch!(x, a => go(a, ax, sorted));
    Ok(outs.into_iter().take(n_outputs).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).unwrap()
    }
    fn i64t(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).unwrap()
    }
    fn close(a: &Tensor, b: &[f64]) {
        let v = a.to_f64_vec();
        assert_eq!(v.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in v.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-5 * y.abs().max(1.0) || x == y,
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn reduce_axes_keepdims_and_empty() {
        let x = f32t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let ax = i64t(&[1], &[-1]);
        let s = reduce(&[Some(&x), Some(&ax)], Reduction::Sum, true, false).unwrap();
        assert_eq!(s, f32t(&[2, 1], &[6., 15.]));
        let m = reduce(&[Some(&x)], Reduction::Mean, false, false).unwrap();
        assert_eq!(m, Tensor::scalar(3.5f32));
        let noop = reduce(
            &[Some(&x), Some(&i64t(&[0], &[]))],
            Reduction::Sum,
            true,
            true,
        )
        .unwrap();
        assert_eq!(noop, x);
        // numpy: np.log(np.sum(np.exp(x), axis=0)) = [4.0485873, 5.0485873, 6.0485873]
        let lse = reduce(
            &[Some(&x), Some(&i64t(&[1], &[0]))],
            Reduction::LogSumExp,
            false,
            false,
        )
        .unwrap();
        close(&lse, &[4.048_587_3, 5.048_587_3, 6.048_587_3]);
        let l2 = reduce(
            &[Some(&x), Some(&i64t(&[1], &[1]))],
            Reduction::L2,
            false,
            false,
        )
        .unwrap();
        close(&l2, &[14f64.sqrt(), 77f64.sqrt()]);
        let e = Tensor::from_vec::<f32>(&[2, 0], vec![]).unwrap();
        let ax1 = i64t(&[1], &[1]);
        let red = |k| {
            reduce(&[Some(&e), Some(&ax1)], k, false, false)
                .unwrap()
                .to_f64_vec()
        };
        assert_eq!(red(Reduction::Sum), vec![0., 0.]);
        assert_eq!(red(Reduction::Prod), vec![1., 1.]);
        assert_eq!(red(Reduction::Max), vec![f64::NEG_INFINITY; 2]);
        assert_eq!(red(Reduction::Min), vec![f64::INFINITY; 2]);
        assert_eq!(red(Reduction::LogSum), vec![f64::NEG_INFINITY; 2]);
        assert_eq!(red(Reduction::LogSumExp), vec![f64::NEG_INFINITY; 2]);
        assert!(reduce(
            &[Some(&x), Some(&i64t(&[1], &[2]))],
            Reduction::Sum,
            true,
            false
        )
        .is_err());
    }

    #[test]
    fn reduce_ints_and_nan() {
        let x = Tensor::from_vec(&[3], vec![100i8, 100, -7]).unwrap();
        // Wrapping like numpy int8: 193 wraps to -63.
        assert_eq!(
            reduce(&[Some(&x)], Reduction::Sum, false, false).unwrap(),
            Tensor::scalar(-63i8)
        );
        assert_eq!(
            reduce(&[Some(&x)], Reduction::Min, false, false).unwrap(),
            Tensor::scalar(-7i8)
        );
        let e = Tensor::from_vec::<i32>(&[0], vec![]).unwrap();
        assert_eq!(
            reduce(&[Some(&e)], Reduction::Max, false, false).unwrap(),
            Tensor::scalar(i32::MIN)
        );
        let n = f32t(&[3], &[1., f32::NAN, 3.]);
        assert!(reduce(&[Some(&n)], Reduction::Max, false, false)
            .unwrap()
            .to_f64_vec()[0]
            .is_nan());
        let b = Tensor::from_vec(&[2], vec![true, false]).unwrap();
        assert_eq!(
            reduce(&[Some(&b)], Reduction::Min, false, false).unwrap(),
            Tensor::scalar(false)
        );
    }

    #[test]
    fn arg_max_min() {
        let x = f32t(&[2, 3], &[1., 5., 5., 7., 0., 7.]);
        assert_eq!(
            arg_extremum(&[Some(&x)], 1, true, false, true).unwrap(),
            i64t(&[2, 1], &[1, 0])
        );
        assert_eq!(
            arg_extremum(&[Some(&x)], -1, false, true, true).unwrap(),
            i64t(&[2], &[2, 2])
        );
        assert_eq!(
            arg_extremum(&[Some(&x)], 0, false, false, false).unwrap(),
            i64t(&[3], &[0, 1, 0])
        );
        let e = Tensor::from_vec::<f32>(&[0, 2], vec![]).unwrap();
        assert!(arg_extremum(&[Some(&e)], 0, true, false, true).is_err());
    }

    #[test]
    fn softmax_family() {
        let x = f32t(&[1, 3], &[1., 2., 3.]);
        // numpy: np.exp(x) / np.exp(x).sum() = [0.09003057, 0.24472847, 0.66524096]
        close(
            &softmax(&[Some(&x)], -1, false, SoftKind::Softmax).unwrap(),
            &[0.090_030_57, 0.244_728_47, 0.665_240_96],
        );
        close(
            &softmax(&[Some(&x)], 1, false, SoftKind::LogSoftmax).unwrap(),
            &[-2.407_605_96, -1.407_605_96, -0.407_605_96],
        );
        let h = f32t(&[2, 2], &[3., 3., 1., 2.]);
        assert_eq!(
            softmax(&[Some(&h)], 1, false, SoftKind::Hardmax).unwrap(),
            f32t(&[2, 2], &[1., 0., 0., 1.])
        );
        // coerce_2d at axis 0 normalizes over the whole tensor.
        let c = softmax(&[Some(&h)], 0, true, SoftKind::Hardmax).unwrap();
        assert_eq!(c, f32t(&[2, 2], &[1., 0., 0., 0.]));
        assert_eq!(
            softmax(&[Some(&x)], 0, false, SoftKind::Softmax).unwrap(),
            f32t(&[1, 3], &[1., 1., 1.])
        );
        assert!(softmax(&[Some(&i64t(&[1], &[1]))], 0, false, SoftKind::Softmax).is_err());
    }

    #[test]
    fn cumsum_cumprod() {
        let x = i64t(&[4], &[1, 2, 3, 4]);
        let ax = Tensor::scalar(0i32);
        assert_eq!(
            cumulative(&[Some(&x), Some(&ax)], false, false, false).unwrap(),
            i64t(&[4], &[1, 3, 6, 10])
        );
        assert_eq!(
            cumulative(&[Some(&x), Some(&ax)], true, true, false).unwrap(),
            i64t(&[4], &[9, 7, 4, 0])
        );
        assert_eq!(
            cumulative(&[Some(&x), Some(&ax)], true, false, true).unwrap(),
            i64t(&[4], &[1, 1, 2, 6])
        );
        let m = f32t(&[2, 2], &[1., 2., 3., 4.]);
        let neg = Tensor::scalar(-1i64);
        assert_eq!(
            cumulative(&[Some(&m), Some(&neg)], false, false, false).unwrap(),
            f32t(&[2, 2], &[1., 3., 3., 7.])
        );
    }

    #[test]
    fn top_k_ties_and_smallest() {
        let x = f32t(&[2, 4], &[1., 3., 3., 2., 4., 0., 4., -1.]);
        let k = i64t(&[1], &[2]);
        let o = top_k(&[Some(&x), Some(&k)], -1, true, true, 2).unwrap();
        assert_eq!(o[0], f32t(&[2, 2], &[3., 3., 4., 4.]));
        assert_eq!(o[1], i64t(&[2, 2], &[1, 2, 0, 2]));
        let o = top_k(&[Some(&x), Some(&k)], 1, false, true, 2).unwrap();
        assert_eq!(o[0], f32t(&[2, 2], &[1., 2., -1., 0.]));
        assert_eq!(o[1], i64t(&[2, 2], &[0, 3, 3, 1]));
        assert!(top_k(&[Some(&x), Some(&i64t(&[1], &[5]))], 1, true, true, 2).is_err());
    }

    #[test]
    fn unique_flat_and_axis() {
        // The ONNX Unique examples (sorted and unsorted).
        let x = f32t(&[6], &[2., 1., 1., 3., 4., 3.]);
        let o = unique(&[Some(&x)], None, false, 4).unwrap();
        assert_eq!(o[0], f32t(&[4], &[2., 1., 3., 4.]));
        assert_eq!(o[1], i64t(&[4], &[0, 1, 3, 4]));
        assert_eq!(o[2], i64t(&[6], &[0, 1, 1, 2, 3, 2]));
        assert_eq!(o[3], i64t(&[4], &[1, 2, 2, 1]));
        let o = unique(&[Some(&x)], None, true, 4).unwrap();
        assert_eq!(o[0], f32t(&[4], &[1., 2., 3., 4.]));
        assert_eq!(o[1], i64t(&[4], &[1, 0, 3, 4]));
        assert_eq!(o[2], i64t(&[6], &[1, 0, 0, 2, 3, 2]));
        let m = f32t(&[3, 3], &[1., 0., 0., 1., 0., 0., 2., 3., 4.]);
        let o = unique(&[Some(&m)], Some(0), true, 4).unwrap();
        assert_eq!(o[0], f32t(&[2, 3], &[1., 0., 0., 2., 3., 4.]));
        assert_eq!(o[2], i64t(&[3], &[0, 0, 1]));
        let o = unique(&[Some(&m)], Some(-1), true, 1).unwrap();
        // Columns [1,1,2], [0,0,3], [0,0,4] sorted lexicographically.
        assert_eq!(
            o,
            vec![f32t(&[3, 3], &[0., 0., 1., 0., 0., 1., 3., 4., 2.])]
        );
        let s = Tensor::from_vec(&[3], vec!["b".to_string(), "a".into(), "b".into()]).unwrap();
        let o = unique(&[Some(&s)], None, true, 1).unwrap();
        assert_eq!(
            o[0],
            Tensor::from_vec(&[2], vec!["a".to_string(), "b".into()]).unwrap()
        );
    }
}
