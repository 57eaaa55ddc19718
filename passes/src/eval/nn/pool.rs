//! Pooling: MaxPool (with Indices), AveragePool, LpPool, the global pools and MaxUnpool,
//! computed in f64 over the kernel-tap table of a [`Window`].

use ndarray::{ArrayD, IxDyn};

use super::{from_f64, split_nc, to_f64, usize_list, Window, OUTSIDE};
use crate::eval::util::{checked_size, opt, req};
use crate::ir::{AutoPad, Tensor};

/// The attributes shared by the windowed pools.
pub(super) struct PoolParams<'a> {
    pub auto_pad: AutoPad,
    pub ceil_mode: bool,
    pub dilations: &'a [i64],
    pub kernel_shape: &'a [i64],
    pub pads: &'a [i64],
    pub strides: &'a [i64],
}

/// The input as f64 with its window geometry and tap table.
struct Pooled {
    x: ArrayD<f64>,
    win: Window,
    table: Vec<isize>,
    out_shape: Vec<usize>,
}

fn prepare(
    inputs: &[Option<&Tensor>],
    p: &PoolParams,
    any_numeric: bool,
) -> Result<Pooled, String> {
    let x = to_f64(req(inputs, 0)?, any_numeric)?
        .as_standard_layout()
        .into_owned();
    let (n, c, sp) = split_nc(x.shape(), 1)?;
    let kernel = usize_list(p.kernel_shape, sp.len(), 0, "kernel_shape")?;
    let win = Window::new(
        sp,
        &kernel,
        p.strides,
        p.dilations,
        p.pads,
        p.auto_pad,
        p.ceil_mode,
    )?;
    let mut out_shape = vec![n, c];
    out_shape.extend(&win.out_sp);
    checked_size(&out_shape)?;
    let table = win.table()?;
    Ok(Pooled {
        x,
        win,
        table,
        out_shape,
    })
}

impl Pooled {
    /// Applies `f(taps_of_position)` to every output position of every plane, where the taps
    /// are the table entries of that position.
    fn map(
        &self,
        mut f: impl FnMut(usize, &[f64], &mut dyn Iterator<Item = isize>) -> f64,
    ) -> Vec<f64> {
        let xs = self.x.as_slice().expect("standard layout");
        let pin: usize = self.win.in_sp.iter().product();
        let positions: usize = self.win.out_sp.iter().product();
        let taps = self.win.taps();
        let mut out = Vec::with_capacity(self.out_shape.iter().product());
        for (pi, plane) in xs
            .chunks(pin.max(1))
            .enumerate()
            .take(self.out_shape[0] * self.out_shape[1])
        {
            for pos in 0..positions {
                let mut it = (0..taps).map(|k| self.table[k * positions + pos]);
                out.push(f(pi, plane, &mut it));
            }
        }
        out
    }
}

/// MaxPool, with the optional Indices output (flat indices into the input, spatial part in
/// column-major order when `storage_order` is set).
pub(super) fn max_pool(
    inputs: &[Option<&Tensor>],
    p: &PoolParams,
    col_major: bool,
    n_outputs: usize,
) -> Result<Vec<Tensor>, String> {
    let dt = req(inputs, 0)?.dtype();
    let pl = prepare(inputs, p, true)?;
    let pin: usize = pl.win.in_sp.iter().product();
    let mut indices = Vec::new();
    let vals = pl.map(|pi, plane, taps| {
        let mut best = f64::NEG_INFINITY;
        let mut arg = None;
        for t in taps.filter(|&t| t >= 0) {
            let v = plane[t as usize];
            if arg.is_none() || v > best {
                best = v;
                arg = Some(t as usize);
            }
        }
        if n_outputs > 1 {
            let t = arg.unwrap_or(0);
            let spatial = if col_major {
                column_major(t, &pl.win.in_sp)
            } else {
                t
            };
            indices.push((pi * pin + spatial) as i64);
        }
        best
    });
    let y = ArrayD::from_shape_vec(IxDyn(&pl.out_shape), vals).map_err(|e| e.to_string())?;
    let mut outs = vec![from_f64(y, dt)];
    if n_outputs > 1 {
        outs.push(Tensor::I64(
            ArrayD::from_shape_vec(IxDyn(&pl.out_shape), indices).map_err(|e| e.to_string())?,
        ));
    }
    Ok(outs)
}

/// The column-major offset of row-major offset `t` within `shape`.
fn column_major(mut t: usize, shape: &[usize]) -> usize {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = t % shape[d];
        t /= shape[d];
    }
    let mut off = 0;
    let mut stride = 1;
    for d in 0..shape.len() {
        off += idx[d] * stride;
        stride *= shape[d];
    }
    off
}

/// AveragePool: the mean over the taps inside the input, or over the taps inside the padded
/// input when `count_include_pad` (taps in the ceil_mode overhang never count).
pub(super) fn avg_pool(
    inputs: &[Option<&Tensor>],
    p: &PoolParams,
    count_include_pad: bool,
) -> Result<Vec<Tensor>, String> {
    let dt = req(inputs, 0)?.dtype();
    let pl = prepare(inputs, p, false)?;
    let vals = pl.map(|_, plane, taps| {
        let (mut sum, mut count) = (0.0, 0usize);
        for t in taps {
            if t >= 0 {
                sum += plane[t as usize];
                count += 1;
            } else if count_include_pad && t != OUTSIDE {
                count += 1;
            }
        }
        sum / count as f64
    });
    let y = ArrayD::from_shape_vec(IxDyn(&pl.out_shape), vals).map_err(|e| e.to_string())?;
    Ok(vec![from_f64(y, dt)])
}

/// LpPool: `(sum |x|^p)^(1/p)` over the taps inside the input.
pub(super) fn lp_pool(
    inputs: &[Option<&Tensor>],
    pp: &PoolParams,
    p: i64,
) -> Result<Vec<Tensor>, String> {
    let dt = req(inputs, 0)?.dtype();
    let pl = prepare(inputs, pp, false)?;
    let pf = p as f64;
    let vals = pl.map(|_, plane, taps| {
        let s: f64 = taps
            .filter(|&t| t >= 0)
            .map(|t| plane[t as usize].abs().powf(pf))
            .sum();
        s.powf(1.0 / pf)
    });
    let y = ArrayD::from_shape_vec(IxDyn(&pl.out_shape), vals).map_err(|e| e.to_string())?;
    Ok(vec![from_f64(y, dt)])
}

/// Which global pool.
pub(super) enum Global {
    Avg,
    Max,
    Lp(i64),
}

/// GlobalAveragePool, GlobalMaxPool, GlobalLpPool: reduce all spatial dims to size 1.
pub(super) fn global(inputs: &[Option<&Tensor>], kind: Global) -> Result<Vec<Tensor>, String> {
    let t = req(inputs, 0)?;
    let dt = t.dtype();
    let x = to_f64(t, matches!(kind, Global::Max))?
        .as_standard_layout()
        .into_owned();
    let (n, c, sp) = split_nc(x.shape(), 0)?;
    let pin: usize = sp.iter().product();
    let mut out_shape = vec![n, c];
    out_shape.extend(std::iter::repeat_n(1, sp.len()));
    let xs = x.as_slice().expect("standard layout");
    let vals: Vec<f64> = (0..n * c)
        .map(|i| {
            let plane = &xs[i * pin..(i + 1) * pin];
            match kind {
                Global::Avg => plane.iter().sum::<f64>() / pin as f64,
                Global::Max => plane.iter().copied().fold(f64::NEG_INFINITY, |a, b| {
                    if b > a || b.is_nan() {
                        b
                    } else {
                        a
                    }
                }),
                Global::Lp(p) => plane
                    .iter()
                    .map(|v| v.abs().powf(p as f64))
                    .sum::<f64>()
                    .powf(1.0 / p as f64),
            }
        })
        .collect();
    let y = ArrayD::from_shape_vec(IxDyn(&out_shape), vals).map_err(|e| e.to_string())?;
    Ok(vec![from_f64(y, dt)])
}

/// MaxUnpool: scatters `X` into zeros at the flat `I`ndices; the output shape is the optional
/// third input or `(in - 1) * stride + kernel - pads`.
pub(super) fn max_unpool(
    inputs: &[Option<&Tensor>],
    kernel_shape: &[i64],
    pads: &[i64],
    strides: &[i64],
) -> Result<Vec<Tensor>, String> {
    let t = req(inputs, 0)?;
    let dt = t.dtype();
    let x = to_f64(t, true)?;
    let idx = req(inputs, 1)?.to_i64_vec()?;
    if idx.len() != x.len() {
        return Err(format!(
            "indices have {} elements, X has {}",
            idx.len(),
            x.len()
        ));
    }
    let (n, c, sp) = split_nc(x.shape(), 1)?;
    let nd = sp.len();
    let k = usize_list(kernel_shape, nd, 0, "kernel_shape")?;
    let st = usize_list(strides, nd, 1, "strides")?;
    let pd = usize_list(pads, 2 * nd, 0, "pads")?;
    let mut inferred = vec![n, c];
    for d in 0..nd {
        let full = (sp[d].max(1) - 1) * st[d] + k[d];
        inferred.push(
            full.checked_sub(pd[d] + pd[d + nd])
                .ok_or("pads exceed the output size")?,
        );
    }
    let total = checked_size(&inferred)?;
    let mut scattered = vec![0f64; total];
    for (v, &i) in x.iter().zip(&idx) {
        let slot = usize::try_from(i)
            .ok()
            .filter(|&i| i < total)
            .ok_or_else(|| format!("index {i} is out of range for shape {inferred:?}"))?;
        scattered[slot] = *v;
    }
    let scattered =
        ArrayD::from_shape_vec(IxDyn(&inferred), scattered).map_err(|e| e.to_string())?;
    // An explicit output shape pads the inferred result with zeros at the end of each dim.
    let Some(s) = opt(inputs, 2) else {
        return Ok(vec![from_f64(scattered, dt)]);
    };
    let shape = usize_list(&s.to_i64_vec()?, nd + 2, 0, "output_shape")?;
    if shape.iter().zip(&inferred).any(|(a, b)| a < b) {
        return Err(format!(
            "output_shape {shape:?} is smaller than the unpooled shape {inferred:?}"
        ));
    }
    checked_size(&shape)?;
    let mut y = ArrayD::zeros(IxDyn(&shape));
    y.slice_each_axis_mut(|ax| ndarray::Slice::from(0..inferred[ax.axis.index()]))
        .assign(&scattered);
    Ok(vec![from_f64(y, dt)])
}
