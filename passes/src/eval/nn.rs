//! Linear algebra (MatMul, Gemm, Einsum, quantized products), convolution, pooling,
//! normalization, Dropout, Resize.
//!
//! Matrix products (MatMul, Gemm, Conv, ConvTranspose) run on ndarray's GEMM in the input's
//! float type (f16/bf16 go through f32); integer products use exact i64 arithmetic. The
//! other ops of the family are elementwise-cheap and compute in f64, then cast back to the
//! input's element type. Submodules own one sub-family each; this file routes and holds the
//! shared conversions and the sliding-window geometry.

use ndarray::ArrayD;

use crate::ir::attr::AutoPad;
use crate::ir::{DType, Op, Tensor};

use super::util::{checked_size, req};

mod conv;
mod linalg;
mod norm;
mod pool;
mod quant;
pub(super) mod resize;

/// Evaluates an op of this family.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], n_outputs: usize) -> Result<Vec<Tensor>, String> {
    match op {
        Op::MatMul {} => linalg::matmul(inputs),
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => linalg::gemm(
            inputs,
            *alpha as f64,
            *beta as f64,
            *trans_a != 0,
            *trans_b != 0,
        ),
        Op::Einsum { equation } => linalg::einsum(equation, inputs),
        Op::MatMulInteger {} => linalg::matmul_integer(inputs),
        Op::QLinearMatMul {} => linalg::qlinear_matmul(inputs),
        Op::Det {} => linalg::det(inputs),
        Op::QuantizeLinear {
            axis,
            saturate: _,
            block_size,
            output_dtype,
            precision: _,
        } => quant::quantize(inputs, *axis, *block_size, *output_dtype),
        Op::DequantizeLinear {
            axis,
            block_size,
            output_dtype,
        } => quant::dequantize(inputs, *axis, *block_size, *output_dtype),
        Op::DynamicQuantizeLinear {} => quant::dynamic_quantize(inputs),
        Op::Conv {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            pads,
            strides,
        } => {
            let p = conv::ConvParams {
                auto_pad: *auto_pad,
                dilations,
                group: *group,
                kernel_shape,
                pads,
                strides,
            };
            conv::conv(inputs, &p)
        }
        Op::ConvInteger {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            pads,
            strides,
        } => {
            let p = conv::ConvParams {
                auto_pad: *auto_pad,
                dilations,
                group: *group,
                kernel_shape,
                pads,
                strides,
            };
            conv::conv_integer(inputs, &p)
        }
        Op::ConvTranspose {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            output_padding,
            output_shape,
            pads,
            strides,
        } => {
            let p = conv::ConvParams {
                auto_pad: *auto_pad,
                dilations,
                group: *group,
                kernel_shape,
                pads,
                strides,
            };
            conv::conv_transpose(inputs, &p, output_padding, output_shape)
        }
        Op::Col2Im {
            dilations,
            pads,
            strides,
        } => conv::col2im_op(inputs, dilations, pads, strides),
        Op::MaxPool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            pads,
            storage_order,
            strides,
        } => {
            let p = pool::PoolParams {
                auto_pad: *auto_pad,
                ceil_mode: *ceil_mode != 0,
                dilations,
                kernel_shape,
                pads,
                strides,
            };
            pool::max_pool(inputs, &p, *storage_order != 0, n_outputs)
        }
        Op::AveragePool {
            auto_pad,
            ceil_mode,
            count_include_pad,
            dilations,
            kernel_shape,
            pads,
            strides,
        } => {
            let p = pool::PoolParams {
                auto_pad: *auto_pad,
                ceil_mode: *ceil_mode != 0,
                dilations,
                kernel_shape,
                pads,
                strides,
            };
            pool::avg_pool(inputs, &p, *count_include_pad != 0)
        }
        Op::LpPool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            p,
            pads,
            strides,
        } => {
            let pp = pool::PoolParams {
                auto_pad: *auto_pad,
                ceil_mode: *ceil_mode != 0,
                dilations,
                kernel_shape,
                pads,
                strides,
            };
            pool::lp_pool(inputs, &pp, *p)
        }
        Op::GlobalAveragePool {} => pool::global(inputs, pool::Global::Avg),
        Op::GlobalMaxPool {} => pool::global(inputs, pool::Global::Max),
        Op::GlobalLpPool { p } => pool::global(inputs, pool::Global::Lp(*p)),
        Op::MaxUnpool {
            kernel_shape,
            pads,
            strides,
        } => pool::max_unpool(inputs, kernel_shape, pads, strides),
        Op::Lrn {
            alpha,
            beta,
            bias,
            size,
        } => norm::lrn(inputs, *alpha as f64, *beta as f64, *bias as f64, *size),
        Op::BatchNormalization {
            epsilon,
            momentum,
            training_mode,
        } => norm::batch_norm(
            inputs,
            *epsilon as f64,
            *momentum as f64,
            *training_mode != 0,
            n_outputs,
        ),
        Op::InstanceNormalization { epsilon } => norm::instance_norm(inputs, *epsilon as f64),
        Op::LayerNormalization {
            axis,
            epsilon,
            stash_type,
        } => norm::layer_norm(inputs, *axis, *epsilon as f64, *stash_type, n_outputs),
        Op::GroupNormalization {
            epsilon,
            num_groups,
            stash_type: _,
        } => norm::group_norm(inputs, *epsilon as f64, *num_groups),
        Op::RmsNormalization {
            axis,
            epsilon,
            stash_type: _,
        } => norm::rms_norm(inputs, *axis, *epsilon as f64),
        Op::LpNormalization { axis, p } => norm::lp_norm(inputs, *axis, *p),
        Op::MeanVarianceNormalization { axes } => norm::mean_variance_norm(inputs, axes),
        Op::Dropout { seed: _ } => norm::dropout(inputs, n_outputs),
        Op::Resize {
            antialias,
            axes,
            coordinate_transformation_mode,
            cubic_coeff_a,
            exclude_outside,
            extrapolation_value,
            keep_aspect_ratio_policy,
            mode,
            nearest_mode,
        } => {
            let p = resize::ResizeParams {
                antialias: *antialias != 0,
                axes: axes.as_deref(),
                coord_mode: coordinate_transformation_mode,
                cubic_a: *cubic_coeff_a as f64,
                exclude_outside: *exclude_outside != 0,
                extrapolation: *extrapolation_value as f64,
                keep_aspect: keep_aspect_ratio_policy,
                mode,
                nearest_mode,
            };
            resize::resize(inputs, &p)
        }
        Op::Upsample { mode } => resize::upsample(inputs, mode),
        _ => Err(format!("{} is not an op of the nn family", op.onnx_name())),
    }
}

/// Input `i` as an f64 array; it must be a float tensor (or numeric when `any_numeric`).
fn f64_input(
    inputs: &[Option<&Tensor>],
    i: usize,
    any_numeric: bool,
) -> Result<ArrayD<f64>, String> {
    let t = req(inputs, i)?;
    to_f64(t, any_numeric).map_err(|e| format!("input {i}: {e}"))
}

/// A tensor as an f64 array: floats always, other numeric types when `any_numeric`.
fn to_f64(t: &Tensor, any_numeric: bool) -> Result<ArrayD<f64>, String> {
    let dt = t.dtype();
    if !(dt.is_float() || any_numeric && dt.is_int()) {
        return Err(format!(
            "expected a {} tensor, got {dt}",
            if any_numeric { "numeric" } else { "float" }
        ));
    }
    match t.cast(DType::F64) {
        Tensor::F64(a) => Ok(a),
        _ => unreachable!("cast to f64 yields an f64 tensor"),
    }
}

/// An f64 result cast back to the element type `dt`; integers round half to even and
/// saturate (numpy's `saturate_cast` after `round`).
fn from_f64(a: ArrayD<f64>, dt: DType) -> Tensor {
    if dt.is_int() {
        let (lo, hi) = int_range(dt);
        let a = a.mapv(|v| {
            if v.is_nan() {
                0.0
            } else {
                v.round_ties_even().clamp(lo, hi)
            }
        });
        return Tensor::F64(a).cast(dt);
    }
    Tensor::F64(a).cast(dt)
}

/// The range of an integer element type, as f64.
fn int_range(dt: DType) -> (f64, f64) {
    match dt {
        DType::I8 => (i8::MIN as f64, i8::MAX as f64),
        DType::I16 => (i16::MIN as f64, i16::MAX as f64),
        DType::I32 => (i32::MIN as f64, i32::MAX as f64),
        DType::I64 => (i64::MIN as f64, i64::MAX as f64),
        DType::U8 => (0.0, u8::MAX as f64),
        DType::U16 => (0.0, u16::MAX as f64),
        DType::U32 => (0.0, u32::MAX as f64),
        DType::U64 => (0.0, u64::MAX as f64),
        _ => (f64::NEG_INFINITY, f64::INFINITY),
    }
}

/// Converts an attribute list of non-negative integers, defaulting to `fill` when empty.
fn usize_list(v: &[i64], n: usize, fill: usize, what: &str) -> Result<Vec<usize>, String> {
    if v.is_empty() {
        return Ok(vec![fill; n]);
    }
    if v.len() != n {
        return Err(format!("{what} has {} values, expected {n}", v.len()));
    }
    v.iter()
        .map(|&x| usize::try_from(x).map_err(|_| format!("{what} value {x} is negative")))
        .collect()
}

/// Marker in a [`Window`] table for a kernel tap that falls in the padding.
const PAD: isize = -1;
/// Marker in a [`Window`] table for a kernel tap beyond the padding (ceil_mode overhang).
const OUTSIDE: isize = -2;

/// The geometry of a sliding window (convolution, pooling, col2im) over the spatial dims.
#[derive(Debug, Clone)]
struct Window {
    /// Input spatial shape.
    in_sp: Vec<usize>,
    /// Kernel shape.
    kernel: Vec<usize>,
    /// Output spatial shape.
    out_sp: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pad_begin: Vec<usize>,
    pad_end: Vec<usize>,
}

impl Window {
    /// Computes output shape and padding. `pads` is `[begin..., end...]` or empty.
    #[allow(clippy::too_many_arguments)]
    fn new(
        in_sp: &[usize],
        kernel: &[usize],
        strides: &[i64],
        dilations: &[i64],
        pads: &[i64],
        auto_pad: AutoPad,
        ceil_mode: bool,
    ) -> Result<Window, String> {
        let n = in_sp.len();
        if kernel.len() != n {
            return Err(format!(
                "kernel has {} dims, the input has {n} spatial dims",
                kernel.len()
            ));
        }
        if kernel.contains(&0) {
            return Err(format!("kernel shape {kernel:?} has a zero dim"));
        }
        let strides = usize_list(strides, n, 1, "strides")?;
        let dilations = usize_list(dilations, n, 1, "dilations")?;
        if strides.contains(&0) || dilations.contains(&0) {
            return Err("strides and dilations must be positive".into());
        }
        let pads = usize_list(pads, 2 * n, 0, "pads")?;
        let mut w = Window {
            in_sp: in_sp.to_vec(),
            kernel: kernel.to_vec(),
            out_sp: vec![0; n],
            strides,
            dilations,
            pad_begin: pads[..n].to_vec(),
            pad_end: pads[n..].to_vec(),
        };
        for d in 0..n {
            let ek = (kernel[d] - 1) * w.dilations[d] + 1;
            let s = w.strides[d];
            match auto_pad {
                AutoPad::NotSet => {
                    let padded = in_sp[d] + w.pad_begin[d] + w.pad_end[d];
                    if padded < ek {
                        return Err(format!("kernel extent {ek} exceeds padded input size {padded} on spatial dim {d}"));
                    }
                    let span = padded - ek;
                    let mut out = if ceil_mode {
                        span.div_ceil(s) + 1
                    } else {
                        span / s + 1
                    };
                    // A last window starting inside the end padding is dropped.
                    if ceil_mode && (out - 1) * s >= in_sp[d] + w.pad_begin[d] {
                        out -= 1;
                    }
                    w.out_sp[d] = out;
                }
                AutoPad::Valid => {
                    w.pad_begin[d] = 0;
                    w.pad_end[d] = 0;
                    w.out_sp[d] = if in_sp[d] < ek {
                        0
                    } else {
                        (in_sp[d] - ek) / s + 1
                    };
                }
                AutoPad::SameUpper | AutoPad::SameLower => {
                    let out = in_sp[d].div_ceil(s);
                    let total = ((out.max(1) - 1) * s + ek).saturating_sub(in_sp[d]);
                    let small = total / 2;
                    let (b, e) = if auto_pad == AutoPad::SameUpper {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    w.pad_begin[d] = b;
                    w.pad_end[d] = e;
                    w.out_sp[d] = out;
                }
            }
        }
        checked_size(&w.out_sp)?;
        Ok(w)
    }

    /// Number of kernel taps.
    fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// For each kernel tap (row-major) and each output position (row-major), the row-major
    /// offset of the input element it reads, or [`PAD`] / [`OUTSIDE`]. Laid out `[tap][pos]`.
    fn table(&self) -> Result<Vec<isize>, String> {
        let n = self.in_sp.len();
        let taps = self.taps();
        let positions: usize = self.out_sp.iter().product();
        let len = checked_size(&[taps, positions])?;
        let mut table = Vec::with_capacity(len);
        // Row-major strides of the input.
        let mut in_strides = vec![1isize; n];
        for d in (0..n.saturating_sub(1)).rev() {
            in_strides[d] = in_strides[d + 1] * self.in_sp[d + 1] as isize;
        }
        let mut k = vec![0usize; n];
        for _ in 0..taps {
            let mut o = vec![0usize; n];
            for _ in 0..positions {
                let mut off = 0isize;
                let mut status = 0isize;
                for d in 0..n {
                    let i = (o[d] * self.strides[d] + k[d] * self.dilations[d]) as isize
                        - self.pad_begin[d] as isize;
                    if i < 0 || i >= self.in_sp[d] as isize {
                        let limit = (self.in_sp[d] + self.pad_end[d]) as isize;
                        status = if i >= limit || status == OUTSIDE {
                            OUTSIDE
                        } else {
                            PAD
                        };
                    } else {
                        off += i * in_strides[d];
                    }
                }
                table.push(if status < 0 { status } else { off });
                odometer(&mut o, &self.out_sp);
            }
            odometer(&mut k, &self.kernel);
        }
        Ok(table)
    }
}

/// Advances a row-major multi-index within `shape` (wrapping to zero at the end).
fn odometer(idx: &mut [usize], shape: &[usize]) {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < shape[d] {
            return;
        }
        idx[d] = 0;
    }
}

/// Splits a shape `[N, C, spatial...]`, requiring at least one spatial dim when `min_spatial`.
fn split_nc(shape: &[usize], min_spatial: usize) -> Result<(usize, usize, &[usize]), String> {
    if shape.len() < 2 + min_spatial {
        return Err(format!(
            "expected an input of shape [N, C, spatial...], got {shape:?}"
        ));
    }
    Ok((shape[0], shape[1], &shape[2..]))
}

#[cfg(test)]
mod tests;
