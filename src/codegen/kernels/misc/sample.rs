//! Sampling at run-time positions (f32 data, f64 arithmetic as the reference evaluator):
//!
//! - GridSample over N-D input (`[N, C, D1..Dk]`, k = 1, 2 or 3 spatial dims), modes
//!   nearest/linear/cubic, padding zeros/border/reflection, both `align_corners`. A work item
//!   is one grid point of one batch: its per-dim taps (index, weight, in range) are computed
//!   once, then every channel sums the tensor product of the taps, as the reference does
//!   (same operation order, so the f64 sums agree up to the final f32 rounding).
//!
//! - AffineGrid 2-D and 3-D with a constant `size`: base coordinates from constant tables,
//!   the affine map in f64 per point.
//!
//! - RoiAlign (avg, max; half_pixel, output_half_pixel) with run-time rois and batch
//!   indices: per `(roi, channel)` plane, the reference's bilinear samples and sums in f64.
//!
//! Grid values that are NaN or infinite follow the reference where it is defined: a position
//! converts to an index with Rust's saturating `as` (NaN to 0, infinities to the i64
//! extremes), and an index out of the input reads nothing (zeros padding) or is clamped
//! (border, reflection). Every load is clamped into the input whatever the index, so no grid
//! value reads out of bounds.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{add_off, buf, c64, for_range, index, sflags, unflatten};
use super::{const_input, in_shape, input, out_shape, strides};
use crate::codegen::kernel::{KernelCx, Lowered, Operand};

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let f32_in = |i: usize| input(g, node, i).map(|v| g.dtype(v)) == Some(DType::F32);
    if n.outputs.first().map(|o| o.ty.dtype) != Some(DType::F32) {
        return Ok(None);
    }
    match &n.op {
        Op::GridSample {
            align_corners,
            mode,
            padding_mode,
        } => {
            if !f32_in(0) || !f32_in(1) {
                return Ok(None);
            }
            let mode = match mode.as_str() {
                "nearest" => Mode::Nearest,
                "linear" | "bilinear" => Mode::Linear,
                "cubic" | "bicubic" => Mode::Cubic,
                _ => return Ok(None),
            };
            let pad = match padding_mode.as_str() {
                "zeros" => Pad::Zeros,
                "border" => Pad::Border,
                "reflection" => Pad::Reflection,
                _ => return Ok(None),
            };
            let (Some(xs), Some(gs), Some(ys)) = (
                in_shape(g, node, 0),
                in_shape(g, node, 1),
                out_shape(g, node, 0),
            ) else {
                return Ok(None);
            };
            if xs.len() < 3 || xs.len() > 5 {
                return Ok(None);
            }
            let k = xs.len() - 2;
            if gs.len() != k + 2 || gs[0] != xs[0] || gs[k + 1] != k {
                return Ok(None);
            }
            let mut want = vec![xs[0], xs[1]];
            want.extend(&gs[1..=k]);
            if ys != want {
                return Ok(None);
            }
            if ys.contains(&0) {
                return Ok(Some(Lowered::default()));
            }
            // The reference cannot clamp into an empty dim.
            if xs[2..].contains(&0) {
                return Ok(None);
            }
            let s = GridSample {
                xs,
                points: gs[1..=k].iter().product(),
                mode,
                pad,
                align: *align_corners != 0,
            };
            grid_sample(cx, &s).map(Some)
        }
        Op::AffineGrid { align_corners } => {
            if !f32_in(0) {
                return Ok(None);
            }
            let (Some(ts), Some(ys), Some(size)) = (
                in_shape(g, node, 0),
                out_shape(g, node, 0),
                const_input(g, node, 1),
            ) else {
                return Ok(None);
            };
            let Ok(size) = size.to_i64_vec() else {
                return Ok(None);
            };
            let Some(size) = size
                .iter()
                .map(|&v| usize::try_from(v).ok())
                .collect::<Option<Vec<usize>>>()
            else {
                return Ok(None);
            };
            let k = match size.len() {
                4 => 2,
                5 => 3,
                _ => return Ok(None),
            };
            let mut want = vec![size[0]];
            want.extend(&size[2..]);
            want.push(k);
            if ts != [size[0], k, k + 1] || ys != want {
                return Ok(None);
            }
            if ys.contains(&0) {
                return Ok(Some(Lowered::default()));
            }
            affine_grid(cx, size[0], &size[2..], *align_corners != 0).map(Some)
        }
        Op::RoiAlign {
            coordinate_transformation_mode,
            mode,
            output_height,
            output_width,
            sampling_ratio,
            spatial_scale,
        } => {
            let idx_i64 = input(g, node, 2).map(|v| g.dtype(v)) == Some(DType::I64);
            if !f32_in(0) || !f32_in(1) || !idx_i64 {
                return Ok(None);
            }
            let half_pixel = match coordinate_transformation_mode.as_str() {
                "half_pixel" => true,
                "output_half_pixel" => false,
                _ => return Ok(None),
            };
            let max = match mode.as_str() {
                "avg" => false,
                "max" => true,
                _ => return Ok(None),
            };
            let (Ok(oh), Ok(ow), Ok(sr)) = (
                usize::try_from(*output_height),
                usize::try_from(*output_width),
                usize::try_from(*sampling_ratio),
            ) else {
                return Ok(None);
            };
            let (Some(xs), Some(rs), Some(bs), Some(ys)) = (
                in_shape(g, node, 0),
                in_shape(g, node, 1),
                in_shape(g, node, 2),
                out_shape(g, node, 0),
            ) else {
                return Ok(None);
            };
            if xs.len() != 4 || bs.len() != 1 || rs != [bs[0], 4] || oh == 0 || ow == 0 {
                return Ok(None);
            }
            if ys != [bs[0], xs[1], oh, ow] {
                return Ok(None);
            }
            if ys.contains(&0) {
                return Ok(Some(Lowered::default()));
            }
            // The reference errors on any roi of an empty batch or image.
            if xs[0] == 0 || xs[2] == 0 || xs[3] == 0 {
                return Ok(None);
            }
            let a = RoiAlign {
                xs,
                rois: bs[0],
                oh,
                ow,
                sampling_ratio: sr,
                scale: *spatial_scale as f64,
                half_pixel,
                max,
            };
            roi_align(cx, &a).map(Some)
        }
        _ => Ok(None),
    }
}

struct RoiAlign {
    /// `[N, C, H, W]`.
    xs: Vec<usize>,
    rois: usize,
    oh: usize,
    ow: usize,
    sampling_ratio: usize,
    scale: f64,
    half_pixel: bool,
    max: bool,
}

/// `f64::max(a, b)`: the other operand when one is NaN.
fn fmax_num(b: &mut FunctionBuilder, a: Value, c: Value) -> Value {
    let lt = b.ins().fcmp(FloatCC::LessThan, a, c);
    let m = b.ins().select(lt, c, a);
    let nan = b.ins().fcmp(FloatCC::Unordered, a, a);
    b.ins().select(nan, c, m)
}

/// `f64::max(x, 0.0)` (NaN gives 0).
fn max0(b: &mut FunctionBuilder, x: Value) -> Value {
    let z = f64c(b, 0.0);
    let gt = b.ins().fcmp(FloatCC::GreaterThan, x, z);
    b.ins().select(gt, x, z)
}

/// RoiAlign: a work item is one `(roi, channel)` plane of `oh x ow` bins, each the average
/// (or max) over a `grid_h x grid_w` grid of bilinear samples, in f64 in the reference's
/// order. Batch indices are clamped into `0..N` (the reference rejects others); sample grids
/// the reference rejects as too large (`grid_h * grid_w * oh * ow` above its element limit,
/// infinite rois) are empty here, giving 0.
fn roi_align(cx: &mut KernelCx, a: &RoiAlign) -> Result<Lowered, String> {
    let (n, ch, h, w) = (a.xs[0], a.xs[1], a.xs[2], a.xs[3]);
    let (oh, ow) = (a.oh, a.ow);
    let limit = graphc_passes::eval::util::MAX_ELEMENTS as i64;
    let func = cx.define_kernel("roi_align", |b, p| {
        let x = buf(b, p, 0);
        let rois = buf(b, p, 1);
        let bidx = buf(b, p, 2);
        let y = buf(b, p, 3);
        let acc = b.declare_var(types::F64);
        for_range(b, p.begin, p.end, |b, item| {
            let chv = c64(b, ch as i64);
            let r = b.ins().udiv(item, chv);
            let c = b.ins().urem(item, chv);
            let bp = index(b, bidx, r, 8);
            let bi = b.ins().load(types::I64, sflags(), bp, 0);
            let bi = iclamp(b, bi, n as i64 - 1);
            let nc = b.ins().imul_imm_s(bi, ch as i64);
            let plane = b.ins().iadd(nc, c);
            let base = index(b, x, plane, (h * w * 4) as i64);
            let rp = index(b, rois, r, 16);
            let sc = f64c(b, a.scale);
            let off = f64c(b, if a.half_pixel { 0.5 } else { 0.0 });
            let roi: Vec<Value> = (0..4)
                .map(|j| {
                    let v = b.ins().load(types::F32, sflags(), rp, 4 * j);
                    let v = b.ins().fpromote(types::F64, v);
                    let v = b.ins().fmul(v, sc);
                    b.ins().fsub(v, off)
                })
                .collect();
            let (x0, y0) = (roi[0], roi[1]);
            let mut rw = b.ins().fsub(roi[2], x0);
            let mut rh = b.ins().fsub(roi[3], y0);
            if !a.half_pixel {
                let one = f64c(b, 1.0);
                rw = fmax_num(b, rw, one);
                rh = fmax_num(b, rh, one);
            }
            let ohf = f64c(b, oh as f64);
            let owf = f64c(b, ow as f64);
            let bin_h = b.ins().fdiv(rh, ohf);
            let bin_w = b.ins().fdiv(rw, owf);
            let grid = |b: &mut FunctionBuilder, bin: Value| -> Value {
                if a.sampling_ratio > 0 {
                    return c64(b, a.sampling_ratio.min(limit as usize) as i64);
                }
                let q = b.ins().ceil(bin);
                let q = max0(b, q);
                let g = b.ins().fcvt_to_sint_sat(types::I64, q);
                let l = c64(b, limit);
                b.ins().smin(g, l)
            };
            let gh = grid(b, bin_h);
            let gw = grid(b, bin_w);
            // Empty the grid when the reference would reject its size.
            let ghw = b.ins().imul(gh, gw);
            let big = b
                .ins()
                .icmp_imm_s(IntCC::SignedGreaterThan, ghw, limit / (oh * ow) as i64);
            let z = c64(b, 0);
            let gh = b.ins().select(big, z, gh);
            let gw = b.ins().select(big, z, gw);
            let ghw = b.ins().select(big, z, ghw);
            let empty = b.ins().icmp_imm_s(IntCC::Equal, ghw, 0);
            let one_i = c64(b, 1);
            let cnt = b.ins().smax(ghw, one_i);
            let count = b.ins().fcvt_from_sint(types::F64, cnt);
            let ghf = b.ins().fcvt_from_sint(types::F64, gh);
            let gwf = b.ins().fcvt_from_sint(types::F64, gw);
            let out_plane = index(b, y, item, (oh * ow * 4) as i64);
            let (hf, wf) = (h as f64, w as f64);
            let zero = c64(b, 0);
            let ohv = c64(b, oh as i64);
            for_range(b, zero, ohv, |b, ph| {
                let owv = c64(b, ow as i64);
                for_range(b, zero, owv, |b, pw| {
                    let init = f64c(b, if a.max { f64::NEG_INFINITY } else { -0.0 });
                    b.def_var(acc, init);
                    let phf = b.ins().fcvt_from_sint(types::F64, ph);
                    let pwf = b.ins().fcvt_from_sint(types::F64, pw);
                    let t = b.ins().fmul(phf, bin_h);
                    let ybase = b.ins().fadd(y0, t);
                    let t = b.ins().fmul(pwf, bin_w);
                    let xbase = b.ins().fadd(x0, t);
                    for_range(b, zero, gh, |b, iy| {
                        // y = y0 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                        let f = b.ins().fcvt_from_sint(types::F64, iy);
                        let half = f64c(b, 0.5);
                        let f = b.ins().fadd(f, half);
                        let f = b.ins().fmul(f, bin_h);
                        let f = b.ins().fdiv(f, ghf);
                        let yy = b.ins().fadd(ybase, f);
                        for_range(b, zero, gw, |b, ix| {
                            let f = b.ins().fcvt_from_sint(types::F64, ix);
                            let f = b.ins().fadd(f, half);
                            let f = b.ins().fmul(f, bin_w);
                            let f = b.ins().fdiv(f, gwf);
                            let xx = b.ins().fadd(xbase, f);
                            // Outside [-1, H] x [-1, W]: four zero terms.
                            let m1 = f64c(b, -1.0);
                            let c1 = b.ins().fcmp(FloatCC::LessThan, yy, m1);
                            let hv = f64c(b, hf);
                            let c2 = b.ins().fcmp(FloatCC::GreaterThan, yy, hv);
                            let c3 = b.ins().fcmp(FloatCC::LessThan, xx, m1);
                            let wv = f64c(b, wf);
                            let c4 = b.ins().fcmp(FloatCC::GreaterThan, xx, wv);
                            let o = b.ins().bor(c1, c2);
                            let o = b.ins().bor(o, c3);
                            let outside = b.ins().bor(o, c4);
                            // One axis: (low index, high index, low weight, high weight).
                            let axis = |b: &mut FunctionBuilder, v: Value, len: usize| {
                                let v = max0(b, v);
                                let lo = b.ins().fcvt_to_sint_sat(types::I64, v);
                                let lo = iclamp(b, lo, len as i64 - 1);
                                let at_end = b.ins().icmp_imm_s(
                                    IntCC::SignedGreaterThanOrEqual,
                                    lo,
                                    len as i64 - 1,
                                );
                                let hi = b.ins().iadd_imm_s(lo, 1);
                                let hi = b.ins().select(at_end, lo, hi);
                                let lof = b.ins().fcvt_from_sint(types::F64, lo);
                                let v = b.ins().select(at_end, lof, v);
                                let l = b.ins().fsub(v, lof);
                                let one = f64c(b, 1.0);
                                let hgt = b.ins().fsub(one, l);
                                (lo, hi, hgt, l)
                            };
                            let (yl, yh, hy, ly) = axis(b, yy, h);
                            let (xl, xh, hx, lx) = axis(b, xx, w);
                            let at = |b: &mut FunctionBuilder, r: Value, c: Value| {
                                let o = b.ins().imul_imm_s(r, w as i64);
                                let o = b.ins().iadd(o, c);
                                let ad = index(b, base, o, 4);
                                let v = b.ins().load(types::F32, sflags(), ad, 0);
                                b.ins().fpromote(types::F64, v)
                            };
                            let fz = f64c(b, 0.0);
                            let terms: Vec<Value> = [
                                (hy, hx, yl, xl),
                                (hy, lx, yl, xh),
                                (ly, hx, yh, xl),
                                (ly, lx, yh, xh),
                            ]
                            .into_iter()
                            .map(|(wy, wx, r, c)| {
                                let wt = b.ins().fmul(wy, wx);
                                let v = at(b, r, c);
                                let t = b.ins().fmul(wt, v);
                                b.ins().select(outside, fz, t)
                            })
                            .collect();
                            let cur = b.use_var(acc);
                            let next = if a.max {
                                let mut v = f64c(b, f64::NEG_INFINITY);
                                for &t in &terms {
                                    v = fmax_num(b, v, t);
                                }
                                fmax_num(b, cur, v)
                            } else {
                                let mut v = f64c(b, -0.0);
                                for &t in &terms {
                                    v = b.ins().fadd(v, t);
                                }
                                b.ins().fadd(cur, v)
                            };
                            b.def_var(acc, next);
                        });
                    });
                    let v = b.use_var(acc);
                    let v = if a.max { v } else { b.ins().fdiv(v, count) };
                    let fz = f64c(b, 0.0);
                    let v = b.ins().select(empty, fz, v);
                    let v = b.ins().fdemote(types::F32, v);
                    let o = b.ins().imul_imm_s(ph, ow as i64);
                    let o = b.ins().iadd(o, pw);
                    let d = index(b, out_plane, o, 4);
                    b.ins().store(sflags(), v, d, 0);
                });
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Lowered::one(
        func,
        vec![
            Operand::Input(0),
            Operand::Input(1),
            Operand::Input(2),
            Operand::Output(0),
        ],
        ((a.rois * ch) as u64, 1),
        "roi_align",
        0,
    ))
}

/// AffineGrid: a work item is one point `(n, p)` of the `spatial` grid; its base coordinates
/// `(x, y[, z], 1)` come from per-dim constant tables (computed as the reference does) and
/// each output `r` is `sum_j theta[n, r, j] * coord[j]` in f64, rounded once.
fn affine_grid(
    cx: &mut KernelCx,
    nb: usize,
    spatial: &[usize],
    align: bool,
) -> Result<Lowered, String> {
    let k = spatial.len();
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
    let mut table: Vec<u8> = Vec::new();
    let mut starts = Vec::new();
    for &len in spatial {
        starts.push(table.len());
        for i in 0..len {
            table.extend(base(i, len).to_le_bytes());
        }
    }
    let tab = cx.add_const("affine_grid_base", table)?;
    let points: usize = spatial.iter().product();
    let sp = spatial.to_vec();
    let func = cx.define_kernel("affine_grid", |b, p| {
        let th = buf(b, p, 0);
        let t = buf(b, p, 1);
        let y = buf(b, p, 2);
        for_range(b, p.begin, p.end, |b, item| {
            let pv = c64(b, points as i64);
            let bi = b.ins().udiv(item, pv);
            let pi = b.ins().urem(item, pv);
            let idx = unflatten(b, pi, &sp);
            // coord[k - 1 - i] is the base coordinate along spatial dim i; coord[k] = 1.
            let mut coord = vec![None; k + 1];
            for i in 0..k {
                let ti = add_off(b, t, starts[i] as i64);
                let a = index(b, ti, idx[i], 8);
                coord[k - 1 - i] = Some(b.ins().load(types::F64, sflags(), a, 0));
            }
            coord[k] = Some(f64c(b, 1.0));
            let tb = index(b, th, bi, (k * (k + 1) * 4) as i64);
            let ob = index(b, y, item, (k * 4) as i64);
            for r in 0..k {
                let mut acc = f64c(b, -0.0);
                for (j, c) in coord.iter().enumerate() {
                    let v = b
                        .ins()
                        .load(types::F32, sflags(), tb, (4 * (r * (k + 1) + j)) as i32);
                    let v = b.ins().fpromote(types::F64, v);
                    let m = b.ins().fmul(v, c.expect("every coordinate set"));
                    acc = b.ins().fadd(acc, m);
                }
                let v = b.ins().fdemote(types::F32, acc);
                b.ins().store(sflags(), v, ob, (4 * r) as i32);
            }
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Const(tab), Operand::Output(0)],
        ((nb * points) as u64, 256),
        "affine_grid",
        0,
    ))
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Pad {
    Zeros,
    Border,
    Reflection,
}

struct GridSample {
    /// `[N, C, D1..Dk]`.
    xs: Vec<usize>,
    /// Grid points per batch.
    points: usize,
    mode: Mode,
    pad: Pad,
    align: bool,
}

fn f64c(b: &mut FunctionBuilder, v: f64) -> Value {
    b.ins().f64const(v)
}

/// `x < a ? a : x` then `x > c ? c : x` on f64 (NaN stays NaN, as `f64::clamp`).
fn fclamp(b: &mut FunctionBuilder, x: Value, lo: f64, hi: f64) -> Value {
    let l = f64c(b, lo);
    let h = f64c(b, hi);
    let below = b.ins().fcmp(FloatCC::LessThan, x, l);
    let x = b.ins().select(below, l, x);
    let above = b.ins().fcmp(FloatCC::GreaterThan, x, h);
    b.ins().select(above, h, x)
}

/// `i` clamped into `0..=last` (i64).
fn iclamp(b: &mut FunctionBuilder, i: Value, last: i64) -> Value {
    let z = c64(b, 0);
    let l = c64(b, last);
    let i = b.ins().smax(i, z);
    b.ins().smin(i, l)
}

/// The reference's `reflect(x, lo, hi)`: `x` bounced off the borders into `[lo, hi]`.
fn reflect(b: &mut FunctionBuilder, x: Value, lo: f64, hi: f64) -> Value {
    let range = hi - lo;
    if range <= 0.0 {
        return f64c(b, lo);
    }
    let l = f64c(b, lo);
    let h = f64c(b, hi);
    let below = b.ins().fcmp(FloatCC::LessThan, x, l);
    let above = b.ins().fcmp(FloatCC::GreaterThan, x, h);
    let d_lo = b.ins().fsub(l, x);
    let d_hi = b.ins().fsub(x, h);
    let dx = b.ins().select(below, d_lo, d_hi);
    let rg = f64c(b, range);
    let q = b.ins().fdiv(dx, rg);
    let nf = b.ins().floor(q);
    let t = b.ins().fmul(nf, rg);
    let r = b.ins().fsub(dx, t);
    // `n as i64 % 2 == 0` (n >= 0 or NaN; saturating like `as`).
    let ni = b.ins().fcvt_to_sint_sat(types::I64, nf);
    let bit = b.ins().band_imm_s(ni, 1);
    let even = b.ins().icmp_imm_s(IntCC::Equal, bit, 0);
    let same = b.ins().icmp(IntCC::Equal, even, below);
    let up = b.ins().fadd(l, r);
    let down = b.ins().fsub(h, r);
    let res = b.ins().select(same, up, down);
    let out = b.ins().bor(below, above);
    b.ins().select(out, res, x)
}

/// One tap along one dim: the index to load (always inside the dim), whether the reference
/// reads it (`None`: always), and its weight.
struct Tap {
    idx: Value,
    valid: Option<Value>,
    w: Value,
}

/// The reference's cubic weights (A = -0.75) of the taps at -1, 0, 1, 2 for fraction `t`.
fn cubic_weights(b: &mut FunctionBuilder, t: Value) -> [Value; 4] {
    let a = -0.75f64;
    let far = |b: &mut FunctionBuilder, x: Value| {
        // ((a x - 5a) x + 8a) x - 4a
        let ca = f64c(b, a);
        let v = b.ins().fmul(ca, x);
        let c5 = f64c(b, 5.0 * a);
        let v = b.ins().fsub(v, c5);
        let v = b.ins().fmul(v, x);
        let c8 = f64c(b, 8.0 * a);
        let v = b.ins().fadd(v, c8);
        let v = b.ins().fmul(v, x);
        let c4 = f64c(b, 4.0 * a);
        b.ins().fsub(v, c4)
    };
    let near = |b: &mut FunctionBuilder, x: Value| {
        // ((a + 2) x - (a + 3)) x x + 1
        let c2 = f64c(b, a + 2.0);
        let v = b.ins().fmul(c2, x);
        let c3 = f64c(b, a + 3.0);
        let v = b.ins().fsub(v, c3);
        let v = b.ins().fmul(v, x);
        let v = b.ins().fmul(v, x);
        let one = f64c(b, 1.0);
        b.ins().fadd(v, one)
    };
    let one = f64c(b, 1.0);
    let two = f64c(b, 2.0);
    let t1 = b.ins().fadd(t, one);
    let u = b.ins().fsub(one, t);
    let v = b.ins().fsub(two, t);
    [far(b, t1), near(b, t), near(b, u), far(b, v)]
}

/// The taps of grid coordinate `v` (f64) along a dim of `d` elements.
fn dim_taps(b: &mut FunctionBuilder, s: &GridSample, v: Value, d: usize) -> Vec<Tap> {
    let df = d as f64;
    let (lo, hi) = if s.align {
        (0.0, df - 1.0)
    } else {
        (-0.5, df - 0.5)
    };
    let one = f64c(b, 1.0);
    let two = f64c(b, 2.0);
    let vp = b.ins().fadd(v, one);
    let mut c = if s.align {
        let t = b.ins().fdiv(vp, two);
        let dm = f64c(b, df - 1.0);
        b.ins().fmul(t, dm)
    } else {
        let dd = f64c(b, df);
        let t = b.ins().fmul(vp, dd);
        let t = b.ins().fsub(t, one);
        b.ins().fdiv(t, two)
    };
    if s.mode == Mode::Nearest {
        c = b.ins().nearest(c);
    }
    // Out of [lo, hi]: border clamps into [0, d - 1], reflection bounces, zeros keeps it.
    match s.pad {
        Pad::Zeros => {}
        Pad::Border => {
            let l = f64c(b, lo);
            let h = f64c(b, hi);
            let below = b.ins().fcmp(FloatCC::LessThan, c, l);
            let above = b.ins().fcmp(FloatCC::GreaterThan, c, h);
            let out = b.ins().bor(below, above);
            let cl = fclamp(b, c, 0.0, df - 1.0);
            c = b.ins().select(out, cl, c);
        }
        Pad::Reflection => c = reflect(b, c, lo, hi),
    }
    let last = d as i64 - 1;
    let fetch = |b: &mut FunctionBuilder, i: Value| -> (Value, Option<Value>) {
        match s.pad {
            Pad::Zeros => {
                let ge = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, i, 0);
                let lt = b.ins().icmp_imm_s(IntCC::SignedLessThan, i, d as i64);
                let valid = b.ins().band(ge, lt);
                (iclamp(b, i, last), Some(valid))
            }
            Pad::Border => (iclamp(b, i, last), None),
            Pad::Reflection => {
                let f = b.ins().fcvt_from_sint(types::F64, i);
                let r = reflect(b, f, lo, hi);
                let ri = b.ins().fcvt_to_sint_sat(types::I64, r);
                (iclamp(b, ri, last), None)
            }
        }
    };
    let tap = |b: &mut FunctionBuilder, i: Value, w: Value| {
        let (idx, valid) = fetch(b, i);
        Tap { idx, valid, w }
    };
    match s.mode {
        Mode::Nearest => {
            let i = b.ins().fcvt_to_sint_sat(types::I64, c);
            vec![tap(b, i, one)]
        }
        Mode::Linear => {
            let f = b.ins().floor(c);
            let t = b.ins().fsub(c, f);
            let i0 = b.ins().fcvt_to_sint_sat(types::I64, f);
            let i1 = b.ins().iadd_imm_s(i0, 1);
            let w0 = b.ins().fsub(one, t);
            vec![tap(b, i0, w0), tap(b, i1, t)]
        }
        Mode::Cubic => {
            let f = b.ins().floor(c);
            let t = b.ins().fsub(c, f);
            let fi = b.ins().fcvt_to_sint_sat(types::I64, f);
            let ws = cubic_weights(b, t);
            (0..4)
                .map(|j| {
                    let i = b.ins().iadd_imm_s(fi, j - 1);
                    tap(b, i, ws[j as usize])
                })
                .collect()
        }
    }
}

/// GridSample: a work item is one grid point `(n, p)`; per channel, the sum over the tensor
/// product of the per-dim taps (dim 0 outermost) of `w * x`, taps the reference skips
/// contributing nothing.
fn grid_sample(cx: &mut KernelCx, s: &GridSample) -> Result<Lowered, String> {
    let k = s.xs.len() - 2;
    let (nb, ch) = (s.xs[0], s.xs[1]);
    let dims = s.xs[2..].to_vec();
    let plane: usize = dims.iter().product();
    let dst = strides(&dims);
    let points = s.points;
    let func = cx.define_kernel("grid_sample", |b, p| {
        let x = buf(b, p, 0);
        let grid = buf(b, p, 1);
        let y = buf(b, p, 2);
        for_range(b, p.begin, p.end, |b, item| {
            let pv = c64(b, points as i64);
            let bi = b.ins().udiv(item, pv);
            let pi = b.ins().urem(item, pv);
            let gp = index(b, grid, item, (k * 4) as i64);
            let taps: Vec<Vec<Tap>> = (0..k)
                .map(|i| {
                    // The grid lists coordinates innermost dim first (x, y, z).
                    let v = b
                        .ins()
                        .load(types::F32, sflags(), gp, (4 * (k - 1 - i)) as i32);
                    let v = b.ins().fpromote(types::F64, v);
                    dim_taps(b, s, v, dims[i])
                })
                .collect();
            // The tensor product: (element offset, validity, weight) per combination.
            let mut combos: Vec<(Value, Option<Value>, Option<Value>)> = Vec::new();
            let z = c64(b, 0);
            combos.push((z, None, None));
            for (i, ti) in taps.iter().enumerate() {
                let mut next = Vec::with_capacity(combos.len() * ti.len());
                for &(off, valid, w) in &combos {
                    for t in ti {
                        let o = b.ins().imul_imm_s(t.idx, dst[i] as i64);
                        let o = b.ins().iadd(off, o);
                        let v = match (valid, t.valid) {
                            (Some(a), Some(c)) => Some(b.ins().band(a, c)),
                            (a, c) => a.or(c),
                        };
                        let w = match w {
                            Some(w) => b.ins().fmul(w, t.w),
                            None => t.w,
                        };
                        next.push((o, v, Some(w)));
                    }
                }
                combos = next;
            }
            let chv = c64(b, ch as i64);
            let plane0 = b.ins().imul(bi, chv);
            let zero = c64(b, 0);
            for_range(b, zero, chv, |b, c| {
                let pl = b.ins().iadd(plane0, c);
                let base = index(b, x, pl, (plane * 4) as i64);
                let mut acc = f64c(b, -0.0);
                let fz = f64c(b, 0.0);
                for &(off, valid, w) in &combos {
                    let a = index(b, base, off, 4);
                    let xv = b.ins().load(types::F32, sflags(), a, 0);
                    let xv = b.ins().fpromote(types::F64, xv);
                    let w = w.expect("k >= 1");
                    let mut t = b.ins().fmul(w, xv);
                    if let Some(v) = valid {
                        t = b.ins().select(v, t, fz);
                    }
                    acc = b.ins().fadd(acc, t);
                }
                let r = b.ins().fdemote(types::F32, acc);
                let row = b.ins().imul_imm_s(pl, points as i64);
                let o = b.ins().iadd(row, pi);
                let d = index(b, y, o, 4);
                b.ins().store(sflags(), r, d, 0);
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Input(1), Operand::Output(0)],
        ((nb * points) as u64, (256 / ch.max(1)).max(1) as u64),
        "grid_sample",
        0,
    ))
}
