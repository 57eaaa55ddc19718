//! Sampling ops: GridSample (N-D; nearest, linear, cubic; zeros, border, reflection
//! padding), AffineGrid (2-D and 3-D), RoiAlign (avg and max) and NonMaxSuppression.

use ndarray::{ArrayD, IxDyn};

use super::{from_real, real_input, with_real, Real};
use crate::eval::util::{checked_size, opt, req};
use crate::ir::{Elem, Op, Tensor};

/// Evaluates GridSample, AffineGrid, RoiAlign or NonMaxSuppression.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], n_outputs: usize) -> Result<Vec<Tensor>, String> {
    if n_outputs != 1 {
        return Err(format!("{n_outputs} outputs requested, the op has 1"));
    }
    let dtype = req(inputs, 0)?.dtype();
    let out = match op {
        Op::GridSample {
            align_corners,
            mode,
            padding_mode,
        } => {
            let mode = match mode.as_str() {
                "nearest" => Mode::Nearest,
                "linear" | "bilinear" => Mode::Linear,
                "cubic" | "bicubic" => Mode::Cubic,
                m => return Err(format!("unknown mode '{m}'")),
            };
            let pad = match padding_mode.as_str() {
                "zeros" => Pad::Zeros,
                "border" => Pad::Border,
                "reflection" => Pad::Reflection,
                p => return Err(format!("unknown padding_mode '{p}'")),
            };
            with_real!(dtype, F => Ok(from_real(grid_sample::<F>(inputs, mode, pad, *align_corners != 0)?, dtype)))?
        }
        Op::AffineGrid { align_corners } => {
            with_real!(dtype, F => Ok(from_real(affine_grid::<F>(inputs, *align_corners != 0)?, dtype)))?
        }
        Op::RoiAlign {
            coordinate_transformation_mode,
            mode,
            output_height,
            output_width,
            sampling_ratio,
            spatial_scale,
        } => {
            let half_pixel = match coordinate_transformation_mode.as_str() {
                "half_pixel" => true,
                "output_half_pixel" => false,
                m => return Err(format!("unknown coordinate_transformation_mode '{m}'")),
            };
            let max = match mode.as_str() {
                "avg" => false,
                "max" => true,
                m => return Err(format!("unknown mode '{m}'")),
            };
            let a = RoiAttrs {
                half_pixel,
                max,
                oh: positive(*output_height, "output_height")?,
                ow: positive(*output_width, "output_width")?,
                sampling_ratio: usize::try_from(*sampling_ratio)
                    .map_err(|_| format!("sampling_ratio must be >= 0, got {sampling_ratio}"))?,
                scale: *spatial_scale as f64,
            };
            with_real!(dtype, F => Ok(from_real(roi_align::<F>(inputs, &a)?, dtype)))?
        }
        Op::NonMaxSuppression { center_point_box } => nms(inputs, *center_point_box != 0)?,
        _ => return Err("not a sampling op".into()),
    };
    Ok(vec![out])
}

fn positive(v: i64, what: &str) -> Result<usize, String> {
    usize::try_from(v)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("{what} must be positive, got {v}"))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Clone, Copy, PartialEq)]
enum Pad {
    Zeros,
    Border,
    Reflection,
}

/// Reflects `x` into `[lo, hi]` by bouncing off the borders.
fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    let range = hi - lo;
    if range <= 0.0 {
        return lo;
    }
    let (dx, from_lo) = if x < lo {
        (lo - x, true)
    } else if x > hi {
        (x - hi, false)
    } else {
        return x;
    };
    let n = (dx / range).floor();
    let r = dx - n * range;
    if (n as i64 % 2 == 0) == from_lo {
        lo + r
    } else {
        hi - r
    }
}

/// Keys cubic convolution weights (A = -0.75) for the taps at -1, 0, 1, 2 of fraction `t`.
fn cubic_weights(t: f64) -> [f64; 4] {
    let a = -0.75;
    let far = |x: f64| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    let near = |x: f64| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

fn grid_sample<F: Real>(
    inputs: &[Option<&Tensor>],
    mode: Mode,
    pad: Pad,
    align: bool,
) -> Result<ArrayD<F>, String> {
    let x = real_input::<F>(inputs, 0)?;
    let grid = real_input::<F>(inputs, 1)?;
    let xs = x.shape().to_vec();
    let gs = grid.shape().to_vec();
    let k = xs
        .len()
        .checked_sub(2)
        .filter(|&k| k >= 1)
        .ok_or("X must have rank >= 3")?;
    if gs.len() != k + 2 || gs[0] != xs[0] || gs[k + 1] != k {
        return Err(format!("grid shape {gs:?} does not fit X shape {xs:?}"));
    }
    let (n, ch) = (xs[0], xs[1]);
    let dims = &xs[2..];
    let mut out_shape = vec![n, ch];
    out_shape.extend(&gs[1..=k]);
    checked_size(&out_shape)?;
    let x = x.as_standard_layout().into_owned();
    let xv = x.as_slice().expect("standard layout");
    let grid = grid.as_standard_layout().into_owned();
    let gv = grid.as_slice().expect("standard layout");
    let n_points: usize = gs[1..=k].iter().product();
    let plane: usize = dims.iter().product();
    let (lo, hi): (Vec<f64>, Vec<f64>) = dims
        .iter()
        .map(|&d| {
            if align {
                (0.0, d as f64 - 1.0)
            } else {
                (-0.5, d as f64 - 0.5)
            }
        })
        .unzip();
    // Maps an integer tap index along dim i to a source index, or None for a zero.
    let fetch = |i: usize, idx: i64| -> Option<usize> {
        let d = dims[i] as i64;
        match pad {
            Pad::Zeros => (0..d).contains(&idx).then_some(idx as usize),
            Pad::Border => Some(idx.clamp(0, d - 1) as usize),
            Pad::Reflection => {
                Some((reflect(idx as f64, lo[i], hi[i]) as i64).clamp(0, d - 1) as usize)
            }
        }
    };
    let mut out = Vec::with_capacity(n * ch * n_points);
    let mut taps: Vec<Vec<(Option<usize>, f64)>> = vec![Vec::new(); k];
    let mut strides = vec![1usize; k];
    for i in (0..k.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * dims[i + 1];
    }
    for b in 0..n {
        // Taps for every output point, shared by the channels.
        let mut point_taps: Vec<Vec<(usize, f64)>> = Vec::with_capacity(n_points);
        for p in 0..n_points {
            let g = &gv[(b * n_points + p) * k..(b * n_points + p + 1) * k];
            for i in 0..k {
                // The grid lists coordinates innermost dim first (x, y, z).
                let v = Elem::to_f64(&g[k - 1 - i]);
                let d = dims[i] as f64;
                let mut c = if align {
                    (v + 1.0) / 2.0 * (d - 1.0)
                } else {
                    ((v + 1.0) * d - 1.0) / 2.0
                };
                if mode == Mode::Nearest {
                    c = c.round_ties_even();
                }
                if c < lo[i] || c > hi[i] {
                    c = match pad {
                        Pad::Border => c.clamp(0.0, d - 1.0),
                        Pad::Reflection => reflect(c, lo[i], hi[i]),
                        Pad::Zeros => c,
                    };
                }
                taps[i].clear();
                match mode {
                    Mode::Nearest => taps[i].push((fetch(i, c as i64), 1.0)),
                    Mode::Linear => {
                        let f = c.floor();
                        let t = c - f;
                        taps[i].push((fetch(i, f as i64), 1.0 - t));
                        taps[i].push((fetch(i, f as i64 + 1), t));
                    }
                    Mode::Cubic => {
                        let f = c.floor();
                        for (j, w) in cubic_weights(c - f).into_iter().enumerate() {
                            taps[i].push((fetch(i, f as i64 - 1 + j as i64), w));
                        }
                    }
                }
            }
            // The tensor product of the per-dimension taps (absent taps contribute zero).
            let mut combos: Vec<(usize, f64)> = vec![(0, 1.0)];
            for i in 0..k {
                let mut next = Vec::with_capacity(combos.len() * taps[i].len());
                for &(off, w) in &combos {
                    for &(idx, wi) in &taps[i] {
                        if let Some(idx) = idx {
                            next.push((off + idx * strides[i], w * wi));
                        }
                    }
                }
                combos = next;
            }
            point_taps.push(combos);
        }
        for c in 0..ch {
            let base = (b * ch + c) * plane;
            for combos in &point_taps {
                let v: f64 = combos
                    .iter()
                    .map(|&(off, w)| w * Elem::to_f64(&xv[base + off]))
                    .sum();
                out.push(<F as Elem>::from_f64(v));
            }
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("one value per output element"))
}

fn affine_grid<F: Real>(inputs: &[Option<&Tensor>], align: bool) -> Result<ArrayD<F>, String> {
    let theta = real_input::<F>(inputs, 0)?;
    let size = req(inputs, 1)?.to_i64_vec()?;
    let size: Vec<usize> = size
        .iter()
        .map(|&s| {
            usize::try_from(s).map_err(|_| format!("size entries must be non-negative, got {s}"))
        })
        .collect::<Result<_, _>>()?;
    let k = match size.len() {
        4 => 2,
        5 => 3,
        l => return Err(format!("size must have 4 or 5 entries, got {l}")),
    };
    let n = size[0];
    if theta.shape() != [n, k, k + 1] {
        return Err(format!(
            "theta has shape {:?}, expected {:?}",
            theta.shape(),
            [n, k, k + 1]
        ));
    }
    let spatial = &size[2..]; // (H, W) or (D, H, W)
    let mut out_shape = vec![n];
    out_shape.extend(spatial);
    out_shape.push(k);
    checked_size(&out_shape)?;
    let base = |i: usize, len: usize| -> f64 {
        if align {
            if len <= 1 {
                -1.0
            } else {
                -1.0 + 2.0 * i as f64 / (len - 1) as f64
            }
        } else {
            (2 * i + 1) as f64 / len as f64 - 1.0
        }
    };
    let n_points: usize = spatial.iter().product();
    let mut out = Vec::with_capacity(n * n_points * k);
    for b in 0..n {
        for p in 0..n_points {
            // Point coordinates innermost first: (x, y[, z]).
            let mut rem = p;
            let mut coord = vec![0.0; k + 1];
            for i in (0..k).rev() {
                let len = spatial[i];
                coord[k - 1 - i] = base(rem % len, len);
                rem /= len;
            }
            coord[k] = 1.0;
            for r in 0..k {
                let v: f64 = (0..=k)
                    .map(|j| Elem::to_f64(&theta[[b, r, j]]) * coord[j])
                    .sum();
                out.push(<F as Elem>::from_f64(v));
            }
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("one value per output element"))
}

struct RoiAttrs {
    half_pixel: bool,
    max: bool,
    oh: usize,
    ow: usize,
    sampling_ratio: usize,
    scale: f64,
}

fn roi_align<F: Real>(inputs: &[Option<&Tensor>], a: &RoiAttrs) -> Result<ArrayD<F>, String> {
    let x = real_input::<F>(inputs, 0)?;
    let rois = real_input::<F>(inputs, 1)?;
    let batch = req(inputs, 2)?.to_i64_vec()?;
    if x.ndim() != 4 {
        return Err(format!("X must have rank 4, got shape {:?}", x.shape()));
    }
    let (n, ch, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let nr = batch.len();
    if rois.shape() != [nr, 4] {
        return Err(format!(
            "rois has shape {:?}, expected [{nr}, 4]",
            rois.shape()
        ));
    }
    let out_shape = [nr, ch, a.oh, a.ow];
    checked_size(&out_shape)?;
    let mut out = ArrayD::<F>::zeros(IxDyn(&out_shape));
    let offset = if a.half_pixel { 0.5 } else { 0.0 };
    let (hf, wf) = (h as f64, w as f64);
    for r in 0..nr {
        let bi = usize::try_from(batch[r])
            .ok()
            .filter(|&b| b < n)
            .ok_or_else(|| format!("batch index {} is outside 0..{n}", batch[r]))?;
        let roi: Vec<f64> = (0..4)
            .map(|j| Elem::to_f64(&rois[[r, j]]) * a.scale - offset)
            .collect();
        let (x0, y0) = (roi[0], roi[1]);
        let (mut rw, mut rh) = (roi[2] - x0, roi[3] - y0);
        if !a.half_pixel {
            rw = rw.max(1.0);
            rh = rh.max(1.0);
        }
        let (bin_h, bin_w) = (rh / a.oh as f64, rw / a.ow as f64);
        let grid_h = if a.sampling_ratio > 0 {
            a.sampling_ratio
        } else {
            (rh / a.oh as f64).ceil().max(0.0) as usize
        };
        let grid_w = if a.sampling_ratio > 0 {
            a.sampling_ratio
        } else {
            (rw / a.ow as f64).ceil().max(0.0) as usize
        };
        checked_size(&[grid_h, grid_w, a.oh, a.ow])?;
        let count = (grid_h * grid_w).max(1) as f64;
        for c in 0..ch {
            let at = |yy: usize, xx: usize| Elem::to_f64(&x[[bi, c, yy, xx]]);
            for ph in 0..a.oh {
                for pw in 0..a.ow {
                    let mut acc: Option<f64> = None;
                    for iy in 0..grid_h {
                        let y = y0 + ph as f64 * bin_h + (iy as f64 + 0.5) * bin_h / grid_h as f64;
                        for ix in 0..grid_w {
                            let xx =
                                x0 + pw as f64 * bin_w + (ix as f64 + 0.5) * bin_w / grid_w as f64;
                            // The four bilinear terms (all zero outside the image).
                            let terms =
                                if y < -1.0 || y > hf || xx < -1.0 || xx > wf || h == 0 || w == 0 {
                                    [0.0; 4]
                                } else {
                                    let (mut y, mut xx) = (y.max(0.0), xx.max(0.0));
                                    let (mut yl, mut xl) = (y as usize, xx as usize);
                                    let (yh, xh);
                                    if yl >= h - 1 {
                                        yl = h - 1;
                                        yh = h - 1;
                                        y = yl as f64;
                                    } else {
                                        yh = yl + 1;
                                    }
                                    if xl >= w - 1 {
                                        xl = w - 1;
                                        xh = w - 1;
                                        xx = xl as f64;
                                    } else {
                                        xh = xl + 1;
                                    }
                                    let (ly, lx) = (y - yl as f64, xx - xl as f64);
                                    let (hy, hx) = (1.0 - ly, 1.0 - lx);
                                    [
                                        hy * hx * at(yl, xl),
                                        hy * lx * at(yl, xh),
                                        ly * hx * at(yh, xl),
                                        ly * lx * at(yh, xh),
                                    ]
                                };
                            let v = if a.max {
                                terms.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                            } else {
                                terms.iter().sum()
                            };
                            acc = Some(match acc {
                                None => v,
                                Some(p) if a.max => p.max(v),
                                Some(p) => p + v,
                            });
                        }
                    }
                    let v = acc.unwrap_or(0.0);
                    out[[r, c, ph, pw]] = <F as Elem>::from_f64(if a.max { v } else { v / count });
                }
            }
        }
    }
    Ok(out)
}

/// Greedy per-class non-maximum suppression; returns [selected, 3] int64 indices.
fn nms(inputs: &[Option<&Tensor>], center: bool) -> Result<Tensor, String> {
    let boxes = req(inputs, 0)?;
    let scores = req(inputs, 1)?;
    let (bs, ss) = (boxes.shape(), scores.shape());
    if bs.len() != 3 || bs[2] != 4 || ss.len() != 3 || ss[0] != bs[0] || ss[2] != bs[1] {
        return Err(format!(
            "boxes {bs:?} and scores {ss:?} must be [B, S, 4] and [B, C, S]"
        ));
    }
    let (nb, nc, ns) = (ss[0], ss[1], ss[2]);
    let scalar = |i: usize| -> Result<Option<f64>, String> {
        match opt(inputs, i) {
            None => Ok(None),
            Some(t) if t.is_empty() => Ok(None),
            Some(t) => Ok(Some(t.to_f64_vec()[0])),
        }
    };
    let max_out = match opt(inputs, 2) {
        None => 0,
        Some(t) if t.is_empty() => 0,
        Some(t) => t.to_i64_vec()?[0].max(0) as usize,
    };
    let iou_th = scalar(3)?.unwrap_or(0.0);
    let score_th = scalar(4)?;
    let bv = boxes.to_f64_vec();
    let sv = scores.to_f64_vec();
    // Corners (y1, x1, y2, x2) normalized so that y1 <= y2 and x1 <= x2.
    let corners = |b: usize, i: usize| -> [f64; 4] {
        let p = &bv[(b * ns + i) * 4..(b * ns + i + 1) * 4];
        if center {
            let (xc, yc, w, h) = (p[0], p[1], p[2], p[3]);
            [yc - h / 2.0, xc - w / 2.0, yc + h / 2.0, xc + w / 2.0]
        } else {
            [
                p[0].min(p[2]),
                p[1].min(p[3]),
                p[0].max(p[2]),
                p[1].max(p[3]),
            ]
        }
    };
    let suppress = |a: [f64; 4], b: [f64; 4]| -> bool {
        let ih = a[2].min(b[2]) - a[0].max(b[0]);
        let iw = a[3].min(b[3]) - a[1].max(b[1]);
        if ih <= 0.0 || iw <= 0.0 {
            return false;
        }
        let inter = ih * iw;
        let (aa, ab) = ((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]));
        let union = aa + ab - inter;
        if aa <= 0.0 || ab <= 0.0 || union <= 0.0 {
            return false;
        }
        inter / union > iou_th
    };
    let mut sel: Vec<i64> = Vec::new();
    for b in 0..nb {
        for c in 0..nc {
            let s = &sv[(b * nc + c) * ns..(b * nc + c + 1) * ns];
            let mut cand: Vec<usize> = (0..ns)
                .filter(|&i| score_th.is_none_or(|t| s[i] > t))
                .collect();
            // Highest score first; ties keep the lower index first.
            cand.sort_by(|&i, &j| {
                s[j].partial_cmp(&s[i])
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(i.cmp(&j))
            });
            let mut kept: Vec<usize> = Vec::new();
            for i in cand {
                if kept.len() >= max_out {
                    break;
                }
                if kept
                    .iter()
                    .all(|&k| !suppress(corners(b, i), corners(b, k)))
                {
                    kept.push(i);
                    sel.extend([b as i64, c as i64, i as i64]);
                }
            }
        }
    }
    Tensor::from_vec(&[sel.len() / 3, 3], sel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(t: &Tensor, want: &[f64], tol: f64) {
        let got = t.to_f64_vec();
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= tol, "{got:?} vs {want:?}");
        }
    }

    fn gs(mode: &str, pad: &str, align: i64) -> Op {
        Op::GridSample {
            align_corners: align,
            mode: mode.into(),
            padding_mode: pad.into(),
        }
    }

    #[test]
    fn grid_sample_modes_and_padding() {
        // X [1,1,2,2] = [[1,2],[3,4]].
        let x = Tensor::from_vec(&[1, 1, 2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        // Grid points (x, y): centre, top-left corner, far outside to the right.
        let g = Tensor::from_vec(&[1, 1, 3, 2], vec![0.0f32, 0.0, -1.0, -1.0, 3.0, 0.0]).unwrap();
        // align_corners=1, linear, zeros: centre = 2.5; corner = 1; outside = 0.
        let r = eval(&gs("linear", "zeros", 1), &[Some(&x), Some(&g)], 1).unwrap();
        close(&r[0], &[2.5, 1.0, 0.0], 1e-6);
        assert_eq!(r[0].shape(), &[1, 1, 1, 3]);
        // align_corners=0: corner (-1,-1) maps to pixel (-0.5,-0.5): 0.25 * 1 = 0.25 with zeros.
        let r = eval(&gs("linear", "zeros", 0), &[Some(&x), Some(&g)], 1).unwrap();
        close(&r[0], &[2.5, 0.25, 0.0], 1e-6);
        // border: corner clamps to pixel (0,0) = 1; x = 3 -> pixel x 3.5 clamps to 1, y 0.5: 3.
        let r = eval(&gs("linear", "border", 0), &[Some(&x), Some(&g)], 1).unwrap();
        close(&r[0], &[2.5, 1.0, 3.0], 1e-6);
        // nearest rounds half to even: centre (0.5, 0.5) -> (0, 0) = 1.
        let r = eval(&gs("nearest", "zeros", 0), &[Some(&x), Some(&g)], 1).unwrap();
        close(&r[0], &[1.0, 1.0, 0.0], 1e-6);
        // reflection: x pixel 3.5 over [-0.5, 1.5] reflects to -0.5 -> taps -1, 0 reflect to 0, 0
        let r = eval(&gs("linear", "reflection", 0), &[Some(&x), Some(&g)], 1).unwrap();
        close(&r[0], &[2.5, 1.0, 2.0], 1e-6);
        // bicubic at the pixel-aligned corner (align 1) reproduces the pixel.
        let r = eval(&gs("cubic", "border", 1), &[Some(&x), Some(&g)], 1).unwrap();
        assert!((r[0].to_f64_vec()[1] - 1.0).abs() < 1e-6);
        assert!(eval(&gs("area", "zeros", 0), &[Some(&x), Some(&g)], 1).is_err());
        let bad = Tensor::from_vec(&[1, 1, 1, 3], vec![0.0f32; 3]).unwrap();
        assert!(eval(&gs("linear", "zeros", 0), &[Some(&x), Some(&bad)], 1).is_err());
    }

    #[test]
    fn reflect_and_cubic_weights() {
        assert_eq!(reflect(-1.0, -0.5, 1.5), 0.0);
        assert_eq!(reflect(2.0, -0.5, 1.5), 1.0);
        assert_eq!(reflect(4.0, -0.5, 1.5), -0.5 + 0.5);
        assert_eq!(reflect(1.0, 0.0, 0.0), 0.0);
        let w = cubic_weights(0.0);
        assert_eq!(w, [0.0, 1.0, 0.0, 0.0]);
        let w = cubic_weights(0.5);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // numpy, Keys A=-0.75 at t=0.5: [-0.09375, 0.59375, 0.59375, -0.09375]
        assert!((w[0] + 0.09375).abs() < 1e-12 && (w[1] - 0.59375).abs() < 1e-12);
    }

    #[test]
    fn affine_grid_identity() {
        let theta = Tensor::from_vec(&[1, 2, 3], vec![1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0]).unwrap();
        let size = Tensor::from_vec(&[4], vec![1i64, 1, 2, 2]).unwrap();
        let r = eval(
            &Op::AffineGrid { align_corners: 1 },
            &[Some(&theta), Some(&size)],
            1,
        )
        .unwrap();
        close(&r[0], &[-1.0, -1.0, 1.0, -1.0, -1.0, 1.0, 1.0, 1.0], 1e-6);
        assert_eq!(r[0].shape(), &[1, 2, 2, 2]);
        let r = eval(
            &Op::AffineGrid { align_corners: 0 },
            &[Some(&theta), Some(&size)],
            1,
        )
        .unwrap();
        close(&r[0], &[-0.5, -0.5, 0.5, -0.5, -0.5, 0.5, 0.5, 0.5], 1e-6);
        // 3-D with a translation in x: (x + 0.25, y, z) over D=1, H=1, W=2.
        let theta3 = Tensor::from_vec(
            &[1, 3, 4],
            vec![
                1.0f32, 0.0, 0.0, 0.25, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0,
            ],
        )
        .unwrap();
        let size3 = Tensor::from_vec(&[5], vec![1i64, 1, 1, 1, 2]).unwrap();
        let r = eval(
            &Op::AffineGrid { align_corners: 0 },
            &[Some(&theta3), Some(&size3)],
            1,
        )
        .unwrap();
        close(&r[0], &[-0.25, 0.0, 0.0, 0.75, 0.0, 0.0], 1e-6);
        assert!(eval(
            &Op::AffineGrid { align_corners: 0 },
            &[Some(&theta3), Some(&size)],
            1
        )
        .is_err());
    }

    #[test]
    fn roi_align_avg_and_max() {
        // X 1x1x2x2 = [[1,2],[3,4]]; ROI covering the image in output_half_pixel mode, 1x1
        // output, sampling ratio 2: samples at (0.5,0.5),(0.5,1.5),(1.5,0.5),(1.5,1.5) pixels.
        let x = Tensor::from_vec(&[1, 1, 2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        let rois = Tensor::from_vec(&[1, 4], vec![0.0f32, 0.0, 2.0, 2.0]).unwrap();
        let bi = Tensor::from_vec(&[1], vec![0i64]).unwrap();
        let op = |mode: &str| Op::RoiAlign {
            coordinate_transformation_mode: "output_half_pixel".into(),
            mode: mode.into(),
            output_height: 1,
            output_width: 1,
            sampling_ratio: 2,
            spatial_scale: 1.0,
        };
        // (0.5,0.5) -> 2.5; (0.5,1.5) -> x clamps at 1: 0.5*2+0.5*4 = 3; (1.5,0.5) -> 3.5;
        // (1.5,1.5) -> 4. Mean 3.25.
        let r = eval(&op("avg"), &[Some(&x), Some(&rois), Some(&bi)], 1).unwrap();
        close(&r[0], &[3.25], 1e-6);
        // max of the largest weighted corner term per sample: 1, 2, 2, 4 -> 4.
        let r = eval(&op("max"), &[Some(&x), Some(&rois), Some(&bi)], 1).unwrap();
        close(&r[0], &[4.0], 1e-6);
        let bad = Tensor::from_vec(&[1], vec![3i64]).unwrap();
        assert!(eval(&op("avg"), &[Some(&x), Some(&rois), Some(&bad)], 1).is_err());
    }

    #[test]
    fn nms_suppresses_by_iou_and_score() {
        // Three boxes: 0 and 1 overlap heavily (IoU 0.81), 2 is apart.
        let boxes = Tensor::from_vec(
            &[1, 3, 4],
            vec![
                0.0f32, 0.0, 1.0, 1.0, 0.0, 0.1, 1.0, 1.1, 0.0, 10.0, 1.0, 11.0,
            ],
        )
        .unwrap();
        let scores = Tensor::from_vec(&[1, 1, 3], vec![0.9f32, 0.95, 0.3]).unwrap();
        let m = Tensor::from_vec(&[1], vec![3i64]).unwrap();
        let iou = Tensor::from_vec(&[1], vec![0.5f32]).unwrap();
        let op = Op::NonMaxSuppression {
            center_point_box: 0,
        };
        let r = eval(&op, &[Some(&boxes), Some(&scores), Some(&m), Some(&iou)], 1).unwrap();
        assert_eq!(
            r[0],
            Tensor::from_vec(&[2, 3], vec![0i64, 0, 1, 0, 0, 2]).unwrap()
        );
        let st = Tensor::from_vec(&[1], vec![0.3f32]).unwrap();
        let r = eval(
            &op,
            &[Some(&boxes), Some(&scores), Some(&m), Some(&iou), Some(&st)],
            1,
        )
        .unwrap();
        assert_eq!(r[0], Tensor::from_vec(&[1, 3], vec![0i64, 0, 1]).unwrap());
        // No max_output_boxes_per_class: nothing selected.
        let r = eval(&op, &[Some(&boxes), Some(&scores)], 1).unwrap();
        assert_eq!(r[0].shape(), &[0, 3]);
        // Center format: same boxes as centres.
        let cb =
            Tensor::from_vec(&[1, 2, 4], vec![0.5f32, 0.5, 1.0, 1.0, 0.5, 0.6, 1.0, 1.0]).unwrap();
        let cs = Tensor::from_vec(&[1, 1, 2], vec![0.5f32, 0.6]).unwrap();
        let op = Op::NonMaxSuppression {
            center_point_box: 1,
        };
        let r = eval(&op, &[Some(&cb), Some(&cs), Some(&m), Some(&iou)], 1).unwrap();
        assert_eq!(r[0], Tensor::from_vec(&[1, 3], vec![0i64, 0, 1]).unwrap());
    }
}
