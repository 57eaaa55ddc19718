//! Indexed reads and writes: Gather, GatherElements, GatherND, ScatterElements, ScatterND
//! and OneHot. Indices may be negative (counted from the end); out-of-range indices are
//! errors, except in OneHot where they select no class.

use super::{axis_in, checked_size, dims, from_parts, ints, row_major, strides, Num};
use crate::eval::util::req;
use crate::ir::{DType, Elem, Tensor};

/// An index into a dimension of size `d`, negative values counting from the end.
fn norm_index(i: i64, d: usize) -> Result<usize, String> {
    let j = if i < 0 { i + d as i64 } else { i };
    if j < 0 || j >= d as i64 {
        return Err(format!(
            "index {i} is out of range for a dimension of size {d}"
        ));
    }
    Ok(j as usize)
}

/// Copies `block`-element runs from `src` at each `(from, to)` into a new row-major vector.
fn copy_blocks<T: Clone>(src: &[T], runs: &[usize], block: usize) -> Vec<T> {
    runs.iter()
        .flat_map(|&from| src[from..from + block].iter().cloned())
        .collect()
}

/// Gather: selects entries of `data` along `axis` by `indices`.
pub fn gather(inputs: &[Option<&Tensor>], axis: i64) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let it = req(inputs, 1)?;
    let s = x.shape();
    if s.is_empty() {
        return Err("cannot gather from a scalar".into());
    }
    let ax = axis_in(axis, s.len())?;
    let d = s[ax];
    let idx: Vec<usize> = ints(it, "indices")?
        .iter()
        .map(|&i| norm_index(i, d))
        .collect::<Result<_, _>>()?;
    let out: Vec<usize> = s[..ax]
        .iter()
        .chain(it.shape())
        .chain(&s[ax + 1..])
        .copied()
        .collect();
    checked_size(&out)?;
    let outer: usize = s[..ax].iter().product();
    let inner: usize = s[ax + 1..].iter().product();
    let runs: Vec<usize> = (0..outer)
        .flat_map(|o| idx.iter().map(move |&i| (o * d + i) * inner))
        .collect();
    Ok(
        crate::dispatch!(x, a => T::wrap(from_parts(&out, copy_blocks(&row_major(a), &runs, inner)))),
    )
}

/// The flat data offsets GatherElements/ScatterElements address: for every position of
/// `indices`, that position with its `axis` coordinate replaced by the index.
fn element_offsets(
    data_shape: &[usize],
    indices: &Tensor,
    axis: i64,
) -> Result<Vec<usize>, String> {
    let r = data_shape.len();
    let ax = axis_in(axis, r)?;
    let is = indices.shape();
    if is.len() != r || (0..r).any(|k| k != ax && is[k] > data_shape[k]) {
        return Err(format!(
            "indices shape {is:?} does not fit data shape {data_shape:?}"
        ));
    }
    let st = strides(data_shape);
    let idx = indices.cast(DType::I64);
    let idx = idx.as_array::<i64>().ok_or("indices must be integers")?;
    idx.indexed_iter()
        .map(|(ix, &i)| {
            let j = norm_index(i, data_shape[ax])?;
            Ok((0..r)
                .map(|k| if k == ax { j } else { ix[k] } * st[k])
                .sum())
        })
        .collect()
}

/// GatherElements: `out[ix] = data[ix with ix[axis] = indices[ix]]`.
pub fn gather_elements(inputs: &[Option<&Tensor>], axis: i64) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let it = req(inputs, 1)?;
    if x.shape().is_empty() {
        return Err("cannot gather from a scalar".into());
    }
    let offs = element_offsets(x.shape(), it, axis)?;
    Ok(
        crate::dispatch!(x, a => T::wrap(from_parts(it.shape(), copy_blocks(&row_major(a), &offs, 1)))),
    )
}

/// The layout GatherND/ScatterND share: the flat data offset of every index tuple, the
/// block length each tuple addresses, and the shape of the tuple grid.
fn nd_offsets(
    data_shape: &[usize],
    indices: &Tensor,
    batch_dims: usize,
) -> Result<(Vec<usize>, usize, Vec<usize>), String> {
    let is = indices.shape();
    let q = is.len();
    let r = data_shape.len();
    let m = *is.last().ok_or("indices must have rank at least 1")?;
    if batch_dims >= q || batch_dims + m > r || is[..batch_dims] != data_shape[..batch_dims] {
        return Err(format!(
            "indices shape {is:?} does not fit data shape {data_shape:?} with batch_dims {batch_dims}"
        ));
    }
    let idx = ints(indices, "indices")?;
    let st = strides(data_shape);
    let inner: usize = data_shape[batch_dims + m..].iter().product();
    let batch_stride: usize = data_shape[batch_dims..].iter().product();
    let per_batch: usize = is[batch_dims..q - 1].iter().product();
    let grid = is[..q - 1].to_vec();
    let n: usize = grid.iter().product();
    let offs = (0..n)
        .map(|t| {
            let mut off = (t / per_batch.max(1)) * batch_stride;
            for j in 0..m {
                off += norm_index(idx[t * m + j], data_shape[batch_dims + j])? * st[batch_dims + j];
            }
            Ok(off)
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((offs, inner, grid))
}

/// GatherND: gathers slices of `data` addressed by the last axis of `indices`.
pub fn gather_nd(inputs: &[Option<&Tensor>], batch_dims: i64) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let b =
        usize::try_from(batch_dims).map_err(|_| format!("batch_dims {batch_dims} is negative"))?;
    let it = req(inputs, 1)?;
    let (offs, inner, grid) = nd_offsets(x.shape(), it, b)?;
    let m = it.shape()[it.shape().len() - 1];
    let out: Vec<usize> = grid.iter().chain(&x.shape()[b + m..]).copied().collect();
    checked_size(&out)?;
    Ok(
        crate::dispatch!(x, a => T::wrap(from_parts(&out, copy_blocks(&row_major(a), &offs, inner)))),
    )
}

/// The combining function of a scatter reduction.
fn combine<T: Num>(reduction: &str) -> Result<fn(T, T) -> T, String> {
    Ok(match reduction {
        "add" => |a: T, b: T| a.add(b),
        "mul" => |a: T, b: T| a.mul(b),
        "max" => |a: T, b: T| if b > a { b } else { a },
        "min" => |a: T, b: T| if b < a { b } else { a },
        r => return Err(format!("unknown reduction '{r}'")),
    })
}

/// Writes `block`-element runs of `updates` (the `i`-th run at `i * block`) into a copy of
/// `data` at the offsets `dst`, replacing or combining by `reduction`.
fn scatter(
    data: &Tensor,
    updates: &Tensor,
    dst: &[usize],
    block: usize,
    reduction: &str,
) -> Result<Tensor, String> {
    if updates.dtype() != data.dtype() {
        return Err(format!(
            "updates have type {}, data {}",
            updates.dtype(),
            data.dtype()
        ));
    }
    if updates.len() != dst.len() * block {
        return Err(format!(
            "updates shape {:?} does not match the indices",
            updates.shape()
        ));
    }
    if reduction == "none" {
        return Ok(crate::dispatch!(data, a => {
            let mut out = row_major(a);
            let u = row_major(T::unwrap(updates).expect("same dtype checked above"));
            for (i, &d) in dst.iter().enumerate() {
                out[d..d + block].clone_from_slice(&u[i * block..(i + 1) * block]);
            }
            T::wrap(from_parts(a.shape(), out))
        }));
    }
    crate::dispatch_numeric!(data, a => {
        let f = combine::<T>(reduction)?;
        let mut out = row_major(a);
        let u = row_major(T::unwrap(updates).expect("same dtype checked above"));
        for (i, &d) in dst.iter().enumerate() {
            for k in 0..block {
                out[d + k] = f(out[d + k], u[i * block + k]);
            }
        }
        Ok(T::wrap(from_parts(a.shape(), out)))
    }, _ => Err(format!("reduction '{reduction}' needs numbers, data has type {}", data.dtype())))
}

/// ScatterElements: GatherElements' addressing, writing `updates` into a copy of `data`.
pub fn scatter_elements(
    inputs: &[Option<&Tensor>],
    axis: i64,
    reduction: &str,
) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let it = req(inputs, 1)?;
    let u = req(inputs, 2)?;
    if u.shape() != it.shape() {
        return Err(format!(
            "updates shape {:?} differs from indices shape {:?}",
            u.shape(),
            it.shape()
        ));
    }
    let offs = element_offsets(x.shape(), it, axis)?;
    scatter(x, u, &offs, 1, reduction)
}

/// ScatterND: GatherND's addressing (no batch dims), writing `updates` into a copy of `data`.
pub fn scatter_nd(inputs: &[Option<&Tensor>], reduction: &str) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let it = req(inputs, 1)?;
    let u = req(inputs, 2)?;
    let (offs, inner, grid) = nd_offsets(x.shape(), it, 0)?;
    let m = it.shape()[it.shape().len() - 1];
    let want: Vec<usize> = grid.iter().chain(&x.shape()[m..]).copied().collect();
    if u.shape() != want.as_slice() {
        return Err(format!("updates shape {:?} should be {want:?}", u.shape()));
    }
    scatter(x, u, &offs, inner, reduction)
}

/// OneHot: inserts a `depth`-sized axis at `axis`, `values[1]` where it equals the index and
/// `values[0]` elsewhere. Negative indices count from `depth`; out-of-range ones select nothing.
pub fn one_hot(inputs: &[Option<&Tensor>], axis: i64) -> Result<Tensor, String> {
    let it = req(inputs, 0)?;
    let depth_t = req(inputs, 1)?;
    let vals = req(inputs, 2)?;
    if depth_t.len() != 1 {
        return Err(format!(
            "depth must have one element, it has {}",
            depth_t.len()
        ));
    }
    let depth = depth_t.to_f64_vec()[0];
    let depth = dims(&[depth as i64], "depth")?[0];
    if vals.len() != 2 {
        return Err(format!(
            "values must have two elements, it has {}",
            vals.len()
        ));
    }
    let r = it.shape().len() as i64;
    let ax = if axis < 0 { axis + r + 1 } else { axis };
    if !(0..=r).contains(&ax) {
        return Err(format!(
            "axis {axis} is out of range for output rank {}",
            r + 1
        ));
    }
    let ax = ax as usize;
    let mut out = it.shape().to_vec();
    out.insert(ax, depth);
    let n = checked_size(&out)?;
    let idx: Vec<i64> = it.to_f64_vec().iter().map(|&v| v as i64).collect();
    let outer: usize = it.shape()[..ax].iter().product();
    let inner: usize = it.shape()[ax..].iter().product();
    Ok(crate::dispatch!(vals, a => {
        let v = row_major(a);
        let mut data = vec![v[0].clone(); n];
        for o in 0..outer {
            for i in 0..inner {
                let k = idx[o * inner + i];
                let k = if k < 0 { k + depth as i64 } else { k };
                if (0..depth as i64).contains(&k) {
                    data[(o * depth + k as usize) * inner + i] = v[1].clone();
                }
            }
        }
        T::wrap(from_parts(&out, data))
    }))
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

    #[test]
    fn gather_axes_and_negative_indices() {
        let x = f32t(&[3, 2], &[1., 2., 3., 4., 5., 6.]);
        let i = i64t(&[2], &[-1, 0]);
        assert_eq!(
            gather(&[Some(&x), Some(&i)], 0).unwrap(),
            f32t(&[2, 2], &[5., 6., 1., 2.])
        );
        let i = i64t(&[1, 2], &[1, 1]);
        assert_eq!(
            gather(&[Some(&x), Some(&i)], -1).unwrap(),
            f32t(&[3, 1, 2], &[2., 2., 4., 4., 6., 6.])
        );
        let s = Tensor::scalar(1i32);
        assert_eq!(
            gather(&[Some(&x), Some(&s)], 0).unwrap(),
            f32t(&[2], &[3., 4.])
        );
        assert!(gather(&[Some(&x), Some(&i64t(&[1], &[3]))], 0).is_err());
        let strs = Tensor::from_vec(&[2], vec!["a".to_string(), "b".into()]).unwrap();
        let g = gather(&[Some(&strs), Some(&i64t(&[3], &[1, 0, 1]))], 0).unwrap();
        assert_eq!(
            g,
            Tensor::from_vec(&[3], vec!["b".to_string(), "a".into(), "b".into()]).unwrap()
        );
    }

    #[test]
    fn gather_elements_and_nd() {
        // The ONNX GatherElements example 1.
        let x = f32t(&[2, 2], &[1., 2., 3., 4.]);
        let i = i64t(&[2, 2], &[0, 0, 1, 0]);
        assert_eq!(
            gather_elements(&[Some(&x), Some(&i)], 1).unwrap(),
            f32t(&[2, 2], &[1., 1., 4., 3.])
        );
        let i = i64t(&[1, 2], &[-1, 0]);
        assert_eq!(
            gather_elements(&[Some(&x), Some(&i)], 0).unwrap(),
            f32t(&[1, 2], &[3., 2.])
        );
        // The ONNX GatherND examples 3 and 5.
        let d = f32t(&[2, 2, 2], &[0., 1., 2., 3., 4., 5., 6., 7.]);
        let i = i64t(&[2, 1, 2], &[0, 1, 1, 0]);
        assert_eq!(
            gather_nd(&[Some(&d), Some(&i)], 0).unwrap(),
            f32t(&[2, 1, 2], &[2., 3., 4., 5.])
        );
        let i = i64t(&[2, 1], &[1, 0]);
        assert_eq!(
            gather_nd(&[Some(&d), Some(&i)], 1).unwrap(),
            f32t(&[2, 2], &[2., 3., 4., 5.])
        );
        assert!(gather_nd(&[Some(&d), Some(&i64t(&[1, 4], &[0, 0, 0, 0]))], 0).is_err());
    }

    #[test]
    fn scatter_reductions() {
        let x = f32t(&[1, 5], &[1., 2., 3., 4., 5.]);
        let i = i64t(&[1, 2], &[1, -4]);
        let u = f32t(&[1, 2], &[1.1, 2.1]);
        let add = scatter_elements(&[Some(&x), Some(&i), Some(&u)], 1, "add").unwrap();
        assert_eq!(
            add.to_f64_vec(),
            f32t(&[5], &[1., 5.2, 3., 4., 5.]).to_f64_vec()
        );
        let none = scatter_elements(&[Some(&x), Some(&i), Some(&u)], 1, "none").unwrap();
        assert_eq!(
            none.to_f64_vec(),
            f32t(&[5], &[1., 2.1, 3., 4., 5.]).to_f64_vec()
        );
        let max = scatter_elements(&[Some(&x), Some(&i), Some(&u)], 1, "max").unwrap();
        assert_eq!(
            max.to_f64_vec(),
            f32t(&[5], &[1., 2.1, 3., 4., 5.]).to_f64_vec()
        );
        let d = i64t(&[4], &[1, 2, 3, 4]);
        let i = i64t(&[2, 1], &[3, 3]);
        let u = i64t(&[2], &[5, 6]);
        assert_eq!(
            scatter_nd(&[Some(&d), Some(&i), Some(&u)], "mul").unwrap(),
            i64t(&[4], &[1, 2, 3, 120])
        );
        assert_eq!(
            scatter_nd(&[Some(&d), Some(&i), Some(&u)], "min").unwrap(),
            i64t(&[4], &[1, 2, 3, 4])
        );
        assert!(scatter_nd(&[Some(&d), Some(&i), Some(&u)], "bogus").is_err());
    }

    #[test]
    fn one_hot_axis_and_negative() {
        let i = i64t(&[3], &[0, -1, 5]);
        let v = f32t(&[2], &[0., 3.]);
        let d = Tensor::scalar(3.0f32);
        let o = one_hot(&[Some(&i), Some(&d), Some(&v)], -1).unwrap();
        assert_eq!(o, f32t(&[3, 3], &[3., 0., 0., 0., 0., 3., 0., 0., 0.]));
        let o = one_hot(&[Some(&i), Some(&d), Some(&v)], 0).unwrap();
        assert_eq!(o, f32t(&[3, 3], &[3., 0., 0., 0., 0., 0., 0., 3., 0.]));
        assert!(one_hot(&[Some(&i), Some(&Tensor::scalar(-2i64)), Some(&v)], 0).is_err());
    }
}
