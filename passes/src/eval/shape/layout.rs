//! Shape queries, reshapes, transposes, concatenation, splitting, slicing, broadcasting,
//! tiling, padding and cropping, block rearrangements, masks, and tensor creation
//! (Range, EyeLike, ConstantOfShape). Everything here except creation moves data without
//! looking at it, so it works for every element type.

use ndarray::{ArrayD, Axis, IxDyn};

use super::{
    axes_in, axis_in, checked_size, dims, from_parts, int_scalar, ints, row_major, take_axes, Num,
};
use crate::eval::util::{arr, broadcast_shape, broadcast_to, opt, req};
use crate::ir::{DType, Elem, Tensor};

/// Identity index list of length `n`.
fn all(n: usize) -> Vec<Option<usize>> {
    (0..n).map(Some).collect()
}

/// Shape: the input's dimensions `start..end` (negative values count from the end, both clamp).
pub fn shape(inputs: &[Option<&Tensor>], start: i64, end: Option<i64>) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let r = x.shape().len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
    let d: Vec<i64> = x.shape()[s..e.max(s)].iter().map(|&d| d as i64).collect();
    Tensor::from_vec(&[d.len()], d)
}

/// Size: the number of elements as an i64 scalar.
pub fn size(inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
    Ok(Tensor::scalar(req(inputs, 0)?.len() as i64))
}

/// Reshapes a tensor (same elements, row-major order) to `shape`.
fn reshaped(x: &Tensor, shape: &[usize]) -> Result<Tensor, String> {
    if checked_size(shape)? != x.len() {
        return Err(format!("cannot reshape {:?} to {shape:?}", x.shape()));
    }
    Ok(crate::dispatch!(x, a => T::wrap(from_parts(shape, row_major(a)))))
}

/// Reshape: 0 copies the input dimension (unless `allowzero`), -1 is inferred.
pub fn reshape(inputs: &[Option<&Tensor>], allowzero: bool) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let spec = ints(req(inputs, 1)?, "shape")?;
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        out.push(match d {
            -1 if infer.is_some() => return Err("shape has more than one -1".into()),
            -1 => {
                infer = Some(i);
                1
            }
            0 if !allowzero => *x.shape().get(i).ok_or_else(|| {
                format!(
                    "shape copies dimension {i}, the input has rank {}",
                    x.shape().len()
                )
            })?,
            d if d < 0 => return Err(format!("shape has a negative dimension {d}")),
            d => d as usize,
        });
    }
    if let Some(i) = infer {
        let known = checked_size(&out)?;
        if known == 0 || x.len() % known != 0 {
            return Err(format!(
                "cannot infer the -1 dimension reshaping {:?} to {spec:?}",
                x.shape()
            ));
        }
        out[i] = x.len() / known;
    }
    reshaped(x, &out)
}

/// Flatten: a 2-D tensor `[prod(dims[..axis]), prod(dims[axis..])]`.
pub fn flatten(inputs: &[Option<&Tensor>], axis: i64) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let r = x.shape().len() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&a) {
        return Err(format!("axis {axis} is out of range for rank {r}"));
    }
    let outer: usize = x.shape()[..a as usize].iter().product();
    let inner: usize = x.shape()[a as usize..].iter().product();
    reshaped(x, &[outer, inner])
}

/// Transpose by `perm` (default: reversed axes).
pub fn transpose(inputs: &[Option<&Tensor>], perm: Option<&[i64]>) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let r = x.shape().len();
    let perm: Vec<usize> = match perm {
        Some(p) if p.len() != r => return Err(format!("perm {p:?} does not have rank {r}")),
        Some(p) => axes_in(p, r)?,
        None => (0..r).rev().collect(),
    };
    Ok(
        crate::dispatch!(x, a => T::wrap(a.view().permuted_axes(IxDyn(&perm)).as_standard_layout().into_owned())),
    )
}

/// Squeeze: removes the listed 1-sized axes, or every 1-sized axis without an `axes` input.
pub fn squeeze(inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let shape = x.shape();
    let drop = match opt(inputs, 1) {
        Some(t) => {
            let axes = axes_in(&ints(t, "axes")?, shape.len())?;
            if let Some(&a) = axes.iter().find(|&&a| shape[a] != 1) {
                return Err(format!("cannot squeeze axis {a} of size {}", shape[a]));
            }
            axes
        }
        None => (0..shape.len()).filter(|&a| shape[a] == 1).collect(),
    };
    let out: Vec<usize> = (0..shape.len())
        .filter(|a| !drop.contains(a))
        .map(|a| shape[a])
        .collect();
    reshaped(x, &out)
}

/// Unsqueeze: inserts 1-sized axes at the listed positions of the output.
pub fn unsqueeze(inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let axes_v = ints(req(inputs, 1)?, "axes")?;
    let r = x.shape().len() + axes_v.len();
    let axes = axes_in(&axes_v, r)?;
    let mut rest = x.shape().iter();
    let out: Vec<usize> = (0..r)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                *rest.next().expect("rank counts match")
            }
        })
        .collect();
    reshaped(x, &out)
}

/// Concat along `axis`.
pub fn concat(inputs: &[Option<&Tensor>], axis: i64) -> Result<Tensor, String> {
    let xs: Vec<&Tensor> = (0..inputs.len())
        .map(|i| req(inputs, i))
        .collect::<Result<_, _>>()?;
    let first = xs.first().ok_or("concat needs at least one input")?;
    let r = first.shape().len();
    if r == 0 {
        return Err("cannot concatenate scalars".into());
    }
    let ax = axis_in(axis, r)?;
    let mut total = 0usize;
    for x in &xs {
        let s = x.shape();
        if x.dtype() != first.dtype() {
            return Err(format!(
                "inputs have types {} and {}",
                first.dtype(),
                x.dtype()
            ));
        }
        if s.len() != r || (0..r).any(|i| i != ax && s[i] != first.shape()[i]) {
            return Err(format!(
                "shapes {:?} and {s:?} cannot be concatenated on axis {ax}",
                first.shape()
            ));
        }
        total = total
            .checked_add(s[ax])
            .ok_or("concatenated size overflows")?;
    }
    let mut shape = first.shape().to_vec();
    shape[ax] = total;
    checked_size(&shape)?;
    crate::dispatch!(*first, _a => {
        let views: Vec<_> = xs.iter().map(|x| T::unwrap(x).expect("same dtype checked above").view()).collect();
        ndarray::concatenate(Axis(ax), &views).map(T::wrap).map_err(|e| e.to_string())
    })
}

/// Split into `n_outputs` pieces along `axis`: by the `split` input, or evenly with a smaller
/// last piece.
pub fn split(
    inputs: &[Option<&Tensor>],
    axis: i64,
    num_outputs: Option<i64>,
    n_outputs: usize,
) -> Result<Vec<Tensor>, String> {
    let x = req(inputs, 0)?;
    let ax = axis_in(axis, x.shape().len())?;
    let d = *x.shape().get(ax).ok_or("cannot split a scalar")?;
    let sizes: Vec<usize> = match opt(inputs, 1) {
        Some(t) => {
            let s = dims(&ints(t, "split")?, "split")?;
            if s.len() != n_outputs
                || s.iter().try_fold(0usize, |a, &b| a.checked_add(b)) != Some(d)
            {
                return Err(format!(
                    "split {s:?} does not divide dimension {d} into {n_outputs} outputs"
                ));
            }
            s
        }
        None => {
            let n = num_outputs.unwrap_or(n_outputs as i64);
            if n < 1 || n as usize != n_outputs {
                return Err(format!(
                    "num_outputs {n} does not match the {n_outputs} outputs"
                ));
            }
            let chunk = d.div_ceil(n_outputs);
            let last = d
                .checked_sub(chunk * (n_outputs - 1))
                .ok_or_else(|| format!("dimension {d} cannot be split into {n_outputs} outputs"))?;
            let mut s = vec![chunk; n_outputs - 1];
            s.push(last);
            s
        }
    };
    let mut start = 0;
    sizes
        .iter()
        .map(|&n| {
            let s = start;
            start += n;
            crate::dispatch!(x, a => Ok(T::wrap(a.slice_axis(Axis(ax), (s..s + n).into()).to_owned())))
        })
        .collect()
}

/// The indices a Python-style slice `start:end:step` selects from a dimension of size `d`,
/// with ONNX clamping (INT64 sentinels included).
fn slice_indices(start: i64, end: i64, step: i64, d: usize) -> Vec<Option<usize>> {
    let (d, step) = (d as i128, step as i128);
    let norm =
        |v: i64, lo: i128, hi: i128| (if v < 0 { v as i128 + d } else { v as i128 }).clamp(lo, hi);
    let (s, e) = if step > 0 {
        (norm(start, 0, d), norm(end, 0, d))
    } else {
        (norm(start, 0, d - 1), norm(end, -1, d - 1))
    };
    let n = if step > 0 && e > s {
        (e - s - 1) / step + 1
    } else if step < 0 && s > e {
        (s - e - 1) / -step + 1
    } else {
        0
    };
    (0..n).map(|k| Some((s + k * step) as usize)).collect()
}

/// Slice with `starts`, `ends` and optional `axes`, `steps` inputs.
pub fn slice(inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let r = x.shape().len();
    let starts = ints(req(inputs, 1)?, "starts")?;
    let ends = ints(req(inputs, 2)?, "ends")?;
    let axes = match opt(inputs, 3) {
        Some(t) => axes_in(&ints(t, "axes")?, r)?,
        None => (0..starts.len()).collect(),
    };
    let steps = match opt(inputs, 4) {
        Some(t) => ints(t, "steps")?,
        None => vec![1; starts.len()],
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("starts, ends, axes and steps differ in length".into());
    }
    let mut idx: Vec<Vec<Option<usize>>> = x.shape().iter().map(|&d| all(d)).collect();
    for (i, &ax) in axes.iter().enumerate() {
        if ax >= r {
            return Err(format!("axis {ax} is out of range for rank {r}"));
        }
        if steps[i] == 0 {
            return Err("slice step is 0".into());
        }
        idx[ax] = slice_indices(starts[i], ends[i], steps[i], x.shape()[ax]);
    }
    crate::dispatch!(x, a => take_axes(a, &idx, &T::default()).map(T::wrap))
}

/// Expand: bidirectional broadcast of the input with `shape`.
pub fn expand(inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let target = dims(&ints(req(inputs, 1)?, "shape")?, "shape")?;
    let out = broadcast_shape(x.shape(), &target)?;
    checked_size(&out)?;
    crate::dispatch!(x, a => broadcast_to(a, &out).map(T::wrap))
}

/// Tile: repeats the input `repeats[i]` times along axis `i`.
pub fn tile(inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let reps = dims(&ints(req(inputs, 1)?, "repeats")?, "repeats")?;
    if reps.len() != x.shape().len() {
        return Err(format!(
            "repeats has {} entries for rank {}",
            reps.len(),
            x.shape().len()
        ));
    }
    let out: Vec<usize> = x
        .shape()
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| d.checked_mul(r).ok_or("tiled shape overflows"))
        .collect::<Result<_, _>>()?;
    checked_size(&out)?;
    let idx: Vec<Vec<Option<usize>>> = x
        .shape()
        .iter()
        .zip(&out)
        .map(|(&d, &n)| (0..n).map(|j| Some(j % d)).collect())
        .collect();
    crate::dispatch!(x, a => take_axes(a, &idx, &T::default()).map(T::wrap))
}

/// The padded index list of one axis of size `d`: output `j` reads input `j - begin`, mapped
/// back into range by `mode` (None: the constant).
fn pad_indices(d: usize, begin: i64, end: i64, mode: &str) -> Result<Vec<Option<usize>>, String> {
    let (di, begin) = (d as i128, begin as i128);
    let n = di + begin + end as i128;
    if n < 0 {
        return Err(format!(
            "pads {begin}, {end} remove more than dimension {d}"
        ));
    }
    checked_size(&[usize::try_from(n).map_err(|_| format!("padded dimension {n} is too large"))?])?;
    if d == 0 && n > 0 && mode != "constant" {
        return Err(format!("{mode} padding of an empty dimension"));
    }
    (0..n)
        .map(|j| {
            let p = j - begin;
            Ok(match mode {
                "constant" => (0..di).contains(&p).then_some(p as usize),
                "edge" => Some(p.clamp(0, di - 1) as usize),
                "wrap" => Some(p.rem_euclid(di) as usize),
                "reflect" if d == 1 => Some(0),
                "reflect" => {
                    let q = p.rem_euclid(2 * (di - 1));
                    Some(if q < di { q } else { 2 * (di - 1) - q } as usize)
                }
                m => return Err(format!("unknown pad mode '{m}'")),
            })
        })
        .collect()
}

/// Pad with `pads`, optional `constant_value` and `axes` inputs; negative pads crop.
pub fn pad(inputs: &[Option<&Tensor>], mode: &str) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let r = x.shape().len();
    if !matches!(mode, "constant" | "reflect" | "edge" | "wrap") {
        return Err(format!("unknown pad mode '{mode}'"));
    }
    let pads = ints(req(inputs, 1)?, "pads")?;
    let axes = match opt(inputs, 3) {
        Some(t) => axes_in(&ints(t, "axes")?, r)?,
        None => (0..r).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(format!(
            "pads has {} entries for {} axes",
            pads.len(),
            axes.len()
        ));
    }
    let mut idx: Vec<Vec<Option<usize>>> = x.shape().iter().map(|&d| all(d)).collect();
    for (i, &ax) in axes.iter().enumerate() {
        idx[ax] = pad_indices(x.shape()[ax], pads[i], pads[i + axes.len()], mode)?;
    }
    let value = opt(inputs, 2).filter(|v| !v.is_empty());
    crate::dispatch!(x, a => {
        let fill = match value {
            Some(v) => T::unwrap(v)
                .and_then(|v| v.iter().next().cloned())
                .ok_or_else(|| format!("constant_value has type {}, expected {}", v.dtype(), T::DTYPE))?,
            None => T::default(),
        };
        take_axes(a, &idx, &fill).map(T::wrap)
    })
}

/// CenterCropPad: crops or zero-pads each listed axis symmetrically (extra on the end) to `shape`.
pub fn center_crop_pad(inputs: &[Option<&Tensor>], axes: Option<&[i64]>) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let r = x.shape().len();
    let target = dims(&ints(req(inputs, 1)?, "shape")?, "shape")?;
    let axes = match axes {
        Some(a) => axes_in(a, r)?,
        None => (0..r).collect(),
    };
    if target.len() != axes.len() {
        return Err(format!(
            "shape has {} entries for {} axes",
            target.len(),
            axes.len()
        ));
    }
    let mut idx: Vec<Vec<Option<usize>>> = x.shape().iter().map(|&d| all(d)).collect();
    for (&ax, &s) in axes.iter().zip(&target) {
        let d = x.shape()[ax];
        checked_size(&[s])?;
        idx[ax] = if s <= d {
            let off = (d - s) / 2;
            (off..off + s).map(Some).collect()
        } else {
            let off = (s - d) / 2;
            (0..s)
                .map(|j| j.checked_sub(off).filter(|&p| p < d))
                .collect()
        };
    }
    crate::dispatch!(x, a => take_axes(a, &idx, &T::default()).map(T::wrap))
}

/// Checks a 4-D input and a positive block size.
fn nchw(x: &Tensor, blocksize: i64) -> Result<([usize; 4], usize), String> {
    let s = x.shape();
    if s.len() != 4 {
        return Err(format!("input must be 4-D, it has shape {s:?}"));
    }
    if blocksize < 1 {
        return Err(format!("blocksize {blocksize} is not positive"));
    }
    Ok(([s[0], s[1], s[2], s[3]], blocksize as usize))
}

/// DepthToSpace: moves channel blocks into `blocksize`x`blocksize` spatial blocks (DCR or CRD).
pub fn depth_to_space(
    inputs: &[Option<&Tensor>],
    blocksize: i64,
    mode: &str,
) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let ([n, c, h, w], b) = nchw(x, blocksize)?;
    let bb = b.checked_mul(b).ok_or("blocksize overflows")?;
    if c % bb != 0 {
        return Err(format!(
            "channels {c} are not divisible by blocksize squared {bb}"
        ));
    }
    let co = c / bb;
    let dcr = match mode {
        "DCR" => true,
        "CRD" => false,
        m => return Err(format!("unknown mode '{m}'")),
    };
    let out = [
        n,
        co,
        h.checked_mul(b).ok_or("output overflows")?,
        w.checked_mul(b).ok_or("output overflows")?,
    ];
    checked_size(&out)?;
    crate::dispatch!(x, a => Ok(T::wrap(ArrayD::from_shape_fn(IxDyn(&out), |ix| {
        let (i, j) = (ix[2] % b, ix[3] % b);
        let ci = if dcr { (i * b + j) * co + ix[1] } else { ix[1] * bb + i * b + j };
        a[[ix[0], ci, ix[2] / b, ix[3] / b]].clone()
    }))))
}

/// SpaceToDepth: the inverse of DCR DepthToSpace.
pub fn space_to_depth(inputs: &[Option<&Tensor>], blocksize: i64) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let ([n, c, h, w], b) = nchw(x, blocksize)?;
    if h % b != 0 || w % b != 0 {
        return Err(format!(
            "spatial size {h}x{w} is not divisible by blocksize {b}"
        ));
    }
    let out = [
        n,
        b.checked_mul(b)
            .and_then(|bb| bb.checked_mul(c))
            .ok_or("channels overflow")?,
        h / b,
        w / b,
    ];
    checked_size(&out)?;
    crate::dispatch!(x, a => Ok(T::wrap(ArrayD::from_shape_fn(IxDyn(&out), |ix| {
        let (blk, ci) = (ix[1] / c, ix[1] % c);
        a[[ix[0], ci, ix[2] * b + blk / b, ix[3] * b + blk % b]].clone()
    }))))
}

/// ReverseSequence: reverses the first `sequence_lens[b]` steps of every batch entry `b`.
pub fn reverse_sequence(
    inputs: &[Option<&Tensor>],
    batch_axis: i64,
    time_axis: i64,
) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let r = x.shape().len();
    if r < 2 {
        return Err(format!("input must have rank at least 2, it has {r}"));
    }
    let (ba, ta) = (axis_in(batch_axis, r)?, axis_in(time_axis, r)?);
    if ba == ta || ba > 1 || ta > 1 {
        return Err(format!(
            "batch_axis {batch_axis} and time_axis {time_axis} must be 0 and 1"
        ));
    }
    let lens = ints(req(inputs, 1)?, "sequence_lens")?;
    let t = x.shape()[ta] as i64;
    if lens.len() != x.shape()[ba] || lens.iter().any(|&l| !(0..=t).contains(&l)) {
        return Err(format!(
            "sequence_lens {lens:?} does not fit batch {} and time {t}",
            x.shape()[ba]
        ));
    }
    crate::dispatch!(x, a => Ok(T::wrap(ArrayD::from_shape_fn(a.raw_dim(), |mut ix| {
        let l = lens[ix[ba]] as usize;
        if ix[ta] < l {
            ix[ta] = l - 1 - ix[ta];
        }
        a[ix].clone()
    }))))
}

/// Trilu: keeps the upper (`j - i >= k`) or lower (`j - i <= k`) triangle of the last two axes.
pub fn trilu(inputs: &[Option<&Tensor>], upper: bool) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let r = x.shape().len();
    if r < 2 {
        return Err(format!("input must have rank at least 2, it has {r}"));
    }
    let k = opt(inputs, 1)
        .map(|t| int_scalar(t, "k"))
        .transpose()?
        .unwrap_or(0);
    let keep = |i: usize, j: usize| {
        let d = j as i128 - i as i128;
        if upper {
            d >= k as i128
        } else {
            d <= k as i128
        }
    };
    crate::dispatch!(x, a => {
        let mut out = a.clone();
        for (ix, v) in out.indexed_iter_mut() {
            if !keep(ix[r - 2], ix[r - 1]) {
                *v = T::default();
            }
        }
        Ok(T::wrap(out))
    })
}

/// Compress: keeps the slices along `axis` (or elements of the flattened input) whose
/// condition is true.
pub fn compress(inputs: &[Option<&Tensor>], axis: Option<i64>) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let cond: Vec<bool> = req(inputs, 1)?
        .to_f64_vec()
        .iter()
        .map(|&v| v != 0.0)
        .collect();
    let flat;
    let (src, ax) = match axis {
        Some(a) => (x, axis_in(a, x.shape().len())?),
        None => {
            flat = reshaped(x, &[x.len()])?;
            (&flat, 0)
        }
    };
    let d = *src
        .shape()
        .get(ax)
        .ok_or("cannot compress a scalar along an axis")?;
    let keep: Vec<Option<usize>> = cond
        .iter()
        .enumerate()
        .filter(|c| *c.1)
        .map(|c| Some(c.0))
        .collect();
    if let Some(Some(i)) = keep.last().filter(|i| i.unwrap_or(0) >= d) {
        return Err(format!(
            "condition selects index {i} of a dimension of size {d}"
        ));
    }
    let mut idx: Vec<Vec<Option<usize>>> = src.shape().iter().map(|&d| all(d)).collect();
    idx[ax] = keep;
    crate::dispatch!(src, a => take_axes(a, &idx, &T::default()).map(T::wrap))
}

/// NonZero: the indices of the non-zero elements, as an i64 `[rank, count]` tensor.
pub fn non_zero(inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let nz: Vec<Vec<usize>> = crate::dispatch!(x, a => a
        .indexed_iter()
        .filter(|(_, v)| v.to_bool())
        .map(|(ix, _)| ndarray::Dimension::slice(&ix).to_vec())
        .collect());
    let r = x.shape().len();
    let data: Vec<i64> = (0..r)
        .flat_map(|ax| nz.iter().map(move |ix| ix[ax] as i64))
        .collect();
    Tensor::from_vec(&[r, nz.len()], data)
}

/// EyeLike: ones on diagonal `k` of a 2-D shape like the input, in `dtype` or the input's type.
pub fn eye_like(
    inputs: &[Option<&Tensor>],
    dtype: Option<DType>,
    k: i64,
) -> Result<Tensor, String> {
    let x = req(inputs, 0)?;
    let s = x.shape();
    if s.len() != 2 {
        return Err(format!("input must be 2-D, it has shape {s:?}"));
    }
    let mut out = Tensor::zeros(dtype.unwrap_or(x.dtype()), s);
    crate::dispatch!(&mut out, a => {
        for (ix, v) in a.indexed_iter_mut() {
            if ix[1] as i64 - ix[0] as i64 == k {
                *v = T::from_i64(1);
            }
        }
    });
    Ok(out)
}

/// ConstantOfShape: a tensor of the given shape filled with `value` (default f32 0).
pub fn constant_of_shape(
    inputs: &[Option<&Tensor>],
    value: Option<&Tensor>,
) -> Result<Tensor, String> {
    let shape = dims(&ints(req(inputs, 0)?, "shape")?, "shape")?;
    checked_size(&shape)?;
    let default = Tensor::scalar(0f32);
    let v = value.unwrap_or(&default);
    if v.len() != 1 {
        return Err(format!("value must have one element, it has {}", v.len()));
    }
    Ok(
        crate::dispatch!(v, a => T::wrap(ArrayD::from_elem(IxDyn(&shape), a.iter().next().expect("one element").clone()))),
    )
}

/// Range: `start, start + delta, ...` up to (excluding) `limit`.
pub fn range(inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
    let start = req(inputs, 0)?;
    fn go<T: Num>(inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
        let get = |i: usize| -> Result<T, String> {
            let a = arr::<T>(inputs, i)?;
            match a.len() {
                1 => Ok(*a.iter().next().expect("one element")),
                n => Err(format!("input {i} must have one element, it has {n}")),
            }
        };
        let (s, l, d) = (get(0)?, get(1)?, get(2)?);
        let n = if T::DTYPE.is_float() {
            let n = ((l.to_f64() - s.to_f64()) / d.to_f64()).ceil();
            if !n.is_finite() {
                return Err("range has an infinite or undefined length".into());
            }
            n.max(0.0).min(u64::MAX as f64) as u64
        } else {
            let (s, l, d) = (s.to_i64() as i128, l.to_i64() as i128, d.to_i64() as i128);
            if d == 0 {
                return Err("range delta is 0".into());
            }
            let span = l - s;
            let n = if (span > 0) == (d > 0) && span != 0 {
                (span.abs() + d.abs() - 1) / d.abs()
            } else {
                0
            };
            n.min(u64::MAX as i128) as u64
        };
        let n = usize::try_from(n).map_err(|_| "range is too long".to_string())?;
        checked_size(&[n])?;
        let data: Vec<T> = if T::DTYPE.is_float() {
            (0..n)
                .map(|i| T::from_f64(s.to_f64() + i as f64 * d.to_f64()))
                .collect()
        } else {
            (0..n)
                .map(|i| T::from_i64(s.to_i64().wrapping_add((i as i64).wrapping_mul(d.to_i64()))))
                .collect()
        };
        Ok(T::wrap(from_parts(&[n], data)))
    }
    crate::dispatch_numeric!(start, _a => go::<T>(inputs), _ => Err(format!("range of {} is not supported", start.dtype())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).unwrap()
    }
    fn i64t(v: &[i64]) -> Tensor {
        Tensor::from_vec(&[v.len()], v.to_vec()).unwrap()
    }
    fn iota(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        f32t(shape, &(0..n).map(|i| i as f32).collect::<Vec<_>>())
    }

    #[test]
    fn shape_start_end_clamp() {
        let x = iota(&[2, 3, 4]);
        assert_eq!(shape(&[Some(&x)], 0, None).unwrap(), i64t(&[2, 3, 4]));
        assert_eq!(shape(&[Some(&x)], -2, None).unwrap(), i64t(&[3, 4]));
        assert_eq!(shape(&[Some(&x)], -10, Some(10)).unwrap(), i64t(&[2, 3, 4]));
        assert_eq!(shape(&[Some(&x)], 2, Some(1)).unwrap(), i64t(&[]));
        assert_eq!(size(&[Some(&x)]).unwrap(), Tensor::scalar(24i64));
    }

    #[test]
    fn reshape_zero_and_infer() {
        let x = iota(&[2, 3, 4]);
        let s = i64t(&[0, -1]);
        assert_eq!(
            reshape(&[Some(&x), Some(&s)], false).unwrap().shape(),
            &[2, 12]
        );
        let s = i64t(&[-1, 0, 2]);
        assert_eq!(
            reshape(&[Some(&x), Some(&s)], false).unwrap().shape(),
            &[4, 3, 2]
        );
        let e = Tensor::from_vec::<f32>(&[0, 3], vec![]).unwrap();
        let s = i64t(&[3, 0]);
        assert_eq!(
            reshape(&[Some(&e), Some(&s)], true).unwrap().shape(),
            &[3, 0]
        );
        assert!(reshape(&[Some(&x), Some(&i64t(&[5, -1]))], false).is_err());
        assert!(reshape(&[Some(&x), Some(&i64t(&[-1, -1]))], false).is_err());
    }

    #[test]
    fn flatten_and_transpose() {
        let x = iota(&[2, 3, 4]);
        assert_eq!(flatten(&[Some(&x)], 3).unwrap().shape(), &[24, 1]);
        assert_eq!(flatten(&[Some(&x)], -1).unwrap().shape(), &[6, 4]);
        assert_eq!(flatten(&[Some(&x)], 0).unwrap().shape(), &[1, 24]);
        let m = iota(&[2, 3]);
        assert_eq!(
            transpose(&[Some(&m)], None).unwrap(),
            f32t(&[3, 2], &[0., 3., 1., 4., 2., 5.])
        );
        let t = transpose(&[Some(&x)], Some(&[1, -1, 0])).unwrap();
        assert_eq!(t.shape(), &[3, 4, 2]);
        // Element [1, 2, 1] of the result is x[1, 1, 2] = 12 + 4 + 2.
        assert_eq!(t.as_array::<f32>().unwrap()[[1, 2, 1]], 18.0);
        assert!(transpose(&[Some(&x)], Some(&[0, 0, 1])).is_err());
    }

    #[test]
    fn squeeze_unsqueeze() {
        let x = iota(&[1, 3, 1]);
        assert_eq!(squeeze(&[Some(&x)]).unwrap().shape(), &[3]);
        assert_eq!(
            squeeze(&[Some(&x), Some(&i64t(&[-1]))]).unwrap().shape(),
            &[1, 3]
        );
        assert!(squeeze(&[Some(&x), Some(&i64t(&[1]))]).is_err());
        assert_eq!(
            unsqueeze(&[Some(&x), Some(&i64t(&[0, -1]))])
                .unwrap()
                .shape(),
            &[1, 1, 3, 1, 1]
        );
        let s = Tensor::scalar(1.0f32);
        assert_eq!(
            unsqueeze(&[Some(&s), Some(&i64t(&[0]))]).unwrap().shape(),
            &[1]
        );
    }

    #[test]
    fn concat_strings_and_empty() {
        let a = Tensor::from_vec(&[1, 2], vec!["a".to_string(), "b".into()]).unwrap();
        let b = Tensor::from_vec(&[1, 1], vec!["c".to_string()]).unwrap();
        let c = concat(&[Some(&a), Some(&b)], -1).unwrap();
        assert_eq!(
            c,
            Tensor::from_vec(&[1, 3], vec!["a".to_string(), "b".into(), "c".into()]).unwrap()
        );
        let e = Tensor::from_vec::<f32>(&[0, 2], vec![]).unwrap();
        let m = iota(&[1, 2]);
        assert_eq!(concat(&[Some(&e), Some(&m)], 0).unwrap(), m);
        assert!(concat(&[Some(&m), Some(&b)], 0).is_err());
    }

    #[test]
    fn split_uneven_and_explicit() {
        let x = iota(&[5]);
        let outs = split(&[Some(&x)], 0, Some(3), 3).unwrap();
        assert_eq!(
            outs,
            vec![
                f32t(&[2], &[0., 1.]),
                f32t(&[2], &[2., 3.]),
                f32t(&[1], &[4.])
            ]
        );
        let outs = split(&[Some(&x), Some(&i64t(&[0, 5]))], -1, None, 2).unwrap();
        assert_eq!(outs[0].shape(), &[0]);
        assert_eq!(outs[1], x);
        assert!(split(&[Some(&x), Some(&i64t(&[1, 2]))], 0, None, 2).is_err());
    }

    #[test]
    fn slice_steps_and_sentinels() {
        let x = iota(&[10]);
        let run = |s: i64, e: i64, st: i64| {
            let (s, e, st) = (i64t(&[s]), i64t(&[e]), i64t(&[st]));
            slice(&[Some(&x), Some(&s), Some(&e), None, Some(&st)])
                .unwrap()
                .to_f64_vec()
        };
        assert_eq!(run(1, 8, 3), vec![1., 4., 7.]);
        assert_eq!(
            run(-1, i64::MIN, -1),
            (0..10).rev().map(|i| i as f64).collect::<Vec<_>>()
        );
        assert_eq!(run(20, -20, -4), vec![9., 5., 1.]);
        assert_eq!(run(0, i64::MAX, 1).len(), 10);
        assert_eq!(run(5, 2, 1), Vec::<f64>::new());
        assert_eq!(run(i64::MAX, i64::MIN, i64::MIN), vec![9.]);
        assert_eq!(run(i64::MIN, i64::MAX, i64::MAX), vec![0.]);
        let m = iota(&[2, 3]);
        let out = slice(&[
            Some(&m),
            Some(&i64t(&[1])),
            Some(&i64t(&[-1])),
            Some(&i64t(&[-1])),
        ])
        .unwrap();
        assert_eq!(out, f32t(&[2, 1], &[1., 4.]));
        let zero = i64t(&[0]);
        assert!(slice(&[Some(&m), Some(&zero), Some(&zero), None, Some(&zero)]).is_err());
    }

    #[test]
    fn expand_and_tile() {
        let x = f32t(&[3, 1], &[1., 2., 3.]);
        let out = expand(&[Some(&x), Some(&i64t(&[2, 1, 2]))]).unwrap();
        assert_eq!(
            out,
            f32t(
                &[2, 3, 2],
                &[1., 1., 2., 2., 3., 3., 1., 1., 2., 2., 3., 3.]
            )
        );
        assert!(expand(&[Some(&x), Some(&i64t(&[2, 2]))]).is_err());
        assert!(expand(&[Some(&x), Some(&i64t(&[1 << 40, 1 << 40]))]).is_err());
        let m = f32t(&[1, 2], &[1., 2.]);
        assert_eq!(
            tile(&[Some(&m), Some(&i64t(&[2, 2]))]).unwrap(),
            f32t(&[2, 4], &[1., 2., 1., 2., 1., 2., 1., 2.])
        );
        assert_eq!(
            tile(&[Some(&m), Some(&i64t(&[0, 1]))]).unwrap().shape(),
            &[0, 2]
        );
    }

    #[test]
    fn pad_modes() {
        let x = f32t(&[4], &[1., 2., 3., 4.]);
        let p = |mode: &str, b: i64, e: i64| {
            pad(
                &[Some(&x), Some(&i64t(&[b, e])), Some(&Tensor::scalar(9f32))],
                mode,
            )
            .unwrap()
            .to_f64_vec()
        };
        // Expected values from numpy.pad.
        assert_eq!(p("constant", 2, 1), vec![9., 9., 1., 2., 3., 4., 9.]);
        assert_eq!(p("edge", 2, 1), vec![1., 1., 1., 2., 3., 4., 4.]);
        assert_eq!(p("reflect", 3, 2), vec![4., 3., 2., 1., 2., 3., 4., 3., 2.]);
        assert_eq!(p("wrap", 2, 3), vec![3., 4., 1., 2., 3., 4., 1., 2., 3.]);
        assert_eq!(p("constant", -1, 1), vec![2., 3., 4., 9.]);
        assert!(pad(&[Some(&x), Some(&i64t(&[-3, -2]))], "constant").is_err());
        assert!(pad(&[Some(&x), Some(&i64t(&[i64::MAX, i64::MAX]))], "edge").is_err());
        assert!(pad(&[Some(&x), Some(&i64t(&[i64::MIN, 0]))], "wrap").is_err());
        assert!(pad(&[Some(&x), Some(&i64t(&[0, 0]))], "mirror").is_err());
        let m = iota(&[2, 2]);
        let out = pad(
            &[Some(&m), Some(&i64t(&[1, 0])), None, Some(&i64t(&[-1]))],
            "constant",
        )
        .unwrap();
        assert_eq!(out, f32t(&[2, 3], &[0., 0., 1., 0., 2., 3.]));
    }

    #[test]
    fn center_crop_pad_odd() {
        let x = iota(&[5]);
        assert_eq!(
            center_crop_pad(&[Some(&x), Some(&i64t(&[2]))], None)
                .unwrap()
                .to_f64_vec(),
            vec![1., 2.]
        );
        assert_eq!(
            center_crop_pad(&[Some(&x), Some(&i64t(&[8]))], None)
                .unwrap()
                .to_f64_vec(),
            vec![0., 0., 1., 2., 3., 4., 0., 0.]
        );
    }

    #[test]
    fn depth_space_round_trip() {
        let x = iota(&[1, 8, 1, 1]);
        let d = depth_to_space(&[Some(&x)], 2, "DCR").unwrap();
        // numpy: x.reshape(1,2,2,2,1,1).transpose(0,3,4,1,5,2).reshape(1,2,2,2)
        assert_eq!(d.to_f64_vec(), vec![0., 2., 4., 6., 1., 3., 5., 7.]);
        let c = depth_to_space(&[Some(&x)], 2, "CRD").unwrap();
        assert_eq!(c, x.reshape(&[1, 2, 2, 2]).unwrap());
        assert_eq!(space_to_depth(&[Some(&d)], 2).unwrap(), x);
        assert!(space_to_depth(&[Some(&iota(&[1, 1, 3, 3]))], 2).is_err());
        assert!(space_to_depth(&[Some(&x)], i64::MAX).is_err());
        assert!(depth_to_space(&[Some(&x)], 1 << 40, "DCR").is_err());
    }

    #[test]
    fn reverse_sequence_batch_first() {
        let x = iota(&[2, 3]);
        let out = reverse_sequence(&[Some(&x), Some(&i64t(&[2, 3]))], 0, 1).unwrap();
        assert_eq!(out, f32t(&[2, 3], &[1., 0., 2., 5., 4., 3.]));
        assert!(reverse_sequence(&[Some(&x), Some(&i64t(&[4, 0]))], 0, 1).is_err());
    }

    #[test]
    fn trilu_k() {
        let x = iota(&[3, 3]);
        let up = trilu(&[Some(&x), Some(&Tensor::scalar(1i64))], true).unwrap();
        assert_eq!(up.to_f64_vec(), vec![0., 1., 2., 0., 0., 5., 0., 0., 0.]);
        let lo = trilu(&[Some(&x), Some(&Tensor::scalar(-1i64))], false).unwrap();
        assert_eq!(lo.to_f64_vec(), vec![0., 0., 0., 3., 0., 0., 6., 7., 0.]);
    }

    #[test]
    fn compress_and_nonzero() {
        let x = iota(&[3, 2]);
        let c = Tensor::from_vec(&[2], vec![false, true]).unwrap();
        assert_eq!(
            compress(&[Some(&x), Some(&c)], Some(-1)).unwrap(),
            f32t(&[3, 1], &[1., 3., 5.])
        );
        assert_eq!(
            compress(&[Some(&x), Some(&c)], None).unwrap(),
            f32t(&[1], &[1.])
        );
        let big = Tensor::from_vec(&[4], vec![false, false, false, true]).unwrap();
        assert!(compress(&[Some(&x), Some(&big)], Some(0)).is_err());
        let nz = non_zero(&[Some(&f32t(&[2, 2], &[1., 0., 0., 3.]))]).unwrap();
        assert_eq!(nz, Tensor::from_vec(&[2, 2], vec![0i64, 1, 0, 1]).unwrap());
    }

    #[test]
    fn creation() {
        let e = eye_like(&[Some(&iota(&[2, 3]))], Some(DType::I32), 1).unwrap();
        assert_eq!(
            e,
            Tensor::from_vec(&[2, 3], vec![0i32, 1, 0, 0, 0, 1]).unwrap()
        );
        let c = constant_of_shape(&[Some(&i64t(&[2, 0]))], None).unwrap();
        assert_eq!(c, Tensor::from_vec::<f32>(&[2, 0], vec![]).unwrap());
        let c = constant_of_shape(
            &[Some(&i64t(&[]))],
            Some(&Tensor::from_vec(&[1], vec![7i64]).unwrap()),
        )
        .unwrap();
        assert_eq!(c, Tensor::scalar(7i64));
        assert!(constant_of_shape(&[Some(&i64t(&[1 << 40, 1 << 40]))], None).is_err());
        let r = range(&[
            Some(&Tensor::scalar(10i32)),
            Some(&Tensor::scalar(4i32)),
            Some(&Tensor::scalar(-3i32)),
        ]);
        assert_eq!(r.unwrap(), Tensor::from_vec(&[2], vec![10i32, 7]).unwrap());
        let r = range(&[
            Some(&Tensor::scalar(1f32)),
            Some(&Tensor::scalar(2f32)),
            Some(&Tensor::scalar(0.25f32)),
        ]);
        assert_eq!(r.unwrap(), f32t(&[4], &[1., 1.25, 1.5, 1.75]));
        assert!(range(&[
            Some(&Tensor::scalar(0i64)),
            Some(&Tensor::scalar(i64::MAX)),
            Some(&Tensor::scalar(1i64))
        ])
        .is_err());
        assert!(range(&[
            Some(&Tensor::scalar(0i64)),
            Some(&Tensor::scalar(1i64)),
            Some(&Tensor::scalar(0i64))
        ])
        .is_err());
    }
}
