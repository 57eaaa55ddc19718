//! Rules for linear algebra, convolution and pooling, normalization, resizing, recurrent
//! layers, attention, losses and signal ops.

use super::dims::*;
use super::Fact;
use crate::ir::{AutoPad, DType, Dim, Shape, TypeInfo};

type Ins<'a, 'b> = &'b [Option<Fact<'a>>];

/// Numpy matmul of two shapes (1-D operands promoted and their axis removed again).
pub fn matmul_shape(a: &Fact<'_>, b: &Fact<'_>) -> Res<Shape> {
    let (Some(x), Some(y)) = (a.dims(), b.dims()) else {
        return Ok(Shape::Unranked);
    };
    if x.is_empty() || y.is_empty() {
        return Err(format!(
            "MatMul operands {} and {} must not be scalars",
            a.ty, b.ty
        ));
    }
    let xm: Vec<Dim> = if x.len() == 1 {
        vec![Dim::Known(1), x[0].clone()]
    } else {
        x.to_vec()
    };
    let ym: Vec<Dim> = if y.len() == 1 {
        vec![y[0].clone(), Dim::Known(1)]
    } else {
        y.to_vec()
    };
    let (k1, k2) = (&xm[xm.len() - 1], &ym[ym.len() - 2]);
    if unify(k1, k2).is_none() {
        return Err(format!(
            "MatMul operands {} and {} differ in the inner dim ({k1} vs {k2})",
            a.ty, b.ty
        ));
    }
    let batch = broadcast(
        &Shape::Ranked(xm[..xm.len() - 2].to_vec()),
        &Shape::Ranked(ym[..ym.len() - 2].to_vec()),
    )
    .ok_or_else(|| {
        format!(
            "MatMul operands {} and {} have batch dims that do not broadcast",
            a.ty, b.ty
        )
    })?;
    let mut out = batch.dims().expect("ranked").to_vec();
    if x.len() > 1 {
        out.push(xm[xm.len() - 2].clone());
    }
    if y.len() > 1 {
        out.push(ym[ym.len() - 1].clone());
    }
    Ok(Shape::Ranked(out))
}

/// `MatMul` (and `MatMulInteger` with `out` = i32).
pub fn matmul(ins: Ins<'_, '_>, a: usize, b: usize, out: Option<DType>) -> Res<TypeInfo> {
    let (x, y) = (req(ins, a)?, req(ins, b)?);
    if out.is_none() && x.dtype() != y.dtype() {
        return Err(format!(
            "MatMul operands {} and {} have different element types",
            x.ty, y.ty
        ));
    }
    Ok(ty(out.unwrap_or(x.dtype()), matmul_shape(&x, &y)?))
}

/// `Gemm(A, B, C?)`.
pub fn gemm(ins: Ins<'_, '_>, trans_a: i64, trans_b: i64) -> Res<TypeInfo> {
    let (a, b) = (req(ins, 0)?, req(ins, 1)?);
    let two = |f: &Fact<'_>, t: i64| -> Res<(Dim, Dim)> {
        match f.dims() {
            Some([p, q]) => Ok(if t != 0 {
                (q.clone(), p.clone())
            } else {
                (p.clone(), q.clone())
            }),
            Some(_) => Err(format!("Gemm needs 2-D operands, got {}", f.ty)),
            None => Ok((Dim::Unknown, Dim::Unknown)),
        }
    };
    let ((m, k1), (k2, n)) = (two(&a, trans_a)?, two(&b, trans_b)?);
    let c_dtype = opt(ins, 2).map(|c| c.dtype());
    if b.dtype() != a.dtype() || c_dtype.is_some_and(|d| d != a.dtype()) {
        return Err(format!(
            "Gemm operands {}, {}{} must have one element type",
            a.ty,
            b.ty,
            opt(ins, 2)
                .map(|c| format!(" and {}", c.ty))
                .unwrap_or_default()
        ));
    }
    if unify(&k1, &k2).is_none() {
        return Err(format!(
            "Gemm operands {} and {} differ in the inner dim ({k1} vs {k2})",
            a.ty, b.ty
        ));
    }
    let out = Shape::Ranked(vec![m, n]);
    if let Some(c) = opt(ins, 2) {
        match broadcast(&c.ty.shape, &out) {
            Some(s) if s.rank().is_none() || unify_shape(&s, &out).is_some() => {}
            _ => return Err(format!("Gemm bias {} does not broadcast to {out}", c.ty)),
        }
    }
    Ok(ty(a.dtype(), out))
}

/// `Einsum` with `equation`.
pub fn einsum(ins: Ins<'_, '_>, equation: &str) -> Res<TypeInfo> {
    let first = req(ins, 0)?;
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    let facts: Vec<Fact<'_>> = ins.iter().flatten().copied().collect();
    if terms.len() != facts.len() {
        return Err(format!(
            "equation '{equation}' has {} operands, the node {}",
            terms.len(),
            facts.len()
        ));
    }
    let mut labels: Vec<(char, Dim, usize)> = Vec::new(); // label, dim, count
    let mut ellipsis: Option<Shape> = None;
    for (t, f) in terms.iter().zip(&facts) {
        let Some(d) = f.dims() else {
            return Ok(ty(first.dtype(), Shape::Unranked));
        };
        let (pre, post, has_ell) = match t.split_once("...") {
            Some((p, q)) => (p, q, true),
            None => (*t, "", false),
        };
        let named = pre.chars().count() + post.chars().count();
        if named > d.len() || (!has_ell && named != d.len()) {
            return Err(format!("term '{t}' does not match operand {}", f.ty));
        }
        let ell_len = d.len() - named;
        let pre_n = pre.chars().count();
        let ell = Shape::Ranked(d[pre_n..pre_n + ell_len].to_vec());
        if has_ell {
            ellipsis = Some(match &ellipsis {
                None => ell,
                Some(e) => broadcast(e, &ell)
                    .ok_or_else(|| format!("ellipsis dims of '{equation}' do not broadcast"))?,
            });
        }
        let chars = pre
            .chars()
            .zip(&d[..pre_n])
            .chain(post.chars().zip(&d[pre_n + ell_len..]));
        for (c, dim) in chars {
            if !c.is_ascii_alphabetic() {
                return Err(format!("bad label '{c}' in equation '{equation}'"));
            }
            match labels.iter_mut().find(|l| l.0 == c) {
                Some(l) => {
                    l.1 = broadcast_dim(&l.1, dim)
                        .ok_or_else(|| format!("label '{c}' has sizes {} and {dim}", l.1))?;
                    l.2 += 1;
                }
                None => labels.push((c, dim.clone(), 1)),
            }
        }
    }
    let ell_dims = ellipsis
        .as_ref()
        .and_then(|e| e.dims().map(<[Dim]>::to_vec))
        .unwrap_or_default();
    let out = match rhs {
        Some(r) => {
            let mut out = Vec::new();
            let (pre, post) = r.split_once("...").unwrap_or((r, ""));
            let look = |c: char| {
                labels
                    .iter()
                    .find(|l| l.0 == c)
                    .map(|l| l.1.clone())
                    .ok_or_else(|| format!("output label '{c}' is not an input label"))
            };
            for c in pre.chars() {
                out.push(look(c)?);
            }
            if r.contains("...") {
                out.extend(ell_dims);
            }
            for c in post.chars() {
                out.push(look(c)?);
            }
            out
        }
        None => {
            let mut once: Vec<&(char, Dim, usize)> = labels.iter().filter(|l| l.2 == 1).collect();
            once.sort_by_key(|l| l.0);
            ell_dims
                .into_iter()
                .chain(once.into_iter().map(|l| l.1.clone()))
                .collect()
        }
    };
    Ok(ty(first.dtype(), Shape::Ranked(out)))
}

/// Per-spatial-axis attributes with a default.
fn per_axis(v: &[i64], n: usize, default: i64, what: &str) -> Res<Vec<i64>> {
    if v.is_empty() {
        return Ok(vec![default; n]);
    }
    if v.len() != n {
        return Err(format!("{what} {v:?} should have {n} entries"));
    }
    Ok(v.to_vec())
}

/// Sliding-window attributes shared by convolution and pooling.
pub struct Window<'a> {
    /// `auto_pad`.
    pub auto_pad: AutoPad,
    /// Kernel spatial shape.
    pub kernel: &'a [i64],
    /// `pads` (begin..., end...).
    pub pads: &'a [i64],
    /// `strides`.
    pub strides: &'a [i64],
    /// `dilations`.
    pub dilations: &'a [i64],
    /// Pooling `ceil_mode`.
    pub ceil_mode: bool,
}

/// Output spatial dims of a sliding window over `input` spatial dims.
pub fn window_out(input: &[Dim], w: &Window<'_>) -> Res<Vec<Dim>> {
    let n = input.len();
    if w.kernel.len() != n {
        return Err(format!(
            "kernel shape {:?} should have {n} entries",
            w.kernel
        ));
    }
    let strides = per_axis(w.strides, n, 1, "strides")?;
    let dil = per_axis(w.dilations, n, 1, "dilations")?;
    let pads = if w.pads.is_empty() {
        vec![0; 2 * n]
    } else {
        w.pads.to_vec()
    };
    if pads.len() != 2 * n {
        return Err(format!("pads {pads:?} should have {} entries", 2 * n));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (k, s, d) = (w.kernel[i] as i128, strides[i] as i128, dil[i] as i128);
        if k < 1 || s < 1 || d < 1 {
            return Err(format!(
                "kernel {k}, stride {s} and dilation {d} must be positive"
            ));
        }
        let Some(x) = input[i].known() else {
            out.push(Dim::Unknown);
            continue;
        };
        let x = x as i128;
        let (p0, p1) = (pads[i] as i128, pads[i + n] as i128);
        let span = (k - 1) * d + 1;
        let o = match w.auto_pad {
            AutoPad::SameUpper | AutoPad::SameLower => (x + s - 1) / s,
            AutoPad::Valid => {
                if x < span {
                    return Err(format!("input size {x} is smaller than the window {span}"));
                }
                (x - span) / s + 1
            }
            AutoPad::NotSet => {
                let padded = x + p0 + p1 - span;
                if padded < 0 {
                    return Err(format!(
                        "padded input size {} is smaller than the window {span}",
                        padded + span
                    ));
                }
                if w.ceil_mode {
                    let mut o = (padded + s - 1) / s + 1;
                    if (o - 1) * s >= x + p0 {
                        o -= 1;
                    }
                    o
                } else {
                    padded / s + 1
                }
            }
        };
        out.push(dim_from_i128(o, "output size")?);
    }
    Ok(out)
}

/// Checks `X` is at least 3-D; returns (batch, channels, spatial) dims.
fn nc_spatial<'f>(x: &'f Fact<'_>) -> Res<Option<(&'f Dim, &'f Dim, &'f [Dim])>> {
    match x.dims() {
        None => Ok(None),
        Some(d) if d.len() < 3 => Err(format!("expected an input of rank 3 or more, got {}", x.ty)),
        Some(d) => Ok(Some((&d[0], &d[1], &d[2..]))),
    }
}

/// Conv attributes.
pub struct ConvAttrs<'a> {
    /// Window attributes.
    pub w: Window<'a>,
    /// `group`.
    pub group: i64,
}

/// `Conv(X, W, B?)` / `ConvInteger` (with `out` = i32).
pub fn conv(ins: Ins<'_, '_>, a: ConvAttrs<'_>, out: Option<DType>) -> Res<TypeInfo> {
    let (x, w) = (req(ins, 0)?, req(ins, 1)?);
    let dtype = out.unwrap_or(x.dtype());
    let rank = x.rank().or(w.rank());
    let (Some((n, c, sp)), Some(wd)) = (nc_spatial(&x)?, w.dims()) else {
        return Ok(ty(dtype, unknown_or_unranked(rank)));
    };
    if wd.len() != sp.len() + 2 {
        return Err(format!("weights {} do not match input {}", w.ty, x.ty));
    }
    if a.group < 1 {
        return Err(format!("group {} must be positive", a.group));
    }
    let g = a.group as usize;
    if let (Some(c), Some(wc)) = (c.known(), wd[1].known()) {
        if c != wc * g {
            return Err(format!(
                "input {} has {c} channels but weights {} expect {} (group {g})",
                x.ty,
                w.ty,
                wc * g
            ));
        }
    }
    let ks: Vec<i64>;
    let kernel = if a.w.kernel.is_empty() {
        match wd[2..]
            .iter()
            .map(|d| d.known().map(|v| v as i64))
            .collect::<Option<Vec<_>>>()
        {
            Some(k) => {
                ks = k;
                &ks[..]
            }
            None => {
                return Ok(ty(
                    dtype,
                    Shape::Ranked(
                        [vec![n.clone(), wd[0].clone()], vec![Dim::Unknown; sp.len()]].concat(),
                    ),
                ))
            }
        }
    } else {
        a.w.kernel
    };
    let spatial = window_out(sp, &Window { kernel, ..a.w })?;
    Ok(ty(
        dtype,
        Shape::Ranked([vec![n.clone(), wd[0].clone()], spatial].concat()),
    ))
}

/// ConvTranspose attributes.
pub struct ConvTransposeAttrs<'a> {
    /// Window attributes (ceil_mode unused).
    pub w: Window<'a>,
    /// `group`.
    pub group: i64,
    /// `output_padding`.
    pub output_padding: &'a [i64],
    /// `output_shape`.
    pub output_shape: &'a [i64],
}

/// `ConvTranspose(X, W, B?)`.
pub fn conv_transpose(ins: Ins<'_, '_>, a: ConvTransposeAttrs<'_>) -> Res<TypeInfo> {
    let (x, w) = (req(ins, 0)?, req(ins, 1)?);
    let rank = x.rank().or(w.rank());
    let (Some((n, c, sp)), Some(wd)) = (nc_spatial(&x)?, w.dims()) else {
        return Ok(ty(x.dtype(), unknown_or_unranked(rank)));
    };
    let k = sp.len();
    if wd.len() != k + 2 {
        return Err(format!("weights {} do not match input {}", w.ty, x.ty));
    }
    if unify(c, &wd[0]).is_none() {
        return Err(format!(
            "input {} has {c} channels but weights {} expect {}",
            x.ty, w.ty, wd[0]
        ));
    }
    let m = mul(&wd[1], &Dim::Known(pos(a.group, "group")?));
    let head = vec![n.clone(), m];
    if !a.output_shape.is_empty() {
        let os = &a.output_shape[a.output_shape.len().saturating_sub(k)..];
        if os.len() != k {
            return Err(format!(
                "output_shape {:?} should have {k} entries",
                a.output_shape
            ));
        }
        let tail = os
            .iter()
            .map(|&v| dim_from_i64(v, "output size"))
            .collect::<Res<Vec<_>>>()?;
        return Ok(ty(x.dtype(), Shape::Ranked([head, tail].concat())));
    }
    let kernel: Vec<Option<i64>> = if a.w.kernel.is_empty() {
        wd[2..]
            .iter()
            .map(|d| d.known().map(|v| v as i64))
            .collect()
    } else {
        per_axis(a.w.kernel, k, 1, "kernel_shape")?
            .into_iter()
            .map(Some)
            .collect()
    };
    let strides = per_axis(a.w.strides, k, 1, "strides")?;
    let dil = per_axis(a.w.dilations, k, 1, "dilations")?;
    let opad = per_axis(a.output_padding, k, 0, "output_padding")?;
    let pads = if a.w.pads.is_empty() {
        vec![0; 2 * k]
    } else {
        a.w.pads.to_vec()
    };
    if pads.len() != 2 * k {
        return Err(format!("pads {pads:?} should have {} entries", 2 * k));
    }
    let mut tail = Vec::with_capacity(k);
    for i in 0..k {
        let (Some(xi), Some(ki)) = (sp[i].known(), kernel[i]) else {
            tail.push(Dim::Unknown);
            continue;
        };
        let (xi, ki, s, d) = (xi as i128, ki as i128, strides[i] as i128, dil[i] as i128);
        let full = s * (xi - 1) + opad[i] as i128 + (ki - 1) * d + 1;
        let o = match a.w.auto_pad {
            AutoPad::SameUpper | AutoPad::SameLower => xi * s,
            AutoPad::Valid => full,
            AutoPad::NotSet => full - pads[i] as i128 - pads[i + k] as i128,
        };
        tail.push(dim_from_i128(o, "output size")?);
    }
    Ok(ty(x.dtype(), Shape::Ranked([head, tail].concat())))
}

/// `MaxPool`/`AveragePool`/`LpPool`; `MaxPool` also has i64 indices.
pub fn pool(ins: Ins<'_, '_>, w: Window<'_>) -> Res<Vec<TypeInfo>> {
    let x = req(ins, 0)?;
    let shape = match nc_spatial(&x)? {
        None => Shape::Unranked,
        Some((n, c, sp)) => {
            Shape::Ranked([vec![n.clone(), c.clone()], window_out(sp, &w)?].concat())
        }
    };
    Ok(vec![ty(x.dtype(), shape.clone()), ty(DType::I64, shape)])
}

/// `Global*Pool`: spatial dims become 1.
pub fn global_pool(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let shape = match nc_spatial(&x)? {
        None => Shape::Unranked,
        Some((n, c, sp)) => {
            Shape::Ranked([vec![n.clone(), c.clone()], vec![Dim::Known(1); sp.len()]].concat())
        }
    };
    Ok(ty(x.dtype(), shape))
}

/// `MaxUnpool(X, I, output_shape?)`.
pub fn max_unpool(
    ins: Ins<'_, '_>,
    kernel: &[i64],
    pads: &[i64],
    strides: &[i64],
) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    if let Some(s) = opt(ins, 2) {
        let shape = match s.ints() {
            Some(v) => Shape::Ranked(
                v.iter()
                    .map(|&k| dim_from_i64(k, "dim"))
                    .collect::<Res<_>>()?,
            ),
            None => unknown_or_unranked(s.len_1d().or(x.rank())),
        };
        return Ok(ty(x.dtype(), shape));
    }
    let Some((n, c, sp)) = nc_spatial(&x)? else {
        return Ok(x.ty.clone());
    };
    let k = sp.len();
    let kernel = per_axis(kernel, k, 1, "kernel_shape")?;
    let strides = per_axis(strides, k, 1, "strides")?;
    let pads = if pads.is_empty() {
        vec![0; 2 * k]
    } else {
        pads.to_vec()
    };
    if pads.len() != 2 * k {
        return Err(format!("pads {pads:?} should have {} entries", 2 * k));
    }
    let mut out = vec![n.clone(), c.clone()];
    for i in 0..k {
        out.push(match sp[i].known() {
            Some(v) => {
                let o = (v as i128 - 1) * strides[i] as i128 + kernel[i] as i128
                    - pads[i] as i128
                    - pads[i + k] as i128;
                dim_from_i128(o, "output size")?
            }
            None => Dim::Unknown,
        });
    }
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}

/// `BatchNormalization`: Y like X, then running mean and variance like the scale.
pub fn batch_norm(ins: Ins<'_, '_>) -> Res<Vec<TypeInfo>> {
    let x = req(ins, 0)?;
    let mean = req(ins, 3).or_else(|_| req(ins, 1))?;
    Ok(vec![x.ty.clone(), mean.ty.clone(), mean.ty.clone()])
}

/// Layer-style normalization: Y like X, then mean and inverse std dev reduced from `axis`.
pub fn layer_norm(ins: Ins<'_, '_>, axis: i64, stash_type: i64) -> Res<Vec<TypeInfo>> {
    let x = req(ins, 0)?;
    for (i, what) in [(1, "Scale"), (2, "B")] {
        if let Some(p) = opt(ins, i) {
            if p.dtype() != x.dtype() {
                return Err(format!(
                    "{what} {} must have X's element type ({})",
                    p.ty, x.ty
                ));
            }
        }
    }
    let stash = DType::from_onnx(stash_type as i32).unwrap_or(DType::F32);
    let stat = match x.dims() {
        None => Shape::Unranked,
        Some(d) => {
            let a = norm_axis(axis, d.len())?;
            Shape::Ranked(
                d.iter()
                    .enumerate()
                    .map(|(i, d)| if i < a { d.clone() } else { Dim::Known(1) })
                    .collect(),
            )
        }
    };
    Ok(vec![x.ty.clone(), ty(stash, stat.clone()), ty(stash, stat)])
}

/// Output sizes of `Resize` from known sizes or scales (`None` when neither is known).
fn resize_dims(
    d: &[Dim],
    axes: &[usize],
    scales: Option<Vec<f64>>,
    sizes: Option<Vec<i64>>,
    policy: &str,
) -> Res<Option<Vec<Dim>>> {
    let mut out = d.to_vec();
    if let Some(sz) = sizes {
        if sz.len() != axes.len() {
            return Err(format!("sizes {sz:?} should have {} entries", axes.len()));
        }
        if policy == "stretch" {
            for (&a, &s) in axes.iter().zip(&sz) {
                out[a] = dim_from_i64(s, "size")?;
            }
            return Ok(Some(out));
        }
        let ins: Option<Vec<usize>> = axes.iter().map(|&a| d[a].known()).collect();
        let Some(ins) = ins else {
            return Ok(Some(axes.iter().fold(out, |mut o, &a| {
                o[a] = Dim::Unknown;
                o
            })));
        };
        let ratios = sz.iter().zip(&ins).map(|(&s, &i)| s as f64 / i as f64);
        let scale = if policy == "not_larger" {
            ratios.fold(f64::INFINITY, f64::min)
        } else {
            ratios.fold(f64::NEG_INFINITY, f64::max)
        };
        for (&a, &i) in axes.iter().zip(&ins) {
            out[a] = Dim::Known((scale * i as f64).round_ties_even().max(0.0) as usize);
        }
        return Ok(Some(out));
    }
    if let Some(sc) = scales {
        if sc.len() != axes.len() {
            return Err(format!("scales {sc:?} should have {} entries", axes.len()));
        }
        for (&a, &s) in axes.iter().zip(&sc) {
            if s.is_nan() || s <= 0.0 {
                return Err(format!("scale {s} must be positive"));
            }
            out[a] = match d[a].known() {
                Some(v) => Dim::Known((v as f64 * s).floor() as usize),
                None if s == 1.0 => d[a].clone(),
                None => Dim::Unknown,
            };
        }
        return Ok(Some(out));
    }
    Ok(None)
}

/// `Resize(X, roi?, scales?, sizes?)` on `axes`.
pub fn resize(ins: Ins<'_, '_>, axes: &Option<Vec<i64>>, policy: &str) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let Some(d) = x.dims() else {
        return Ok(x.ty.clone());
    };
    let axes = match axes {
        Some(a) => norm_axes(a, d.len())?,
        None => (0..d.len()).collect(),
    };
    let present = |i| opt(ins, i).filter(|f: &Fact<'_>| f.len_1d() != Some(0));
    let (sc, sz) = (present(2), present(3));
    let dims = resize_dims(
        d,
        &axes,
        sc.and_then(|f| f.floats()),
        sz.and_then(|f| f.ints()),
        policy,
    )?;
    Ok(ty(
        x.dtype(),
        dims.map_or_else(|| unknown(d.len()), Shape::Ranked),
    ))
}

/// `Upsample(X, scales)`.
pub fn upsample(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let (x, s) = (req(ins, 0)?, req(ins, 1)?);
    let Some(d) = x.dims() else {
        return Ok(x.ty.clone());
    };
    let axes: Vec<usize> = (0..d.len()).collect();
    let dims = resize_dims(d, &axes, s.floats(), None, "stretch")?;
    Ok(ty(
        x.dtype(),
        dims.map_or_else(|| unknown(d.len()), Shape::Ranked),
    ))
}

/// `GridSample(X, grid)`: `[N, C, grid spatial...]`.
pub fn grid_sample(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let (x, g) = (req(ins, 0)?, req(ins, 1)?);
    let (Some(xd), Some(gd)) = (x.dims(), g.dims()) else {
        return Ok(ty(x.dtype(), unknown_or_unranked(x.rank())));
    };
    if xd.len() < 3 || gd.len() != xd.len() {
        return Err(format!("input {} and grid {} do not match", x.ty, g.ty));
    }
    let out = [&xd[..2], &gd[1..gd.len() - 1]].concat();
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}

/// `AffineGrid(theta, size)`: `[N, spatial..., k]`.
pub fn affine_grid(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let (t, s) = (req(ins, 0)?, req(ins, 1)?);
    let Some(size) = s.ints() else {
        // `size` is [N, C, spatial...]; the grid is [N, spatial..., number of spatial dims].
        let shape = match s.len_1d() {
            Some(n) if n >= 3 => {
                let mut d = vec![Dim::Unknown; n];
                d[n - 1] = Dim::Known(n - 2);
                Shape::Ranked(d)
            }
            _ => Shape::Unranked,
        };
        return Ok(ty(t.dtype(), shape));
    };
    if size.len() < 3 {
        return Err(format!("size {size:?} should have at least 3 entries"));
    }
    let mut out = vec![dim_from_i64(size[0], "batch")?];
    for &v in &size[2..] {
        out.push(dim_from_i64(v, "size")?);
    }
    out.push(Dim::Known(size.len() - 2));
    Ok(ty(t.dtype(), Shape::Ranked(out)))
}

/// `Col2Im(input, image_shape, block_shape)`.
pub fn col2im(ins: Ins<'_, '_>) -> Res<TypeInfo> {
    let (x, img, blk) = (req(ins, 0)?, req(ins, 1)?, req(ins, 2)?);
    let n_sp = img.len_1d();
    let (Some(d), Some(im)) = (x.dims(), img.ints()) else {
        return Ok(ty(x.dtype(), unknown_or_unranked(n_sp.map(|n| n + 2))));
    };
    if d.len() != 3 {
        return Err(format!("expected a 3-D input, got {}", x.ty));
    }
    let c = match (d[1].known(), blk.ints()) {
        (Some(cb), Some(b)) => {
            // Checked: block sizes are user input.
            let p = b
                .iter()
                .try_fold(1i64, |a, &x| a.checked_mul(x))
                .unwrap_or(0);
            if p <= 0 || cb as i64 % p != 0 {
                return Err(format!(
                    "dim 1 of {} is not a multiple of the block size {b:?}",
                    x.ty
                ));
            }
            Dim::Known(cb / p as usize)
        }
        _ => Dim::Unknown,
    };
    let mut out = vec![d[0].clone(), c];
    for &v in &im {
        out.push(dim_from_i64(v, "image size")?);
    }
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}

/// `RoiAlign(X, rois, batch_indices)`: `[num_rois, C, h, w]`.
pub fn roi_align(ins: Ins<'_, '_>, h: i64, w: i64) -> Res<TypeInfo> {
    let (x, r) = (req(ins, 0)?, req(ins, 1)?);
    let c = x
        .dims()
        .and_then(|d| d.get(1).cloned())
        .unwrap_or(Dim::Unknown);
    let n = r
        .dims()
        .and_then(|d| d.first().cloned())
        .unwrap_or(Dim::Unknown);
    Ok(ty(
        x.dtype(),
        Shape::Ranked(vec![
            n,
            c,
            dim_from_i64(h, "output_height")?,
            dim_from_i64(w, "output_width")?,
        ]),
    ))
}

/// Losses: per-element `[N, d...]` for `none`, else a scalar; the second output (log
/// probabilities) has the scores' shape.
pub fn loss(ins: Ins<'_, '_>, reduction: &str) -> Res<Vec<TypeInfo>> {
    let x = req(ins, 0)?;
    let per = match x.dims() {
        Some(d) if d.len() >= 2 => Shape::Ranked([&d[..1], &d[2..]].concat()),
        Some(_) => return Err(format!("scores {} should have rank 2 or more", x.ty)),
        None => Shape::Unranked,
    };
    let y = match reduction {
        "none" => per,
        "mean" | "sum" => Shape::Ranked(vec![]),
        r => return Err(format!("unknown reduction '{r}'")),
    };
    Ok(vec![ty(x.dtype(), y), x.ty.clone()])
}

/// Recurrent layers: `Y`, `Y_h` (and `Y_c`).
pub fn recurrent(
    ins: Ins<'_, '_>,
    hidden: i64,
    direction: &str,
    layout: i64,
) -> Res<Vec<TypeInfo>> {
    let x = req(ins, 0)?;
    let dirs = Dim::Known(if direction == "bidirectional" { 2 } else { 1 });
    let h = dim_from_i64(hidden, "hidden_size")?;
    let (seq, batch) = match x.dims() {
        Some([a, b, _]) => {
            if layout == 0 {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            }
        }
        Some(_) => return Err(format!("expected a 3-D input, got {}", x.ty)),
        None => (Dim::Unknown, Dim::Unknown),
    };
    let (y, yh) = if layout == 0 {
        (
            vec![seq, dirs.clone(), batch.clone(), h.clone()],
            vec![dirs, batch, h],
        )
    } else {
        (
            vec![batch.clone(), seq, dirs.clone(), h.clone()],
            vec![batch, dirs, h],
        )
    };
    let (y, yh) = (
        ty(x.dtype(), Shape::Ranked(y)),
        ty(x.dtype(), Shape::Ranked(yh)),
    );
    Ok(vec![y, yh.clone(), yh])
}

/// `Attention(Q, K, V, mask?, past_key?, past_value?)`: Y, present key and value, and the
/// QK product.
pub fn attention(
    ins: Ins<'_, '_>,
    q_heads: Option<i64>,
    kv_heads: Option<i64>,
) -> Res<Vec<TypeInfo>> {
    let (q, k, v) = (req(ins, 0)?, req(ins, 1)?, req(ins, 2)?);
    let (Some(qd), Some(kd), Some(vd)) = (q.dims(), k.dims(), v.dims()) else {
        return Ok(vec![
            ty(q.dtype(), unknown_or_unranked(q.rank())),
            ty(q.dtype(), unknown(4)),
            ty(q.dtype(), unknown(4)),
            ty(q.dtype(), unknown(4)),
        ]);
    };
    // Everything in 4-D form [batch, heads, seq, head_size].
    let to4 = |d: &[Dim], heads: Option<i64>, f: &Fact<'_>| -> Res<Vec<Dim>> {
        match d.len() {
            4 => Ok(d.to_vec()),
            3 => {
                let h = heads
                    .ok_or_else(|| format!("3-D input {} needs the head count attribute", f.ty))?;
                let hd = dim_from_i64(h, "head count")?;
                let size = match d[2].known() {
                    Some(n) if h > 0 && n % h as usize == 0 => Dim::Known(n / h as usize),
                    Some(n) => {
                        return Err(format!("hidden size {n} is not a multiple of {h} heads"))
                    }
                    None => Dim::Unknown,
                };
                Ok(vec![d[0].clone(), hd, d[1].clone(), size])
            }
            _ => Err(format!("attention inputs must be 3-D or 4-D, got {}", f.ty)),
        }
    };
    let (q4, mut k4, mut v4) = (
        to4(qd, q_heads, &q)?,
        to4(kd, kv_heads, &k)?,
        to4(vd, kv_heads, &v)?,
    );
    if let (Some(pk), Some(pv)) = (opt(ins, 4), opt(ins, 5)) {
        match (pk.dims(), pv.dims()) {
            (Some(a), Some(b)) if a.len() == 4 && b.len() == 4 => {
                k4[2] = add(&a[2], &k4[2]);
                v4[2] = add(&b[2], &v4[2]);
            }
            _ => {
                k4[2] = Dim::Unknown;
                v4[2] = Dim::Unknown;
            }
        }
    }
    let y4 = vec![q4[0].clone(), q4[1].clone(), q4[2].clone(), v4[3].clone()];
    let y = if qd.len() == 4 {
        y4
    } else {
        vec![q4[0].clone(), q4[2].clone(), mul(&q4[1], &v4[3])]
    };
    let qk = vec![q4[0].clone(), q4[1].clone(), q4[2].clone(), k4[2].clone()];
    let t = |d: Vec<Dim>| ty(q.dtype(), Shape::Ranked(d));
    Ok(vec![t(y), t(k4), t(v4), t(qk)])
}

/// Window functions: `[size]` of the ONNX type `output_datatype`.
pub fn window_fn(ins: Ins<'_, '_>, output_datatype: i64) -> Res<TypeInfo> {
    let s = req(ins, 0)?;
    let dtype = DType::from_onnx(output_datatype as i32)
        .ok_or_else(|| format!("unsupported output_datatype {output_datatype}"))?;
    let n = match scalar_int(Some(s)) {
        Some(v) => dim_from_i64(v, "window size")?,
        None => Dim::Unknown,
    };
    Ok(ty(dtype, Shape::Ranked(vec![n])))
}

/// `DFT(input, dft_length?, axis?)`: complex output in a trailing dim of 2, or a real one
/// of 1 for an inverse one-sided transform (whose default length is `2 * (n - 1)`).
pub fn dft(ins: Ins<'_, '_>, axis_attr: i64, onesided: i64, inverse: i64) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let Some(d) = x.dims() else {
        return Ok(x.ty.clone());
    };
    if d.len() < 2 {
        return Err(format!("DFT input {} should have rank 2 or more", x.ty));
    }
    let (onesided, inverse) = (onesided != 0, inverse != 0);
    let last = Dim::Known(if onesided && inverse { 1 } else { 2 });
    let length = opt(ins, 1).filter(|f| f.len_1d() != Some(0));
    let mut out = d.to_vec();
    *out.last_mut().expect("rank checked") = last.clone();
    let axis = match opt(ins, 2) {
        None => axis_attr,
        Some(a) => match scalar_int(Some(a)) {
            Some(v) => v,
            // Only a full-length two-sided transform keeps every dim without knowing the axis.
            None if length.is_none() && !onesided => return Ok(ty(x.dtype(), Shape::Ranked(out))),
            None => {
                let mut u = vec![Dim::Unknown; d.len()];
                *u.last_mut().expect("rank checked") = last;
                return Ok(ty(x.dtype(), Shape::Ranked(u)));
            }
        },
    };
    let a = norm_axis(axis, d.len())?;
    if a == d.len() - 1 {
        return Err(format!("DFT axis {axis} is the complex dim of {}", x.ty));
    }
    let len = match length {
        Some(l) => match scalar_int(Some(l)) {
            Some(v) => dim_from_i64(v, "dft_length")?,
            None => Dim::Unknown,
        },
        None if onesided && inverse => match d[a].known() {
            Some(n) => Dim::Known(n.saturating_sub(1).saturating_mul(2)),
            None => Dim::Unknown,
        },
        None => d[a].clone(),
    };
    out[a] = match (onesided && !inverse, len.known()) {
        (true, Some(n)) => Dim::Known(n / 2 + 1),
        (true, None) => Dim::Unknown,
        (false, _) => len,
    };
    Ok(ty(x.dtype(), Shape::Ranked(out)))
}
