//! Normalizations (Batch, Instance, Layer, Group, RMS, Lp, MeanVariance), LRN and Dropout,
//! computed in f64 with ndarray broadcasting and cast back to the input's type.

use ndarray::{ArrayD, Axis, IxDyn};

use super::{f64_input, from_f64, split_nc};
use crate::eval::util::{norm_axes, norm_axis, opt, req};
use crate::ir::{DType, Tensor};

/// The mean over `axes`, keeping them as size-1 dims.
fn mean_keep(x: &ArrayD<f64>, axes: &[usize]) -> ArrayD<f64> {
    let n: usize = axes.iter().map(|&a| x.shape()[a]).product();
    let mut s = x.clone();
    for &a in axes {
        s = s.sum_axis(Axis(a)).insert_axis(Axis(a));
    }
    s / n as f64
}

/// Reshapes a per-channel vector `[C]` to `[C, 1, ...]` so it broadcasts against `[N, C, ...]`.
fn per_channel(v: ArrayD<f64>, c: usize, rank: usize, what: &str) -> Result<ArrayD<f64>, String> {
    if v.len() != c {
        return Err(format!("{what} has {} values for {c} channels", v.len()));
    }
    let mut shape = vec![c];
    shape.extend(std::iter::repeat_n(1, rank.saturating_sub(2)));
    v.into_shape_with_order(IxDyn(&shape))
        .map_err(|e| e.to_string())
}

/// Checks that `b` broadcasts into `a`'s shape (the result keeps `a`'s shape).
fn fits(a: &ArrayD<f64>, b: &ArrayD<f64>, what: &str) -> Result<(), String> {
    match b.broadcast(a.raw_dim()) {
        Some(_) => Ok(()),
        None => Err(format!(
            "{what} of shape {:?} does not broadcast to {:?}",
            b.shape(),
            a.shape()
        )),
    }
}

/// BatchNormalization. In training mode the batch statistics normalize and the running
/// statistics `input * momentum + batch * (1 - momentum)` are the extra outputs.
pub(super) fn batch_norm(
    inputs: &[Option<&Tensor>],
    eps: f64,
    momentum: f64,
    training: bool,
    n_outputs: usize,
) -> Result<Vec<Tensor>, String> {
    let dt = req(inputs, 0)?.dtype();
    let x = f64_input(inputs, 0, false)?;
    let (_, c, _) = split_nc(x.shape(), 0)?;
    let r = x.ndim();
    let scale = per_channel(f64_input(inputs, 1, false)?, c, r, "scale")?;
    let bias = per_channel(f64_input(inputs, 2, false)?, c, r, "B")?;
    let in_mean = per_channel(f64_input(inputs, 3, false)?, c, r, "input_mean")?;
    let in_var = per_channel(f64_input(inputs, 4, false)?, c, r, "input_var")?;
    let (mean, var) = if training {
        let axes: Vec<usize> = (0..r).filter(|&a| a != 1).collect();
        let m = mean_keep(&x, &axes);
        let v = mean_keep(&(&x - &m).mapv(|d| d * d), &axes);
        let shape = in_mean.raw_dim();
        let m = m
            .into_shape_with_order(shape.clone())
            .map_err(|e| e.to_string())?;
        let v = v.into_shape_with_order(shape).map_err(|e| e.to_string())?;
        (m, v)
    } else {
        (in_mean.clone(), in_var.clone())
    };
    let y = (&x - &mean) / &var.mapv(|v| (v + eps).sqrt()) * &scale + &bias;
    let mut outs = vec![from_f64(y, dt)];
    if n_outputs > 1 {
        if !training {
            return Err("running mean and variance outputs need training_mode=1".into());
        }
        let mdt = req(inputs, 3)?.dtype();
        let vdt = req(inputs, 4)?.dtype();
        let run_mean = &in_mean * momentum + &mean * (1.0 - momentum);
        let run_var = &in_var * momentum + &var * (1.0 - momentum);
        outs.push(from_f64(
            run_mean
                .into_shape_with_order(IxDyn(&[c]))
                .map_err(|e| e.to_string())?,
            mdt,
        ));
        if n_outputs > 2 {
            outs.push(from_f64(
                run_var
                    .into_shape_with_order(IxDyn(&[c]))
                    .map_err(|e| e.to_string())?,
                vdt,
            ));
        }
    }
    Ok(outs)
}

/// `(x - mean) / sqrt(var + eps)` over `axes`, with the mean and `1 / sqrt(var + eps)`.
fn standardize(
    x: &ArrayD<f64>,
    axes: &[usize],
    eps: f64,
) -> (ArrayD<f64>, ArrayD<f64>, ArrayD<f64>) {
    let mean = mean_keep(x, axes);
    let d = x - &mean;
    let inv = mean_keep(&d.mapv(|v| v * v), axes).mapv(|v| 1.0 / (v + eps).sqrt());
    (&d * &inv, mean, inv)
}

/// InstanceNormalization: per (n, c) over the spatial dims, then per-channel scale and bias.
pub(super) fn instance_norm(inputs: &[Option<&Tensor>], eps: f64) -> Result<Vec<Tensor>, String> {
    let dt = req(inputs, 0)?.dtype();
    let x = f64_input(inputs, 0, false)?;
    let (_, c, _) = split_nc(x.shape(), 0)?;
    let r = x.ndim();
    let scale = per_channel(f64_input(inputs, 1, false)?, c, r, "scale")?;
    let bias = per_channel(f64_input(inputs, 2, false)?, c, r, "B")?;
    let axes: Vec<usize> = (2..r).collect();
    let (y, _, _) = standardize(&x, &axes, eps);
    Ok(vec![from_f64(y * &scale + &bias, dt)])
}

/// LayerNormalization over the dims from `axis` on, with optional Mean and InvStdDev outputs
/// (of the `stash_type` element type, as the operator's type constraints say).
pub(super) fn layer_norm(
    inputs: &[Option<&Tensor>],
    axis: i64,
    eps: f64,
    stash_type: i64,
    n_outputs: usize,
) -> Result<Vec<Tensor>, String> {
    let dt = req(inputs, 0)?.dtype();
    let stash = i32::try_from(stash_type)
        .ok()
        .and_then(crate::ir::DType::from_onnx)
        .unwrap_or(crate::ir::DType::F32);
    let x = f64_input(inputs, 0, false)?;
    let a = norm_axis(axis, x.ndim())?;
    let axes: Vec<usize> = (a..x.ndim()).collect();
    let (mut y, mean, inv) = standardize(&x, &axes, eps);
    let scale = f64_input(inputs, 1, false)?;
    fits(&y, &scale, "scale")?;
    y *= &scale;
    if opt(inputs, 2).is_some() {
        let b = f64_input(inputs, 2, false)?;
        fits(&y, &b, "B")?;
        y += &b;
    }
    let mut outs = vec![from_f64(y, dt), from_f64(mean, stash), from_f64(inv, stash)];
    outs.truncate(n_outputs.max(1));
    Ok(outs)
}

/// GroupNormalization: `num_groups` groups of channels standardized together, then a
/// per-channel scale and bias (one per group, as in opset 18, when they have that length).
pub(super) fn group_norm(
    inputs: &[Option<&Tensor>],
    eps: f64,
    num_groups: i64,
) -> Result<Vec<Tensor>, String> {
    let dt = req(inputs, 0)?.dtype();
    let x = f64_input(inputs, 0, false)?;
    let shape = x.shape().to_vec();
    let (n, c, sp) = split_nc(&shape, 0)?;
    let g = usize::try_from(num_groups)
        .ok()
        .filter(|&g| g > 0 && c % g == 0)
        .ok_or_else(|| format!("num_groups {num_groups} does not divide {c} channels"))?;
    let inner: usize = (c / g) * sp.iter().product::<usize>();
    let grouped = x
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(&[n, g, inner]))
        .map_err(|e| e.to_string())?;
    let (y, _, _) = standardize(&grouped, &[2], eps);
    let y = y
        .into_shape_with_order(IxDyn(&shape))
        .map_err(|e| e.to_string())?;
    let expand = |v: ArrayD<f64>, what: &str| -> Result<ArrayD<f64>, String> {
        let v = if v.len() == g && g != c {
            ArrayD::from_shape_fn(IxDyn(&[c]), |i| v[[i[0] / (c / g)]])
        } else {
            v
        };
        per_channel(
            v.into_shape_with_order(IxDyn(&[c]))
                .map_err(|_| format!("{what} must be 1-D"))?,
            c,
            shape.len(),
            what,
        )
    };
    let scale = expand(f64_input(inputs, 1, false)?, "scale")?;
    let bias = expand(f64_input(inputs, 2, false)?, "bias")?;
    Ok(vec![from_f64(y * &scale + &bias, dt)])
}

/// RMSNormalization: `x / sqrt(mean(x^2) + eps) * scale` over the dims from `axis` on.
pub(super) fn rms_norm(
    inputs: &[Option<&Tensor>],
    axis: i64,
    eps: f64,
) -> Result<Vec<Tensor>, String> {
    let dt = req(inputs, 0)?.dtype();
    let x = f64_input(inputs, 0, false)?;
    let a = norm_axis(axis, x.ndim())?;
    let axes: Vec<usize> = (a..x.ndim()).collect();
    let inv = mean_keep(&x.mapv(|v| v * v), &axes).mapv(|v| 1.0 / (v + eps).sqrt());
    let scale = f64_input(inputs, 1, false)?;
    let y = &x * &inv;
    fits(&y, &scale, "scale")?;
    Ok(vec![from_f64(y * &scale, dt)])
}

/// LpNormalization along `axis` (p is 1 or 2); a zero norm gives zeros.
pub(super) fn lp_norm(
    inputs: &[Option<&Tensor>],
    axis: i64,
    p: i64,
) -> Result<Vec<Tensor>, String> {
    let dt = req(inputs, 0)?.dtype();
    let x = f64_input(inputs, 0, false)?;
    let a = norm_axis(axis, x.ndim())?;
    let norm = match p {
        1 => x.mapv(f64::abs).sum_axis(Axis(a)),
        2 => x.mapv(|v| v * v).sum_axis(Axis(a)).mapv(f64::sqrt),
        _ => return Err(format!("p must be 1 or 2, got {p}")),
    }
    .insert_axis(Axis(a));
    let mut y = x;
    let nb = norm
        .broadcast(y.raw_dim())
        .ok_or("norm does not broadcast")?;
    y.zip_mut_with(&nb, |v, &n| *v = if n == 0.0 { 0.0 } else { *v / n });
    Ok(vec![from_f64(y, dt)])
}

/// MeanVarianceNormalization: `(x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9)` over `axes`.
pub(super) fn mean_variance_norm(
    inputs: &[Option<&Tensor>],
    axes: &[i64],
) -> Result<Vec<Tensor>, String> {
    let dt = req(inputs, 0)?.dtype();
    let x = f64_input(inputs, 0, false)?;
    let axes = norm_axes(axes, x.ndim())?;
    let mean = mean_keep(&x, &axes);
    let mean_sq = mean_keep(&x.mapv(|v| v * v), &axes);
    let std = (&mean_sq - &mean.mapv(|m| m * m)).mapv(|v| v.sqrt() + 1e-9);
    Ok(vec![from_f64((&x - &mean) / &std, dt)])
}

/// LRN across channels: `x / (bias + alpha / size * sum of squares)^beta`, the sum over
/// channels `c - floor((size - 1) / 2) ..= c + ceil((size - 1) / 2)`.
pub(super) fn lrn(
    inputs: &[Option<&Tensor>],
    alpha: f64,
    beta: f64,
    bias: f64,
    size: i64,
) -> Result<Vec<Tensor>, String> {
    let dt = req(inputs, 0)?.dtype();
    let x = f64_input(inputs, 0, false)?;
    let (_, c, _) = split_nc(x.shape(), 0)?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .ok_or("size must be positive")?;
    let (lo, hi) = ((size - 1) / 2, (size - 1).div_ceil(2));
    let sq = x.mapv(|v| v * v);
    let mut y = x.clone();
    for ch in 0..c {
        let from = ch.saturating_sub(lo);
        let to = (ch + hi).min(c - 1);
        let mut sum = sq.index_axis(Axis(1), from).to_owned();
        for k in from + 1..=to {
            sum += &sq.index_axis(Axis(1), k);
        }
        let mut out = y.index_axis_mut(Axis(1), ch);
        out.zip_mut_with(&sum, |v, &s| {
            *v /= (bias + alpha / size as f64 * s).powf(beta)
        });
    }
    Ok(vec![from_f64(y, dt)])
}

/// Dropout: the identity (and an all-true mask) unless training with a non-zero ratio, which
/// needs random numbers the reference evaluator cannot reproduce.
pub(super) fn dropout(inputs: &[Option<&Tensor>], n_outputs: usize) -> Result<Vec<Tensor>, String> {
    let x = req(inputs, 0)?;
    let training = match opt(inputs, 2) {
        Some(t) => t
            .cast(DType::Bool)
            .as_array::<bool>()
            .and_then(|a| a.iter().next().copied())
            .unwrap_or(false),
        None => false,
    };
    if training {
        let ratio = opt(inputs, 1)
            .map(|r| r.to_f64_vec().first().copied().unwrap_or(0.5))
            .unwrap_or(0.5);
        if ratio != 0.0 {
            return Err(format!("training-mode dropout with ratio {ratio} is random and cannot be evaluated reproducibly"));
        }
    }
    let mut outs = vec![x.clone()];
    if n_outputs > 1 {
        outs.push(Tensor::Bool(ArrayD::from_elem(IxDyn(x.shape()), true)));
    }
    Ok(outs)
}
