//! Convolutions: Conv and ConvInteger as im2col + GEMM, ConvTranspose as GEMM + col2im, and
//! the Col2Im op. N-D throughout; the window geometry comes from [`Window`].

use ndarray::{s, Array2, ArrayD, ArrayView2, IxDyn};

use super::linalg::Dot;
use super::{split_nc, to_f64, usize_list, Window};
use crate::eval::util::{checked_size, opt, req};
use crate::ir::{AutoPad, DType, Tensor};

/// The attributes shared by Conv, ConvInteger and ConvTranspose.
pub(super) struct ConvParams<'a> {
    pub auto_pad: AutoPad,
    pub dilations: &'a [i64],
    pub group: i64,
    pub kernel_shape: &'a [i64],
    pub pads: &'a [i64],
    pub strides: &'a [i64],
}

/// Input `i` converted to the compute type of `like`: f64 for f64, f32 for the other floats.
fn float_operand(t: &Tensor, wide: bool) -> Result<Tensor, String> {
    if !t.dtype().is_float() {
        return Err(format!("expected a float tensor, got {}", t.dtype()));
    }
    Ok(t.cast(if wide { DType::F64 } else { DType::F32 }))
}

/// Checks `kernel_shape` (when given) against the weight's spatial dims.
fn kernel_of(w_shape: &[usize], attr: &[i64]) -> Result<Vec<usize>, String> {
    let k = w_shape[2..].to_vec();
    if !attr.is_empty() && usize_list(attr, k.len(), 1, "kernel_shape")? != k {
        return Err(format!(
            "kernel_shape {attr:?} disagrees with the weight shape {w_shape:?}"
        ));
    }
    Ok(k)
}

/// Conv on float inputs.
pub(super) fn conv(inputs: &[Option<&Tensor>], p: &ConvParams) -> Result<Vec<Tensor>, String> {
    let x = req(inputs, 0)?;
    let dt = x.dtype();
    let wide = dt == DType::F64;
    let xw = float_operand(x, wide)?;
    let ww = float_operand(req(inputs, 1)?, wide)?;
    let bw = opt(inputs, 2).map(|b| float_operand(b, wide)).transpose()?;
    let y = match (&xw, &ww) {
        (Tensor::F32(x), Tensor::F32(w)) => {
            Tensor::F32(conv_core(x, w, bw.as_ref().and_then(|b| b.as_array()), p)?)
        }
        (Tensor::F64(x), Tensor::F64(w)) => {
            Tensor::F64(conv_core(x, w, bw.as_ref().and_then(|b| b.as_array()), p)?)
        }
        _ => unreachable!("operands were cast to one type"),
    };
    Ok(vec![y.cast(dt)])
}

/// ConvInteger: the convolution of `x - x_zero_point` and `w - w_zero_point` (a scalar or one
/// per output channel), exactly in f64, as i32.
pub(super) fn conv_integer(
    inputs: &[Option<&Tensor>],
    p: &ConvParams,
) -> Result<Vec<Tensor>, String> {
    let mut x = to_f64(req(inputs, 0)?, true)?;
    let mut w = to_f64(req(inputs, 1)?, true)?;
    if let Some(z) = opt(inputs, 2) {
        let z = to_f64(z, true)?;
        if z.len() != 1 {
            return Err("x_zero_point must be a scalar".into());
        }
        let z = z.iter().next().copied().unwrap_or(0.0);
        x.mapv_inplace(|v| v - z);
    }
    if let Some(z) = opt(inputs, 3) {
        let z = to_f64(z, true)?;
        if w.ndim() < 1 {
            return Err("w must have rank 3 or more".into());
        }
        let m = w.shape()[0];
        if z.len() == 1 {
            let z = z.iter().next().copied().unwrap_or(0.0);
            w.mapv_inplace(|v| v - z);
        } else if z.len() == m {
            for (mut row, &z) in w.outer_iter_mut().zip(z.iter()) {
                row.mapv_inplace(|v| v - z);
            }
        } else {
            return Err(format!(
                "w_zero_point has {} values for {m} output channels",
                z.len()
            ));
        }
    }
    let y = conv_core(&x, &w, None, p)?;
    Ok(vec![Tensor::I32(y.mapv(|v| v as i64 as i32))])
}

/// The convolution `[N, C, in...] * [M, C/g, k...] (+ B[M]) -> [N, M, out...]`.
fn conv_core<R: Dot>(
    x: &ArrayD<R>,
    w: &ArrayD<R>,
    b: Option<&ArrayD<R>>,
    p: &ConvParams,
) -> Result<ArrayD<R>, String> {
    let (n, c, in_sp) = split_nc(x.shape(), 1)?;
    if w.ndim() != x.ndim() {
        return Err(format!(
            "weight shape {:?} does not match input shape {:?}",
            w.shape(),
            x.shape()
        ));
    }
    let (m, cg) = (w.shape()[0], w.shape()[1]);
    let kernel = kernel_of(w.shape(), p.kernel_shape)?;
    let g = usize::try_from(p.group)
        .ok()
        .filter(|&g| g > 0)
        .ok_or("group must be positive")?;
    if cg * g != c || m % g != 0 {
        return Err(format!(
            "group {g} does not fit {c} input channels, weight shape {:?}",
            w.shape()
        ));
    }
    let mg = m / g;
    let win = Window::new(
        in_sp,
        &kernel,
        p.strides,
        p.dilations,
        p.pads,
        p.auto_pad,
        false,
    )?;
    let bias: Option<Vec<R>> = match b {
        Some(b) if b.len() != m => {
            return Err(format!(
                "bias has {} values for {m} output channels",
                b.len()
            ))
        }
        Some(b) => Some(b.iter().copied().collect()),
        None => None,
    };
    let taps = win.taps();
    let positions: usize = win.out_sp.iter().product();
    let pin: usize = in_sp.iter().product();
    let mut out_shape = vec![n, m];
    out_shape.extend(&win.out_sp);
    let total = checked_size(&out_shape)?;
    let table = win.table()?;
    // A 1x1, stride-1, unpadded window reads the input as is.
    let direct =
        taps == 1 && positions == pin && table.iter().enumerate().all(|(i, &t)| t == i as isize);
    if !direct {
        checked_size(&[cg * taps, positions])?;
    }
    let xs = x.as_standard_layout();
    let xs = xs.as_slice().expect("standard layout is contiguous");
    let w2 = w
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((m, cg * taps))
        .map_err(|e| e.to_string())?;
    let mut out: Vec<R> = Vec::with_capacity(total);
    let mut col: Vec<R> = Vec::new();
    for bi in 0..n {
        for gi in 0..g {
            let base = (bi * c + gi * cg) * pin;
            let cols = if direct {
                ArrayView2::from_shape((cg, pin), &xs[base..base + cg * pin])
                    .map_err(|e| e.to_string())?
            } else {
                col.clear();
                for ci in 0..cg {
                    let plane = &xs[base + ci * pin..base + (ci + 1) * pin];
                    for kk in 0..taps {
                        let row = &table[kk * positions..(kk + 1) * positions];
                        col.extend(row.iter().map(|&t| {
                            if t >= 0 {
                                plane[t as usize]
                            } else {
                                R::default()
                            }
                        }));
                    }
                }
                ArrayView2::from_shape((cg * taps, positions), &col).map_err(|e| e.to_string())?
            };
            let y = R::dot2(w2.slice(s![gi * mg..(gi + 1) * mg, ..]), cols);
            match &bias {
                Some(bv) => {
                    for (mi, row) in y.outer_iter().enumerate() {
                        let bb = bv[gi * mg + mi];
                        out.extend(row.iter().map(|&v| v + bb));
                    }
                }
                None => out.extend(y.iter().copied()),
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).map_err(|e| e.to_string())
}

/// Scatter-adds columns `[C * taps, positions]` into planes `[C, prod(in_sp)]` (the adjoint
/// of im2col), appending to `out`.
fn col2im<R: Dot>(cols: ArrayView2<R>, table: &[isize], taps: usize, out: &mut [R]) {
    let positions = cols.ncols();
    let plane_len = out.len() / (cols.nrows() / taps).max(1);
    for (r, row) in cols.outer_iter().enumerate() {
        let (ci, kk) = (r / taps, r % taps);
        let plane = &mut out[ci * plane_len..(ci + 1) * plane_len];
        let tab = &table[kk * positions..(kk + 1) * positions];
        for (&t, &v) in tab.iter().zip(row.iter()) {
            if t >= 0 {
                plane[t as usize] = plane[t as usize] + v;
            }
        }
    }
}

/// ConvTranspose: `[N, C, in...]` with weight `[C, M/g, k...]` gives `[N, M, out...]`.
pub(super) fn conv_transpose(
    inputs: &[Option<&Tensor>],
    p: &ConvParams,
    output_padding: &[i64],
    output_shape: &[i64],
) -> Result<Vec<Tensor>, String> {
    let x = req(inputs, 0)?;
    let dt = x.dtype();
    let wide = dt == DType::F64;
    let xw = float_operand(x, wide)?;
    let ww = float_operand(req(inputs, 1)?, wide)?;
    let bw = opt(inputs, 2).map(|b| float_operand(b, wide)).transpose()?;
    let y = match (&xw, &ww) {
        (Tensor::F32(x), Tensor::F32(w)) => Tensor::F32(conv_transpose_core(
            x,
            w,
            bw.as_ref().and_then(|b| b.as_array()),
            p,
            output_padding,
            output_shape,
        )?),
        (Tensor::F64(x), Tensor::F64(w)) => Tensor::F64(conv_transpose_core(
            x,
            w,
            bw.as_ref().and_then(|b| b.as_array()),
            p,
            output_padding,
            output_shape,
        )?),
        _ => unreachable!("operands were cast to one type"),
    };
    Ok(vec![y.cast(dt)])
}

fn conv_transpose_core<R: Dot>(
    x: &ArrayD<R>,
    w: &ArrayD<R>,
    b: Option<&ArrayD<R>>,
    p: &ConvParams,
    output_padding: &[i64],
    output_shape: &[i64],
) -> Result<ArrayD<R>, String> {
    let (n, c, in_sp) = split_nc(x.shape(), 1)?;
    let nd = in_sp.len();
    if w.ndim() != x.ndim() {
        return Err(format!(
            "weight shape {:?} does not match input shape {:?}",
            w.shape(),
            x.shape()
        ));
    }
    let kernel = kernel_of(w.shape(), p.kernel_shape)?;
    let g = usize::try_from(p.group)
        .ok()
        .filter(|&g| g > 0)
        .ok_or("group must be positive")?;
    if w.shape()[0] != c || c % g != 0 {
        return Err(format!(
            "weight shape {:?} does not fit {c} input channels and group {g}",
            w.shape()
        ));
    }
    let (cg, mg) = (c / g, w.shape()[1]);
    let m = mg * g;
    let strides = usize_list(p.strides, nd, 1, "strides")?;
    let dil = usize_list(p.dilations, nd, 1, "dilations")?;
    let opad = usize_list(output_padding, nd, 0, "output_padding")?;
    if strides.contains(&0) || dil.contains(&0) {
        return Err("strides and dilations must be positive".into());
    }
    // Spatial output shape (a full [N, C, ...] output_shape is accepted too).
    let given: Option<Vec<usize>> = match output_shape.len() {
        0 => None,
        l if l == nd => Some(usize_list(output_shape, nd, 0, "output_shape")?),
        l if l == nd + 2 => Some(usize_list(&output_shape[2..], nd, 0, "output_shape")?),
        l => return Err(format!("output_shape has {l} values for {nd} spatial dims")),
    };
    let natural =
        |d: usize| (strides[d] * (in_sp[d] - 1) + opad[d] + (kernel[d] - 1) * dil[d] + 1) as i64;
    let same = matches!(p.auto_pad, AutoPad::SameUpper | AutoPad::SameLower);
    let (out_sp, pad_begin): (Vec<usize>, Vec<i64>) = if same && p.pads.is_empty() {
        let out = given
            .clone()
            .unwrap_or_else(|| (0..nd).map(|d| in_sp[d] * strides[d]).collect());
        let begins = (0..nd)
            .map(|d| {
                let total = natural(d) - out[d] as i64;
                if p.auto_pad == AutoPad::SameUpper {
                    total.div_euclid(2)
                } else {
                    total - total.div_euclid(2)
                }
            })
            .collect();
        (out, begins)
    } else {
        let pads: Vec<i64> = if p.pads.is_empty() {
            vec![0; 2 * nd]
        } else {
            p.pads.to_vec()
        };
        if pads.len() != 2 * nd {
            return Err(format!(
                "pads has {} values, expected {}",
                pads.len(),
                2 * nd
            ));
        }
        let out = match given {
            Some(o) => o,
            None => (0..nd)
                .map(|d| {
                    usize::try_from(natural(d) - pads[d] - pads[d + nd])
                        .map_err(|_| "pads exceed the output size".to_string())
                })
                .collect::<Result<_, _>>()?,
        };
        (out, pads[..nd].to_vec())
    };
    if pad_begin.iter().any(|&b| b < 0) {
        return Err("negative padding is not supported".into());
    }
    let win = Window {
        in_sp: out_sp.clone(),
        kernel: kernel.clone(),
        out_sp: in_sp.to_vec(),
        strides,
        dilations: dil,
        pad_begin: pad_begin.iter().map(|&v| v as usize).collect(),
        pad_end: vec![0; nd],
    };
    let taps = win.taps();
    let pin: usize = in_sp.iter().product();
    let pout: usize = out_sp.iter().product();
    let mut full = vec![n, m];
    full.extend(&out_sp);
    let total = checked_size(&full)?;
    checked_size(&[mg * taps, pin])?;
    let table = win.table()?;
    let xs = x.as_standard_layout();
    let xs = xs.as_slice().expect("standard layout is contiguous");
    let ws = w
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((c, mg * taps))
        .map_err(|e| e.to_string())?;
    let mut out = vec![R::default(); total];
    for bi in 0..n {
        for gi in 0..g {
            let base = (bi * c + gi * cg) * pin;
            let xg = ArrayView2::from_shape((cg, pin), &xs[base..base + cg * pin])
                .map_err(|e| e.to_string())?;
            let wg = ws.slice(s![gi * cg..(gi + 1) * cg, ..]);
            let cols: Array2<R> = R::dot2(wg.t(), xg);
            let ob = (bi * m + gi * mg) * pout;
            col2im(cols.view(), &table, taps, &mut out[ob..ob + mg * pout]);
        }
    }
    if let Some(b) = b {
        if b.len() != m {
            return Err(format!(
                "bias has {} values for {m} output channels",
                b.len()
            ));
        }
        for (i, plane) in out.chunks_mut(pout.max(1)).enumerate() {
            let bb = b.iter().nth(i % m).copied().unwrap_or_default();
            plane.iter_mut().for_each(|v| *v = *v + bb);
        }
    }
    ArrayD::from_shape_vec(IxDyn(&full), out).map_err(|e| e.to_string())
}

/// Col2Im: `[N, C * prod(block), L]` columns summed into `[N, C, image...]`.
pub(super) fn col2im_op(
    inputs: &[Option<&Tensor>],
    dilations: &[i64],
    pads: &[i64],
    strides: &[i64],
) -> Result<Vec<Tensor>, String> {
    let xt = req(inputs, 0)?;
    let dt = xt.dtype();
    let x = to_f64(xt, true)?;
    let image = usize_list(
        &req(inputs, 1)?.to_i64_vec()?,
        req(inputs, 1)?.len(),
        0,
        "image_shape",
    )?;
    let block = usize_list(
        &req(inputs, 2)?.to_i64_vec()?,
        req(inputs, 2)?.len(),
        0,
        "block_shape",
    )?;
    if x.ndim() != 3 || image.len() != block.len() {
        return Err(format!(
            "expected input [N, C*K, L] and matching image/block shapes, got {:?}",
            x.shape()
        ));
    }
    let win = Window::new(
        &image,
        &block,
        strides,
        dilations,
        pads,
        AutoPad::NotSet,
        false,
    )?;
    let taps = win.taps();
    let (n, ck, l) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let positions: usize = win.out_sp.iter().product();
    if ck % taps != 0 || l != positions {
        return Err(format!(
            "input shape {:?} does not fit block {block:?} over image {image:?}",
            x.shape()
        ));
    }
    let c = ck / taps;
    let mut full = vec![n, c];
    full.extend(&image);
    let total = checked_size(&full)?;
    let table = win.table()?;
    let pimg: usize = image.iter().product();
    let mut out = vec![0f64; total];
    let xs = x.as_standard_layout();
    for bi in 0..n {
        let cols = xs.slice(s![bi, .., ..]);
        let cols = cols
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|e| e.to_string())?;
        col2im(
            cols,
            &table,
            taps,
            &mut out[bi * c * pimg..(bi + 1) * c * pimg],
        );
    }
    let a = ArrayD::from_shape_vec(IxDyn(&full), out).map_err(|e| e.to_string())?;
    Ok(vec![super::from_f64(a, dt)])
}
