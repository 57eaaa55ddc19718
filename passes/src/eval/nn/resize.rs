//! Resize (nearest / linear / cubic, every coordinate transformation, antialiasing) and
//! Upsample, as separable 1-D resamplings applied one axis at a time in f64.
//!
//! Each output coordinate maps back to a real input coordinate `x`; with `x0 = ceil(x) - 1`
//! and `ratio = x - x0` in `(0, 1]`, the taps are `x0 + j` for `j` in `lo..=1-lo`
//! (`lo = floor(-R / s) + 1`, `R` the kernel radius, `s` the antialias scale or 1), weighted
//! by the kernel at `(j - ratio) * s`. Taps outside the input clamp to the edge (or are
//! dropped with `exclude_outside`, renormalizing).

use ndarray::{ArrayD, Axis, IxDyn};

use super::{from_f64, to_f64};
use crate::eval::util::{checked_size, norm_axes, opt, req};
use crate::ir::Tensor;

/// Resize attributes (the ONNX ones, numbers widened to f64).
pub struct ResizeParams<'a> {
    /// `antialias != 0`.
    pub antialias: bool,
    /// `axes`: the axes `scales`/`sizes`/`roi` list (all when absent).
    pub axes: Option<&'a [i64]>,
    /// `coordinate_transformation_mode`.
    pub coord_mode: &'a str,
    /// `cubic_coeff_a`.
    pub cubic_a: f64,
    /// `exclude_outside != 0`.
    pub exclude_outside: bool,
    /// `extrapolation_value` (tf_crop_and_resize).
    pub extrapolation: f64,
    /// `keep_aspect_ratio_policy`.
    pub keep_aspect: &'a str,
    /// `mode`: nearest, linear or cubic.
    pub mode: &'a str,
    /// `nearest_mode`.
    pub nearest_mode: &'a str,
}

/// The resampling of one axis: per output index, its taps, or `None` to extrapolate.
pub type Taps = Vec<Option<Vec<(usize, f64)>>>;

/// Resize with inputs (X, roi, scales, sizes).
pub(super) fn resize(inputs: &[Option<&Tensor>], p: &ResizeParams) -> Result<Vec<Tensor>, String> {
    let xt = req(inputs, 0)?;
    let x = to_f64(xt, true)?;
    let r = x.ndim();
    let axes = match p.axes {
        Some(a) => norm_axes(a, r)?,
        None => (0..r).collect(),
    };
    let present = |i: usize| opt(inputs, i).filter(|t| !t.is_empty());
    let in_shape = x.shape().to_vec();
    let mut scales = vec![1.0f64; r];
    let mut out = in_shape.clone();
    if let Some(sizes) = present(3) {
        let sizes = sizes.to_i64_vec()?;
        if sizes.len() != axes.len() {
            return Err(format!(
                "sizes has {} values for {} axes",
                sizes.len(),
                axes.len()
            ));
        }
        let sizes: Vec<usize> = sizes
            .iter()
            .map(|&s| usize::try_from(s).map_err(|_| format!("negative size {s}")))
            .collect::<Result<_, _>>()?;
        for (&a, &s) in axes.iter().zip(&sizes) {
            scales[a] = s as f64 / in_shape[a] as f64;
            out[a] = s;
        }
        if p.keep_aspect != "stretch" {
            let sel = axes.iter().map(|&a| scales[a]);
            let s = match p.keep_aspect {
                "not_larger" => sel.fold(f64::INFINITY, f64::min),
                "not_smaller" => sel.fold(f64::NEG_INFINITY, f64::max),
                k => return Err(format!("unknown keep_aspect_ratio_policy '{k}'")),
            };
            for &a in &axes {
                scales[a] = s;
                out[a] = (s * in_shape[a] as f64 + 0.5) as usize;
            }
        }
    } else if let Some(s) = present(2) {
        let s = s.to_f64_vec();
        if s.len() != axes.len() {
            return Err(format!(
                "scales has {} values for {} axes",
                s.len(),
                axes.len()
            ));
        }
        for (&a, &v) in axes.iter().zip(&s) {
            if !(v > 0.0 && v.is_finite()) {
                return Err(format!("scale {v} must be positive"));
            }
            scales[a] = v;
            let o = v * in_shape[a] as f64;
            if o >= u32::MAX as f64 {
                return Err(format!("scale {v} gives too large an output"));
            }
            out[a] = o as usize;
        }
    } else {
        return Err("resize needs scales or sizes".into());
    }
    checked_size(&out)?;
    let mut roi = vec![(0.0, 1.0); r];
    if let Some(t) = present(1) {
        let v = t.to_f64_vec();
        let k = if v.len() == 2 * axes.len() {
            axes.len()
        } else {
            r
        };
        if v.len() != 2 * k {
            return Err(format!(
                "roi has {} values, expected {}",
                v.len(),
                2 * axes.len()
            ));
        }
        let which: Vec<usize> = if k == r {
            (0..r).collect()
        } else {
            axes.clone()
        };
        for (i, &a) in which.iter().enumerate() {
            roi[a] = (v[i], v[k + i]);
        }
    }
    let mut y = x;
    let mut extrapolated: Vec<(usize, Vec<bool>)> = Vec::new();
    for a in 0..r {
        let unchanged = scales[a] == 1.0
            && out[a] == in_shape[a]
            && (p.coord_mode != "tf_crop_and_resize" || roi[a] == (0.0, 1.0));
        if unchanged {
            continue;
        }
        let taps = axis_taps(in_shape[a], out[a], scales[a], roi[a], p)?;
        if taps.iter().any(Option::is_none) {
            extrapolated.push((a, taps.iter().map(Option::is_none).collect()));
        }
        y = apply_axis(&y, a, &taps)?;
    }
    for (a, mask) in extrapolated {
        for (i, mut lane) in y.axis_iter_mut(Axis(a)).enumerate() {
            if mask[i] {
                lane.fill(p.extrapolation);
            }
        }
    }
    Ok(vec![from_f64(y, xt.dtype())])
}

/// Upsample with a scales input: nearest (floor, asymmetric) or linear (asymmetric).
pub(super) fn upsample(inputs: &[Option<&Tensor>], mode: &str) -> Result<Vec<Tensor>, String> {
    let mode = match mode {
        "nearest" => "nearest",
        "linear" | "bilinear" => "linear",
        m => return Err(format!("unknown upsample mode '{m}'")),
    };
    let p = ResizeParams {
        antialias: false,
        axes: None,
        coord_mode: "asymmetric",
        cubic_a: -0.75,
        exclude_outside: false,
        extrapolation: 0.0,
        keep_aspect: "stretch",
        mode,
        nearest_mode: "floor",
    };
    let args = [opt(inputs, 0), None, Some(req(inputs, 1)?), None];
    resize(&args, &p)
}

/// Maps output index `o` of an axis back to an input coordinate.
fn source_coord(
    o: usize,
    len_in: usize,
    len_out: usize,
    scale: f64,
    roi: (f64, f64),
    mode: &str,
) -> Result<f64, String> {
    let o = o as f64;
    let (n_in, width) = (len_in as f64, scale * len_in as f64);
    Ok(match mode {
        "half_pixel" => (o + 0.5) / scale - 0.5,
        "half_pixel_symmetric" => {
            let adjustment = len_out as f64 / width;
            let offset = n_in / 2.0 * (1.0 - adjustment);
            offset + (o + 0.5) / scale - 0.5
        }
        "pytorch_half_pixel" => {
            if width == 1.0 {
                -0.5
            } else {
                (o + 0.5) / scale - 0.5
            }
        }
        "align_corners" => {
            if width == 1.0 {
                0.0
            } else {
                o * (n_in - 1.0) / (width - 1.0)
            }
        }
        "asymmetric" => o / scale,
        "tf_crop_and_resize" => {
            let x = if width == 1.0 {
                (roi.1 - roi.0) * (n_in - 1.0) / 2.0
            } else {
                o * (roi.1 - roi.0) * (n_in - 1.0) / (width - 1.0)
            };
            x + roi.0 * (n_in - 1.0)
        }
        m => return Err(format!("unknown coordinate_transformation_mode '{m}'")),
    })
}

/// The cubic convolution kernel with coefficient `a`.
fn cubic(t: f64, a: f64) -> f64 {
    let t = t.abs();
    if t <= 1.0 {
        ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    } else if t < 2.0 {
        ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
    } else {
        0.0
    }
}

/// Per output index of one axis, its (clamped input index, weight) taps with zero weights
/// dropped, or `None` where tf_crop_and_resize extrapolates: one tap for nearest; the
/// kernel's support (widened by 1/scale under antialias) for linear and cubic, renormalized
/// under exclude_outside or antialias. The compiled Resize bakes these same tables.
pub fn axis_taps(
    len_in: usize,
    len_out: usize,
    scale: f64,
    roi: (f64, f64),
    p: &ResizeParams,
) -> Result<Taps, String> {
    if len_in == 0 {
        return Err("cannot resize an empty axis".into());
    }
    let last = (len_in - 1) as isize;
    let clamp = |i: isize| i.clamp(0, last) as usize;
    let mut taps = Vec::with_capacity(len_out);
    for o in 0..len_out {
        let x = source_coord(o, len_in, len_out, scale, roi, p.coord_mode)?;
        if p.coord_mode == "tf_crop_and_resize" && (x < 0.0 || x > last as f64) {
            taps.push(None);
            continue;
        }
        let integral = x.fract() == 0.0;
        let x0 = if integral {
            x as isize - 1
        } else {
            x.floor() as isize
        };
        let ratio = x - x0 as f64;
        let t: Vec<(usize, f64)> = match p.mode {
            "nearest" => {
                let up = match p.nearest_mode {
                    _ if integral => true,
                    "round_prefer_floor" => ratio > 0.5,
                    "round_prefer_ceil" => ratio >= 0.5,
                    "floor" => false,
                    "ceil" => true,
                    m => return Err(format!("unknown nearest_mode '{m}'")),
                };
                vec![(clamp(x0 + up as isize), 1.0)]
            }
            "linear" | "cubic" => {
                let radius = if p.mode == "linear" { 1.0 } else { 2.0 };
                let s = if p.antialias { scale.min(1.0) } else { 1.0 };
                let lo = (-radius / s).floor() as isize + 1;
                let mut t: Vec<(isize, f64)> = (lo..=1 - lo)
                    .map(|j| {
                        let u = (j as f64 - ratio) * s;
                        let w = if p.mode == "linear" {
                            (1.0 - u.abs()).max(0.0)
                        } else {
                            cubic(u, p.cubic_a)
                        };
                        (x0 + j, w)
                    })
                    .collect();
                if p.exclude_outside {
                    for (i, w) in t.iter_mut() {
                        if *i < 0 || *i > last {
                            *w = 0.0;
                        }
                    }
                }
                if p.exclude_outside || p.antialias {
                    let sum: f64 = t.iter().map(|(_, w)| w).sum();
                    if sum != 0.0 {
                        t.iter_mut().for_each(|(_, w)| *w /= sum);
                    }
                }
                t.into_iter()
                    .filter(|&(_, w)| w != 0.0)
                    .map(|(i, w)| (clamp(i), w))
                    .collect()
            }
            m => return Err(format!("unknown resize mode '{m}'")),
        };
        taps.push(Some(t));
    }
    Ok(taps)
}

/// Resamples axis `a` of `x` with the given taps (extrapolated positions become 0 here and are
/// filled in by the caller).
fn apply_axis(x: &ArrayD<f64>, a: usize, taps: &Taps) -> Result<ArrayD<f64>, String> {
    let mut shape = x.shape().to_vec();
    shape[a] = taps.len();
    checked_size(&shape)?;
    let mut y = ArrayD::zeros(IxDyn(&shape));
    for (src, mut dst) in x.lanes(Axis(a)).into_iter().zip(y.lanes_mut(Axis(a))) {
        for (o, t) in taps.iter().enumerate() {
            if let Some(t) = t {
                dst[o] = t.iter().map(|&(i, w)| w * src[i]).sum();
            }
        }
    }
    Ok(y)
}
