//! Rules for element-wise ops, data movement, shape arithmetic and reductions.

use super::dims::*;
use super::Fact;
use crate::ir::{DType, Dim, Shape, Tensor, TypeInfo};

type Ins<'a, 'b> = &'b [Option<Fact<'a>>];

/// The output has the type of input `i`.
pub fn same(ins: Ins<'_, '_>, i: usize) -> Res<TypeInfo> {
    Ok(req(ins, i)?.ty.clone())
}

/// The output has the shape of input `i` and element type `dtype`.
pub fn same_shape(ins: Ins<'_, '_>, i: usize, dtype: DType) -> Res<TypeInfo> {
    Ok(ty(dtype, req(ins, i)?.ty.shape.clone()))
}

/// Multidirectional broadcast of every present input. When `same_dtype`, the inputs must
/// share their element type. The result has element type `out` or that of the first input.
pub fn broadcast_all(ins: Ins<'_, '_>, same_dtype: bool, out: Option<DType>) -> Res<TypeInfo> {
    let first = req(ins, 0)?;
    let mut shape = first.ty.shape.clone();
    let mut acc = first.ty.clone();
    for f in ins.iter().skip(1).flatten() {
        if same_dtype && f.dtype() != first.dtype() {
            return Err(format!(
                "inputs {} and {} have different element types",
                first.ty, f.ty
            ));
        }
        shape = broadcast(&shape, &f.ty.shape)
            .ok_or_else(|| format!("inputs {} and {} do not broadcast", acc, f.ty))?;
        acc = ty(acc.dtype, shape.clone());
    }
    Ok(ty(out.unwrap_or(first.dtype()), shape))
}

/// `Where(cond, x, y)`: broadcast of the three, element type of `x`.
pub fn where_(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let (x, y) = (req(ins, 1)?, req(ins, 2)?);
    if x.dtype() != y.dtype() {
        return Err(format!(
            "inputs {} and {} have different element types",
            x.ty, y.ty
        ));
    }
    broadcast_all(ins, false, Some(x.dtype()))
}

/// `Shape` with `start`/`end`.
pub fn shape(ins: Ins<'_, '_>, start: i64, end: Option<i64>) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let len = x.rank().map(|r| {
        let (s, e) = shape_range(r, start, end);
        Dim::Known(e.saturating_sub(s))
    });
    Ok(ty(
        DType::I64,
        Shape::Ranked(vec![len.unwrap_or(Dim::Unknown)]),
    ))
}

/// The clamped `[start, end)` range of dims `Shape` returns for rank `r`.
pub fn shape_range(r: usize, start: i64, end: Option<i64>) -> (usize, usize) {
    let clamp = |v: i64| {
        let v = if v < 0 { v + r as i64 } else { v };
        v.clamp(0, r as i64) as usize
    };
    (clamp(start), clamp(end.unwrap_or(r as i64)))
}

/// `Reshape` with a target shape input (`0` copies, `-1` infers).
pub fn reshape(ins: Ins<'_, '_>, allowzero: i64) -> Res<TypeInfo> {
    let (x, s) = (req(ins, 0)?, req(ins, 1)?);
    let Some(target) = s.ints() else {
        return Ok(ty(x.dtype(), unknown_or_unranked(s.len_1d())));
    };
    let mut out = Vec::with_capacity(target.len());
    let mut minus = None;
    for (i, &v) in target.iter().enumerate() {
        match v {
            -1 if minus.is_some() => {
                return Err(format!("target shape {target:?} has more than one -1"))
            }
            -1 => {
                minus = Some(i);
                out.push(Dim::Unknown);
            }
            0 if allowzero == 0 => match x.dims() {
                Some(d) if i < d.len() => out.push(d[i].clone()),
                Some(_) => {
                    return Err(format!(
                        "target shape {target:?} copies dim {i} with 0 but the input is {}",
                        x.ty
                    ))
                }
                None => out.push(Dim::Unknown),
            },
            v if v < 0 => return Err(format!("target shape {target:?} has the negative dim {v}")),
            v => out.push(Dim::Known(v as usize)),
        }
    }
    let bad = || format!("cannot reshape {} to {target:?}", x.ty);
    match (minus, x.dims()) {
        (Some(m), Some(d)) => out[m] = infer_minus_one(d, &out, m).ok_or_else(bad)?,
        (None, _) => {
            if let (Some(a), Some(b)) = (
                x.ty.shape.num_elements(),
                Shape::Ranked(out.clone()).num_elements(),
            ) {
                if a != b {
                    return Err(bad());
                }
            }
        }
        (Some(_), None) => {}
    }
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}

/// The dim a `-1` in a reshape target stands for: `None` when it cannot exist.
fn infer_minus_one(input: &[Dim], out: &[Dim], m: usize) -> Option<Dim> {
    let split = |dims: &mut dyn Iterator<Item = &Dim>| {
        let (mut known, mut syms, mut unknown) = (1u128, Vec::new(), false);
        for d in dims {
            match d {
                Dim::Known(n) => known = known.saturating_mul(*n as u128),
                Dim::Sym(s) => syms.push(s.clone()),
                Dim::Unknown => unknown = true,
            }
        }
        (known, syms, unknown)
    };
    let (kin, mut sin, uin) = split(&mut input.iter());
    let (kout, sout, uout) = split(
        &mut out
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != m)
            .map(|(_, d)| d),
    );
    if uin || uout {
        return Some(Dim::Unknown);
    }
    for s in &sout {
        match sin.iter().position(|x| x == s) {
            Some(p) => {
                sin.remove(p);
            }
            None => return Some(Dim::Unknown),
        }
    }
    if kout == 0 {
        return if kin == 0 { Some(Dim::Unknown) } else { None };
    }
    match sin.as_slice() {
        [] if kin % kout == 0 => Some(Dim::Known((kin / kout) as usize)),
        [] => None,
        [s] if kin == kout => Some(Dim::Sym(s.clone())),
        _ => Some(Dim::Unknown),
    }
}

/// `Flatten` at `axis`.
pub fn flatten(ins: Ins<'_, '_>, axis: i64) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let Some(d) = x.dims() else {
        return Ok(ty(x.dtype(), unknown(2)));
    };
    let r = d.len() as i64;
    if axis < -r || axis > r {
        return Err(format!("axis {axis} is out of range for rank {r}"));
    }
    let a = if axis < 0 { axis + r } else { axis } as usize;
    Ok(ty(
        x.dtype(),
        Shape::Ranked(vec![product(&d[..a]), product(&d[a..])]),
    ))
}

/// `Transpose` with an optional permutation (default: reverse).
pub fn transpose(ins: Ins<'_, '_>, perm: &Option<Vec<i64>>) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let Some(d) = x.dims() else {
        return Ok(ty(
            x.dtype(),
            unknown_or_unranked(perm.as_ref().map(Vec::len)),
        ));
    };
    let p: Vec<usize> = match perm {
        None => (0..d.len()).rev().collect(),
        Some(p) => {
            if p.len() != d.len() {
                return Err(format!("perm {p:?} does not match the rank of {}", x.ty));
            }
            norm_axes(p, d.len()).map_err(|e| format!("perm {p:?}: {e}"))?
        }
    };
    Ok(ty(
        x.dtype(),
        Shape::Ranked(p.iter().map(|&i| d[i].clone()).collect()),
    ))
}

/// `Squeeze` with an optional `axes` input.
pub fn squeeze(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let axes = opt(ins, 1).filter(|a| a.len_1d() != Some(0));
    let shape = match (axes, x.dims()) {
        (None, None) => Shape::Unranked,
        (None, Some(d)) => {
            if d.iter().all(|d| d.known().is_some()) {
                Shape::Ranked(d.iter().filter(|d| **d != Dim::Known(1)).cloned().collect())
            } else {
                Shape::Unranked
            }
        }
        (Some(a), d) => match (a.ints(), d) {
            (Some(axes), Some(d)) => {
                let axes = norm_axes(&axes, d.len())?;
                for &a in &axes {
                    if let Some(n) = d[a].known().filter(|&n| n != 1) {
                        return Err(format!("cannot squeeze axis {a} of size {n} in {}", x.ty));
                    }
                }
                Shape::Ranked(
                    d.iter()
                        .enumerate()
                        .filter(|(i, _)| !axes.contains(i))
                        .map(|(_, d)| d.clone())
                        .collect(),
                )
            }
            (_, d) => match (d, a.len_1d()) {
                (Some(d), Some(n)) if n <= d.len() => unknown(d.len() - n),
                (Some(_), Some(n)) => return Err(format!("cannot squeeze {n} axes of {}", x.ty)),
                _ => Shape::Unranked,
            },
        },
    };
    Ok(ty(x.dtype(), shape))
}

/// `Unsqueeze` with an `axes` input.
pub fn unsqueeze(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let (x, a) = (req(ins, 0)?, req(ins, 1)?);
    let Some(d) = x.dims() else {
        return Ok(ty(x.dtype(), Shape::Unranked));
    };
    let Some(axes) = a.ints() else {
        return Ok(ty(
            x.dtype(),
            unknown_or_unranked(a.len_1d().map(|n| n + d.len())),
        ));
    };
    let r = d.len() + axes.len();
    let axes = norm_axes(&axes, r)?;
    let mut rest = d.iter();
    let out = (0..r)
        .map(|i| {
            if axes.contains(&i) {
                Dim::Known(1)
            } else {
                rest.next().cloned().unwrap_or(Dim::Unknown)
            }
        })
        .collect();
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}

/// `Concat` along `axis`.
pub fn concat(ins: Ins<'_, '_>, axis: i64) -> Res<TypeInfo> {
    let first = req(ins, 0)?;
    let all: Vec<Fact<'_>> = ins.iter().flatten().copied().collect();
    for f in &all {
        if f.dtype() != first.dtype() {
            return Err(format!(
                "Concat inputs {} and {} have different element types",
                first.ty, f.ty
            ));
        }
    }
    let ranked: Vec<&Fact<'_>> = all.iter().filter(|f| f.rank().is_some()).collect();
    let Some(r0) = ranked.first() else {
        return Ok(ty(first.dtype(), Shape::Unranked));
    };
    let rank = r0.rank().expect("filtered on ranked");
    for f in &ranked {
        if f.rank() != Some(rank) {
            return Err(format!(
                "Concat inputs differ in rank ({} and {})",
                r0.ty, f.ty
            ));
        }
    }
    let a = norm_axis(axis, rank)?;
    let mut out = r0.dims().expect("ranked").to_vec();
    out[a] = Dim::Known(0);
    for f in &all {
        let Some(d) = f.dims() else {
            out[a] = Dim::Unknown;
            continue;
        };
        for i in 0..rank {
            if i == a {
                out[a] = add(&out[a], &d[a]);
            } else {
                out[i] = unify(&out[i], &d[i]).ok_or_else(|| {
                    format!("Concat inputs {} and {} differ in dim {i}", r0.ty, f.ty)
                })?;
            }
        }
    }
    Ok(ty(first.dtype(), Shape::Ranked(out)))
}

/// `Split` along `axis` into `n` outputs, by the `split` input or evenly.
pub fn split(
    ins: Ins<'_, '_>,
    axis: i64,
    num_outputs: Option<i64>,
    n: usize,
) -> Res<Vec<TypeInfo>> {
    let x = req(ins, 0)?;
    if let Some(k) = num_outputs {
        if k != n as i64 {
            return Err(format!("num_outputs is {k} but the node has {n} outputs"));
        }
    }
    let Some(d) = x.dims() else {
        return Ok(vec![x.ty.clone(); n]);
    };
    let a = norm_axis(axis, d.len())?;
    let sizes: Vec<Dim> = match opt(ins, 1).filter(|s| s.len_1d() != Some(0)) {
        Some(s) => match s.ints() {
            Some(v) => {
                if v.len() != n {
                    return Err(format!(
                        "split {v:?} has {} entries for {n} outputs",
                        v.len()
                    ));
                }
                let total: i64 = v.iter().sum();
                if let Some(k) = d[a].known().filter(|&k| total != k as i64) {
                    return Err(format!(
                        "split {v:?} does not sum to dim {a} of {} ({k})",
                        x.ty
                    ));
                }
                v.iter()
                    .map(|&s| dim_from_i64(s, "split size"))
                    .collect::<Res<_>>()?
            }
            None => vec![Dim::Unknown; n],
        },
        None => match d[a].known() {
            Some(k) if n > 0 => {
                // Chunks of ceil(k / n), the last one smaller. A split that cannot be done
                // this way only fails when run (it may sit in a branch never taken).
                let chunk = k.div_ceil(n);
                match k.checked_sub(chunk * (n - 1)) {
                    Some(last) => (0..n)
                        .map(|i| Dim::Known(if i + 1 == n { last } else { chunk }))
                        .collect(),
                    None => vec![Dim::Unknown; n],
                }
            }
            _ => vec![Dim::Unknown; n],
        },
    };
    Ok(sizes
        .into_iter()
        .map(|s| {
            let mut o = d.to_vec();
            o[a] = s;
            ty(x.dtype(), Shape::Ranked(o))
        })
        .collect())
}

/// Number of elements a slice `start..end` by `step` selects from a dim of size `d`.
pub fn slice_len(d: usize, start: i64, end: i64, step: i64) -> Res<usize> {
    if step == 0 {
        return Err("slice step is 0".into());
    }
    if d == 0 {
        return Ok(0);
    }
    let (d, start, end, step) = (d as i128, start as i128, end as i128, step as i128);
    let norm = |v: i128| if v < 0 { v + d } else { v };
    let n = if step > 0 {
        let (s, e) = (norm(start).clamp(0, d), norm(end).clamp(0, d));
        (e - s + step - 1).div_euclid(step)
    } else {
        let (s, e) = (norm(start).clamp(0, d - 1), norm(end).clamp(-1, d - 1));
        (s - e - step - 1).div_euclid(-step)
    };
    Ok(n.max(0) as usize)
}

/// `Slice` with `starts`, `ends` and optional `axes`, `steps` inputs.
pub fn slice(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let (sf, ef) = (req(ins, 1)?, req(ins, 2)?);
    let Some(d) = x.dims() else {
        return Ok(x.ty.clone());
    };
    let r = d.len();
    let all_unknown = || Ok(ty(x.dtype(), unknown(r)));
    let n = match sf.len_1d().or(ef.len_1d()) {
        Some(n) => n,
        None => return all_unknown(),
    };
    let axes: Vec<usize> = match opt(ins, 3) {
        None => (0..n.min(r)).collect(),
        Some(a) => match a.ints() {
            Some(v) => norm_axes(&v, r)?,
            None => return all_unknown(),
        },
    };
    if axes.len() != n {
        return Err(format!("Slice has {n} starts but {} axes", axes.len()));
    }
    let (starts, ends) = (sf.ints(), ef.ints());
    let steps = match opt(ins, 4) {
        None => Some(vec![1; n]),
        Some(s) => s.ints(),
    };
    let mut out = d.to_vec();
    for (i, &a) in axes.iter().enumerate() {
        out[a] = match (&starts, &ends, &steps) {
            (Some(s), Some(e), Some(st)) if s.len() == n && e.len() == n && st.len() == n => {
                match &d[a] {
                    Dim::Known(k) => Dim::Known(slice_len(*k, s[i], e[i], st[i])?),
                    other if s[i] == 0 && st[i] == 1 && e[i] >= i32::MAX as i64 => other.clone(),
                    _ => Dim::Unknown,
                }
            }
            (Some(s), Some(e), Some(st)) if s.len() != n || e.len() != n || st.len() != n => {
                return Err(format!(
                    "Slice starts {s:?}, ends {e:?} and steps {st:?} differ in length"
                ))
            }
            _ => Dim::Unknown,
        };
    }
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}

/// `Gather` along `axis`.
pub fn gather(ins: Ins<'_, '_>, axis: i64) -> Res<TypeInfo> {
    let (x, i) = (req(ins, 0)?, req(ins, 1)?);
    let (Some(d), Some(id)) = (x.dims(), i.dims()) else {
        return Ok(ty(x.dtype(), Shape::Unranked));
    };
    let a = norm_axis(axis, d.len())?;
    let out = d[..a]
        .iter()
        .chain(id)
        .chain(&d[a + 1..])
        .cloned()
        .collect();
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}

/// `GatherND` with `batch_dims`.
pub fn gather_nd(ins: Ins<'_, '_>, batch_dims: i64) -> Res<TypeInfo> {
    let (x, i) = (req(ins, 0)?, req(ins, 1)?);
    let b = pos(batch_dims, "batch_dims")?;
    let (Some(d), Some(id)) = (x.dims(), i.dims()) else {
        return Ok(ty(x.dtype(), Shape::Unranked));
    };
    let Some(last) = id.last() else {
        return Err("indices must have rank at least 1".into());
    };
    let Some(k) = last.known() else {
        return Ok(ty(x.dtype(), Shape::Unranked));
    };
    if b.saturating_add(k) > d.len() || b >= id.len() {
        return Err(format!(
            "indices {} index too many dims of {} (batch_dims {b})",
            i.ty, x.ty
        ));
    }
    let out = id[..id.len() - 1]
        .iter()
        .chain(&d[b + k..])
        .cloned()
        .collect();
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}

/// `Expand` to a shape input (bidirectional broadcast).
pub fn expand(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let (x, s) = (req(ins, 0)?, req(ins, 1)?);
    let target = match s.ints() {
        Some(v) => Shape::Ranked(
            v.iter()
                .map(|&k| dim_from_i64(k, "expand dim"))
                .collect::<Res<_>>()?,
        ),
        None => unknown_or_unranked(s.len_1d()),
    };
    let out = broadcast(&x.ty.shape, &target)
        .ok_or_else(|| format!("cannot expand {} to {target}", x.ty))?;
    Ok(ty(x.dtype(), out))
}

/// `Tile` by a repeats input.
pub fn tile(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let (x, r) = (req(ins, 0)?, req(ins, 1)?);
    let rank = x.rank().or(r.len_1d());
    let (Some(d), Some(reps)) = (x.dims(), r.ints()) else {
        return Ok(ty(x.dtype(), unknown_or_unranked(rank)));
    };
    if reps.len() != d.len() {
        return Err(format!(
            "repeats {reps:?} do not match the rank of {}",
            x.ty
        ));
    }
    let out = d
        .iter()
        .zip(&reps)
        .map(|(d, &k)| Ok(mul(d, &dim_from_i64(k, "repeat")?)))
        .collect::<Res<_>>()?;
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}

/// `Pad` with `pads` and optional `axes` inputs.
pub fn pad(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let (x, p) = (req(ins, 0)?, req(ins, 1)?);
    let Some(d) = x.dims() else {
        return Ok(x.ty.clone());
    };
    let axes = match opt(ins, 3) {
        None => Some((0..d.len()).collect()),
        Some(a) => a.ints().map(|v| norm_axes(&v, d.len())).transpose()?,
    };
    let (Some(axes), Some(pads)) = (axes, p.ints()) else {
        return Ok(ty(x.dtype(), unknown(d.len())));
    };
    if pads.len() != 2 * axes.len() {
        return Err(format!(
            "pads {pads:?} should have {} entries",
            2 * axes.len()
        ));
    }
    let mut out = d.to_vec();
    for (i, &a) in axes.iter().enumerate() {
        out[a] = offset(&d[a], pads[i].saturating_add(pads[i + axes.len()]))?;
    }
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}

/// `Range(start, limit, delta)`.
pub fn range(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let s = req(ins, 0)?;
    let vals: Option<Vec<f64>> = (0..3)
        .map(|i| opt(ins, i).and_then(|f| f.floats()?.first().copied()))
        .collect();
    let len = match (vals, s.dtype().is_float()) {
        (Some(v), true) => {
            if v[2] == 0.0 {
                return Err("Range delta is 0".into());
            }
            let n = ((v[1] - v[0]) / v[2]).ceil();
            if !n.is_finite() {
                return Err(format!(
                    "Range({}, {}, {}) has no finite length",
                    v[0], v[1], v[2]
                ));
            }
            Dim::Known(n.max(0.0) as usize)
        }
        (Some(_), false) => {
            let i: Vec<i128> = (0..3)
                .map(|i| scalar_int(opt(ins, i)).unwrap_or(0) as i128)
                .collect();
            if i[2] == 0 {
                return Err("Range delta is 0".into());
            }
            let n = (i[1] - i[0] + i[2] - i[2].signum()).div_euclid(i[2]).max(0);
            Dim::Known(usize::try_from(n).map_err(|_| "Range is too long".to_string())?)
        }
        (None, _) => Dim::Unknown,
    };
    Ok(ty(s.dtype(), Shape::Ranked(vec![len])))
}

/// `OneHot(indices, depth, values)` at `axis`.
pub fn one_hot(ins: Ins<'_, '_>, axis: i64) -> Res<TypeInfo> {
    let (i, dep, v) = (req(ins, 0)?, req(ins, 1)?, req(ins, 2)?);
    let Some(d) = i.dims() else {
        return Ok(ty(v.dtype(), Shape::Unranked));
    };
    let depth = match dep.floats().as_deref() {
        Some([k]) if *k >= 0.0 => Dim::Known(*k as usize),
        Some([k]) => return Err(format!("depth {k} is negative")),
        Some(_) => return Err("depth must have one element".into()),
        None => Dim::Unknown,
    };
    let a = norm_axis(axis, d.len() + 1)?;
    let mut out = d.to_vec();
    out.insert(a, depth);
    Ok(ty(v.dtype(), Shape::Ranked(out)))
}

/// Number of non-zero elements of a tensor.
fn count_nonzero(t: &Tensor) -> usize {
    crate::dispatch!(t, a => a.iter().filter(|x| crate::ir::Elem::to_bool(*x)).count())
}

/// `NonZero`: `[rank, count]`, the count known only from a known value.
pub fn non_zero(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let n = x
        .value
        .map_or(Dim::Unknown, |t| Dim::Known(count_nonzero(t)));
    let r = x.rank().map_or(Dim::Unknown, Dim::Known);
    Ok(ty(DType::I64, Shape::Ranked(vec![r, n])))
}

/// `Compress(input, condition)` along `axis` (flattened when absent).
pub fn compress(ins: Ins<'_, '_>, axis: Option<i64>) -> Res<TypeInfo> {
    let (x, c) = (req(ins, 0)?, req(ins, 1)?);
    let count = |limit: Option<usize>| match c.value {
        Some(t) => {
            let v = t.to_f64_vec();
            Dim::Known(
                v.iter()
                    .take(limit.unwrap_or(usize::MAX))
                    .filter(|x| **x != 0.0)
                    .count(),
            )
        }
        None => Dim::Unknown,
    };
    match axis {
        None => Ok(ty(
            x.dtype(),
            Shape::Ranked(vec![count(x.ty.shape.num_elements())]),
        )),
        Some(ax) => {
            let Some(d) = x.dims() else {
                return Ok(x.ty.clone());
            };
            let a = norm_axis(ax, d.len())?;
            let mut out = d.to_vec();
            out[a] = count(d[a].known());
            Ok(ty(x.dtype(), Shape::Ranked(out)))
        }
    }
}

/// `ConstantOfShape(shape)`, element type from `value` (default f32).
pub fn constant_of_shape(ins: Ins<'_, '_>, value: &Option<Tensor>) -> Res<TypeInfo> {
    let s = req(ins, 0)?;
    let dtype = value.as_ref().map_or(DType::F32, Tensor::dtype);
    let shape = match s.ints() {
        Some(v) => Shape::Ranked(
            v.iter()
                .map(|&k| dim_from_i64(k, "dim"))
                .collect::<Res<_>>()?,
        ),
        None => unknown_or_unranked(s.len_1d()),
    };
    Ok(ty(dtype, shape))
}

/// `EyeLike`: a 2-D input's shape, element type `dtype` or the input's.
pub fn eye_like(ins: Ins<'_, '_>, dtype: Option<DType>) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    if let Some(r) = x.rank().filter(|&r| r != 2) {
        return Err(format!(
            "EyeLike needs a 2-D input, got {} (rank {r})",
            x.ty
        ));
    }
    Ok(ty(dtype.unwrap_or(x.dtype()), x.ty.shape.clone()))
}

/// `DepthToSpace` (`to_space`) or `SpaceToDepth` with `blocksize`.
pub fn depth_space(ins: Ins<'_, '_>, blocksize: i64, to_space: bool) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let b = pos(blocksize, "blocksize")?;
    if b == 0 {
        return Err("blocksize must be positive".into());
    }
    let Some(d) = x.dims() else {
        return Ok(ty(x.dtype(), unknown(4)));
    };
    if d.len() != 4 {
        return Err(format!("expected a 4-D input, got {}", x.ty));
    }
    let div = |d: &Dim, k: usize| match d {
        Dim::Known(n) if n % k != 0 => Err(format!("dim {n} of {} is not divisible by {k}", x.ty)),
        Dim::Known(n) => Ok(Dim::Known(n / k)),
        _ => Ok(Dim::Unknown),
    };
    let bb = Dim::Known(b);
    let b2 = b
        .checked_mul(b)
        .ok_or_else(|| format!("blocksize {b} is too large"))?;
    let out = if to_space {
        vec![
            d[0].clone(),
            div(&d[1], b2)?,
            mul(&d[2], &bb),
            mul(&d[3], &bb),
        ]
    } else {
        vec![
            d[0].clone(),
            mul(&d[1], &Dim::Known(b2)),
            div(&d[2], b)?,
            div(&d[3], b)?,
        ]
    };
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}

/// `TopK(x, k)` along `axis`: values and i64 indices.
pub fn top_k(ins: Ins<'_, '_>, axis: i64) -> Res<Vec<TypeInfo>> {
    let (x, k) = (req(ins, 0)?, req(ins, 1)?);
    let Some(d) = x.dims() else {
        return Ok(vec![x.ty.clone(), ty(DType::I64, Shape::Unranked)]);
    };
    let a = norm_axis(axis, d.len())?;
    let kd = match scalar_int(Some(k)) {
        Some(v) => {
            let kd = dim_from_i64(v, "k")?;
            if let (Some(n), Some(kv)) = (d[a].known(), kd.known()) {
                if kv > n {
                    return Err(format!("k {kv} is larger than dim {a} of {}", x.ty));
                }
            }
            kd
        }
        None => Dim::Unknown,
    };
    let mut out = d.to_vec();
    out[a] = kd;
    let s = Shape::Ranked(out);
    Ok(vec![ty(x.dtype(), s.clone()), ty(DType::I64, s)])
}

/// `Unique`: values, first indices, inverse indices, counts.
pub fn unique(ins: Ins<'_, '_>, axis: Option<i64>) -> Res<Vec<TypeInfo>> {
    let x = req(ins, 0)?;
    let u = || Shape::Ranked(vec![Dim::Unknown]);
    let (y, inv) = match axis {
        None => (
            u(),
            Shape::Ranked(vec![x
                .ty
                .shape
                .num_elements()
                .map_or(Dim::Unknown, Dim::Known)]),
        ),
        Some(ax) => match x.dims() {
            Some(d) => {
                let a = norm_axis(ax, d.len())?;
                let mut o = d.to_vec();
                o[a] = Dim::Unknown;
                (Shape::Ranked(o), Shape::Ranked(vec![d[a].clone()]))
            }
            None => (Shape::Unranked, u()),
        },
    };
    Ok(vec![
        ty(x.dtype(), y),
        ty(DType::I64, u()),
        ty(DType::I64, inv),
        ty(DType::I64, u()),
    ])
}

/// `CenterCropPad(input, shape)` on `axes`.
pub fn center_crop_pad(ins: Ins<'_, '_>, axes: &Option<Vec<i64>>) -> Res<TypeInfo> {
    let (x, s) = (req(ins, 0)?, req(ins, 1)?);
    let Some(d) = x.dims() else {
        return Ok(x.ty.clone());
    };
    let axes = match axes {
        Some(a) => norm_axes(a, d.len())?,
        None => (0..d.len()).collect(),
    };
    let mut out = d.to_vec();
    match s.ints() {
        Some(v) if v.len() == axes.len() => {
            for (&a, &k) in axes.iter().zip(&v) {
                out[a] = dim_from_i64(k, "crop size")?;
            }
        }
        Some(v) => {
            return Err(format!(
                "shape {v:?} has {} entries for {} axes",
                v.len(),
                axes.len()
            ))
        }
        None => axes.iter().for_each(|&a| out[a] = Dim::Unknown),
    }
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}

/// A reduction with an optional `axes` input.
pub fn reduce(ins: Ins<'_, '_>, keepdims: i64, noop_with_empty_axes: i64) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let axes = opt(ins, 1).filter(|a| a.len_1d() != Some(0));
    let Some(d) = x.dims() else {
        return Ok(x.ty.clone());
    };
    let axes: Vec<usize> = match axes {
        None if noop_with_empty_axes != 0 => return Ok(x.ty.clone()),
        None => (0..d.len()).collect(),
        Some(a) => match a.ints() {
            Some(v) => norm_axes(&v, d.len())?,
            None if keepdims != 0 => return Ok(ty(x.dtype(), unknown(d.len()))),
            None => {
                return Ok(ty(
                    x.dtype(),
                    unknown_or_unranked(a.len_1d().and_then(|n| d.len().checked_sub(n))),
                ))
            }
        },
    };
    Ok(ty(x.dtype(), reduced(d, &axes, keepdims != 0)))
}

/// `dims` with `axes` reduced (kept as 1 or removed).
pub fn reduced(d: &[Dim], axes: &[usize], keep: bool) -> Shape {
    Shape::Ranked(
        d.iter()
            .enumerate()
            .filter_map(|(i, d)| match (axes.contains(&i), keep) {
                (false, _) => Some(d.clone()),
                (true, true) => Some(Dim::Known(1)),
                (true, false) => None,
            })
            .collect(),
    )
}

/// `ArgMax`/`ArgMin` along `axis`.
pub fn arg_reduce(ins: Ins<'_, '_>, axis: i64, keepdims: i64) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let Some(d) = x.dims() else {
        return Ok(ty(DType::I64, Shape::Unranked));
    };
    let a = norm_axis(axis, d.len())?;
    Ok(ty(DType::I64, reduced(d, &[a], keepdims != 0)))
}

/// An op whose output has input 0's type and which takes an axis attribute: checks the axis.
pub fn same_with_axis(ins: Ins<'_, '_>, axis: i64) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    if let Some(r) = x.rank() {
        norm_axis(axis, r)?;
    }
    Ok(x.ty.clone())
}
