//! Linear quantization: QuantizeLinear, DequantizeLinear (per-tensor, per-axis and blocked
//! scales) and DynamicQuantizeLinear. Only integer quantized types exist in the IR, so the
//! float8/int4 variants are refused by the importer before they reach here.

use ndarray::{ArrayD, IxDyn};

use super::{int_range, to_f64};
use crate::eval::util::{checked_size, norm_axis, opt, req};
use crate::ir::{DType, Tensor};

/// Expands a scale or zero point to the full shape of `x`: a scalar broadcasts, a 1-D
/// parameter applies along `axis`, a blocked parameter (same rank, `ceil(d / block)` along
/// `axis`) repeats each value `block` times.
fn expand(
    p: &ArrayD<f64>,
    shape: &[usize],
    axis: i64,
    block: i64,
    what: &str,
) -> Result<ArrayD<f64>, String> {
    let bad = || {
        format!(
            "{what} of shape {:?} does not fit input shape {shape:?}",
            p.shape()
        )
    };
    if p.ndim() == 0 || p.len() == 1 && block <= 0 {
        return Ok(ArrayD::from_elem(
            IxDyn(shape),
            p.iter().next().copied().unwrap_or(0.0),
        ));
    }
    let ax = norm_axis(axis, shape.len())?;
    if block <= 0 {
        if p.ndim() != 1 || p.len() != shape[ax] {
            return Err(bad());
        }
        let mut s = vec![1; shape.len()];
        s[ax] = p.len();
        let v = p
            .view()
            .into_shape_with_order(IxDyn(&s))
            .map_err(|e| e.to_string())?;
        return v
            .broadcast(IxDyn(shape))
            .map(|v| v.to_owned())
            .ok_or_else(bad);
    }
    let block = block as usize;
    let fits = p.ndim() == shape.len()
        && (0..shape.len()).all(|d| {
            if d == ax {
                p.shape()[d] == shape[d].div_ceil(block)
            } else {
                p.shape()[d] == shape[d]
            }
        });
    if !fits {
        return Err(bad());
    }
    checked_size(shape)?;
    Ok(ArrayD::from_shape_fn(IxDyn(shape), |idx| {
        let mut i = idx.clone();
        i[ax] /= block;
        p[i]
    }))
}

/// The quantized output type: the zero point's, else `output_dtype`, else u8.
fn quant_dtype(zp: Option<&Tensor>, output_dtype: i64) -> Result<DType, String> {
    let dt = match zp {
        Some(z) => z.dtype(),
        None if output_dtype != 0 => i32::try_from(output_dtype)
            .ok()
            .and_then(DType::from_onnx)
            .ok_or_else(|| format!("unsupported output_dtype {output_dtype}"))?,
        None => DType::U8,
    };
    if !dt.is_int() {
        return Err(format!("quantized type {dt} is not supported"));
    }
    Ok(dt)
}

/// QuantizeLinear: `saturate(round_half_even(x / scale) + zero_point)`. The division is done
/// in f32 unless both operands are f64.
pub(super) fn quantize(
    inputs: &[Option<&Tensor>],
    axis: i64,
    block: i64,
    output_dtype: i64,
) -> Result<Vec<Tensor>, String> {
    let xt = req(inputs, 0)?;
    let st = req(inputs, 1)?;
    let zt = opt(inputs, 2);
    let dt = quant_dtype(zt, output_dtype)?;
    let x = to_f64(xt, true)?;
    let s = expand(&to_f64(st, false)?, x.shape(), axis, block, "y_scale")?;
    let z = match zt {
        Some(z) => expand(&to_f64(z, true)?, x.shape(), axis, block, "y_zero_point")?,
        None => ArrayD::zeros(x.raw_dim()),
    };
    let wide = xt.dtype() == DType::F64 && st.dtype() == DType::F64;
    let (lo, hi) = int_range(dt);
    let mut q = x;
    ndarray::Zip::from(&mut q)
        .and(&s)
        .and(&z)
        .for_each(|v, &s, &z| {
            let r = if wide {
                *v / s
            } else {
                ((*v as f32) / (s as f32)) as f64
            };
            let r = r.round_ties_even() + z;
            *v = if r.is_nan() { 0.0 } else { r.clamp(lo, hi) };
        });
    Ok(vec![Tensor::F64(q).cast(dt)])
}

/// DequantizeLinear: `(x - zero_point) * scale` in the scale's type (or `output_dtype`).
pub(super) fn dequantize(
    inputs: &[Option<&Tensor>],
    axis: i64,
    block: i64,
    output_dtype: i64,
) -> Result<Vec<Tensor>, String> {
    let xt = req(inputs, 0)?;
    let st = req(inputs, 1)?;
    let x = to_f64(xt, true)?;
    let s = expand(&to_f64(st, false)?, x.shape(), axis, block, "x_scale")?;
    let mut y = match opt(inputs, 2) {
        Some(z) => {
            if z.dtype() != xt.dtype() {
                return Err(format!(
                    "x_zero_point has type {}, x has {}",
                    z.dtype(),
                    xt.dtype()
                ));
            }
            &x - &expand(&to_f64(z, true)?, x.shape(), axis, block, "x_zero_point")?
        }
        None => x,
    };
    y *= &s;
    let dt = if output_dtype != 0 {
        i32::try_from(output_dtype)
            .ok()
            .and_then(DType::from_onnx)
            .ok_or_else(|| format!("unsupported output_dtype {output_dtype}"))?
    } else {
        st.dtype()
    };
    Ok(vec![Tensor::F64(y).cast(dt)])
}

/// DynamicQuantizeLinear: u8 quantization with scale and zero point derived from the data
/// range (extended to include 0), in f32 arithmetic.
pub(super) fn dynamic_quantize(inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
    let x = match req(inputs, 0)? {
        Tensor::F32(a) => a,
        t => return Err(format!("expected an f32 input, got {}", t.dtype())),
    };
    let min = x.iter().copied().fold(0f32, f32::min);
    let max = x.iter().copied().fold(0f32, f32::max);
    let scale = (max - min) / 255.0;
    let q = |v: f32| -> u8 { v.round_ties_even().clamp(0.0, 255.0) as u8 };
    let (zp, y) = if scale == 0.0 || !scale.is_finite() {
        (0u8, x.mapv(|_| 0u8))
    } else {
        let zp = q(-min / scale);
        (zp, x.mapv(|v| q((v / scale).round_ties_even() + zp as f32)))
    };
    Ok(vec![
        Tensor::U8(y),
        Tensor::scalar(scale),
        Tensor::scalar(zp),
    ])
}
