//! Resize with constant scales or sizes, its sampling positions computed here in f64 exactly
//! as the reference evaluator does and baked into constant tables:
//!
//! - `nearest` (every rank, every element type the reference round-trips exactly): a gather;
//!   a work item is one output row (all dims but the last), whose source row is the sum of one
//!   table entry per dim; the last dim is copied through a table of byte offsets (or as one
//!   contiguous run when it is not resized).
//! - `linear` on 4-D NCHW input resizing H and W only (f32): a work item is one output row;
//!   two source rows blended with per-row weights, two columns with per-column weights.
//!
//! Coordinate modes: half_pixel, half_pixel_symmetric, pytorch_half_pixel, align_corners,
//! asymmetric; nearest modes: round_prefer_floor, round_prefer_ceil, floor, ceil. Declined:
//! cubic, antialias, tf_crop_and_resize, exclude_outside with linear, keep_aspect_ratio_policy
//! other than stretch, run-time scales or sizes.

use cranelift_codegen::ir::{types, InstBuilder, Value};
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{
    add_off, buf, c64, copy_bytes, for_n, for_range, index, int_type, sflags, unflatten,
};
use super::{const_input, in_shape, input, norm_axis, out_shape, strides};
use crate::codegen::kernel::{KernelCx, Launch, Lowered, Operand};

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let Op::Resize {
        antialias,
        axes,
        coordinate_transformation_mode: coord,
        exclude_outside,
        keep_aspect_ratio_policy: keep,
        mode,
        nearest_mode,
        ..
    } = &n.op
    else {
        return Ok(None);
    };
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    if n.outputs.first().map(|o| o.ty.dtype) != Some(dt) || *antialias != 0 {
        return Ok(None);
    }
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    let r = xs.len();
    if ys.len() != r || r == 0 {
        return Ok(None);
    }
    let axes: Vec<usize> = match axes {
        Some(a) => match a
            .iter()
            .map(|&v| norm_axis(v, r))
            .collect::<Option<Vec<_>>>()
        {
            Some(v) => v,
            None => return Ok(None),
        },
        None => (0..r).collect(),
    };
    let Some((scales, out)) = scales_and_sizes(g, node, &xs, &axes, keep) else {
        return Ok(None);
    };
    if out != ys {
        return Ok(None);
    }
    if !matches!(
        coord.as_str(),
        "half_pixel"
            | "half_pixel_symmetric"
            | "pytorch_half_pixel"
            | "align_corners"
            | "asymmetric"
    ) {
        return Ok(None);
    }
    // The resized dims (the reference skips the others).
    let changed: Vec<bool> = (0..r)
        .map(|a| !(scales[a] == 1.0 && out[a] == xs[a]))
        .collect();
    if (0..r).any(|a| changed[a] && xs[a] == 0) {
        return Ok(None);
    }
    if out.contains(&0) {
        return Ok(Some(Lowered::default()));
    }
    match mode.as_str() {
        "nearest" => {
            if !matches!(
                nearest_mode.as_str(),
                "round_prefer_floor" | "round_prefer_ceil" | "floor" | "ceil"
            ) {
                return Ok(None);
            }
            let exact = matches!(
                dt,
                DType::F32
                    | DType::F64
                    | DType::F16
                    | DType::I8
                    | DType::U8
                    | DType::I16
                    | DType::U16
                    | DType::I32
                    | DType::U32
            );
            if !exact {
                return Ok(None);
            }
            let tabs: Vec<Vec<usize>> = (0..r)
                .map(|a| {
                    if changed[a] {
                        let t = taps(xs[a], out[a], scales[a], coord, nearest_mode, false);
                        t.into_iter().map(|v| v[0].0).collect()
                    } else {
                        (0..xs[a]).collect()
                    }
                })
                .collect();
            nearest(cx, &xs, &out, &tabs, !changed[r - 1], dt.size()).map(Some)
        }
        "linear" => {
            if dt != DType::F32 || r != 4 || changed[0] || changed[1] || *exclude_outside != 0 {
                return Ok(None);
            }
            let mut pairs = Vec::new();
            for a in [2, 3] {
                let t = if changed[a] {
                    taps(xs[a], out[a], scales[a], coord, nearest_mode, true)
                } else {
                    (0..xs[a]).map(|i| vec![(i, 1.0)]).collect()
                };
                // Exactly two taps each: a single tap (weight w) splits into two halves at the
                // same index, which sum back to w * x exactly.
                let mut p = Vec::with_capacity(t.len());
                for v in t {
                    p.push(match v.as_slice() {
                        [(i, w)] => (*i, *i, (w / 2.0) as f32, (w / 2.0) as f32),
                        [(i, w), (j, u)] => (*i, *j, *w as f32, *u as f32),
                        _ => return Ok(None),
                    });
                }
                pairs.push(p);
            }
            bilinear(cx, &xs, &out, &pairs[0], &pairs[1]).map(Some)
        }
        _ => Ok(None),
    }
}

/// Per-dim scales and the output shape, as the reference computes them (constant inputs only).
fn scales_and_sizes(
    g: &Graph,
    node: NodeId,
    xs: &[usize],
    axes: &[usize],
    keep: &str,
) -> Option<(Vec<f64>, Vec<usize>)> {
    let r = xs.len();
    // An input slot that is present and non-empty must be constant.
    let present = |i: usize| -> Option<Option<&graphc_passes::ir::Tensor>> {
        match input(g, node, i) {
            None => Some(None),
            Some(_) => {
                let t = const_input(g, node, i)?;
                Some(if t.is_empty() { None } else { Some(t) })
            }
        }
    };
    // roi only matters for tf_crop_and_resize (declined): ignore its value, but it must not
    // be a run-time tensor we would have to read.
    let _ = present(1)?;
    let mut scales = vec![1.0f64; r];
    let mut out = xs.to_vec();
    if let Some(sizes) = present(3)? {
        if keep != "stretch" {
            return None;
        }
        let sizes = sizes.to_i64_vec().ok()?;
        if sizes.len() != axes.len() {
            return None;
        }
        for (&a, &s) in axes.iter().zip(&sizes) {
            let s = usize::try_from(s).ok()?;
            scales[a] = s as f64 / xs[a] as f64;
            out[a] = s;
        }
    } else if let Some(s) = present(2)? {
        let s = s.to_f64_vec();
        if s.len() != axes.len() {
            return None;
        }
        for (&a, &v) in axes.iter().zip(&s) {
            if !(v > 0.0 && v.is_finite()) {
                return None;
            }
            scales[a] = v;
            let o = v * xs[a] as f64;
            if o >= u32::MAX as f64 {
                return None;
            }
            out[a] = o as usize;
        }
    } else {
        return None;
    }
    Some((scales, out))
}

/// The reference's source coordinate of output index `o`.
fn source_coord(o: usize, len_in: usize, len_out: usize, scale: f64, mode: &str) -> f64 {
    let o = o as f64;
    let (n_in, width) = (len_in as f64, scale * len_in as f64);
    match mode {
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
        _ => o / scale, // asymmetric
    }
}

/// Per output index of one axis, its (clamped input index, weight) taps: one for nearest,
/// the non-zero ones of the two linear taps for linear.
fn taps(
    len_in: usize,
    len_out: usize,
    scale: f64,
    coord: &str,
    nearest_mode: &str,
    linear: bool,
) -> Vec<Vec<(usize, f64)>> {
    let last = len_in as isize - 1;
    let clamp = |i: isize| i.clamp(0, last) as usize;
    (0..len_out)
        .map(|o| {
            let x = source_coord(o, len_in, len_out, scale, coord);
            let integral = x.fract() == 0.0;
            let x0 = if integral {
                x as isize - 1
            } else {
                x.floor() as isize
            };
            let ratio = x - x0 as f64;
            if linear {
                [(x0, 1.0 - ratio), (x0 + 1, 1.0 - (1.0 - ratio).abs())]
                    .into_iter()
                    .map(|(i, w)| (i, f64::max(w, 0.0)))
                    .filter(|&(_, w)| w != 0.0)
                    .map(|(i, w)| (clamp(i), w))
                    .collect()
            } else {
                let up = match nearest_mode {
                    _ if integral => true,
                    "round_prefer_floor" => ratio > 0.5,
                    "round_prefer_ceil" => ratio >= 0.5,
                    "floor" => false,
                    _ => true, // ceil
                };
                vec![(clamp(x0 + up as isize), 1.0)]
            }
        })
        .collect()
}

/// Nearest resize: `tabs[k][o]` is the input index of output index `o` along dim `k`.
/// `last_same`: the last dim is not resized (rows are contiguous runs).
fn nearest(
    cx: &mut KernelCx,
    xs: &[usize],
    out: &[usize],
    tabs: &[Vec<usize>],
    last_same: bool,
    es: usize,
) -> Result<Lowered, String> {
    table_gather(cx, "resize_nearest", xs, out, tabs, last_same, es)
}

/// A gather whose output index `(o_0, ..., o_r-1)` reads input `(tabs[0][o_0], ...)`: nearest
/// Resize and the edge/reflect/wrap Pads. `last_same`: `tabs[r-1]` is the identity (rows are
/// contiguous runs). Rank at least 1, no 0-sized output dim.
pub(super) fn table_gather(
    cx: &mut KernelCx,
    name: &str,
    xs: &[usize],
    out: &[usize],
    tabs: &[Vec<usize>],
    last_same: bool,
    es: usize,
) -> Result<Lowered, String> {
    let r = xs.len();
    let ety = int_type(es).ok_or("element size")?;
    let xst = strides(xs);
    // One i64 table: per dim, byte offsets of the input index of each output index.
    let mut table: Vec<i64> = Vec::new();
    let mut starts = Vec::new();
    for k in 0..r {
        starts.push(table.len());
        table.extend(tabs[k].iter().map(|&i| (i * xst[k] * es) as i64));
    }
    let bytes = table.iter().flat_map(|v| v.to_le_bytes()).collect();
    let tab = cx.add_const(&format!("{name}_tab"), bytes)?;
    let outer = out[..r - 1].to_vec();
    let rows: usize = outer.iter().product();
    let ow = out[r - 1];
    let row_bytes = ow * es;
    let func = cx.define_kernel(name, |b, p| {
        let x = buf(b, p, 0);
        let t = buf(b, p, 1);
        let y = buf(b, p, 2);
        for_range(b, p.begin, p.end, |b, item| {
            let idx = unflatten(b, item, &outer);
            let mut src = x;
            for k in 0..r - 1 {
                let tk = add_off(b, t, (starts[k] * 8) as i64);
                let a = index(b, tk, idx[k], 8);
                let o = b.ins().load(types::I64, sflags(), a, 0);
                src = b.ins().iadd(src, o);
            }
            let dst = index(b, y, item, row_bytes as i64);
            if last_same {
                copy_bytes(b, src, dst, row_bytes);
            } else {
                let tl = add_off(b, t, (starts[r - 1] * 8) as i64);
                for_n(b, ow, 4, |b, j| {
                    let a = index(b, tl, j, 8);
                    let o = b.ins().load(types::I64, sflags(), a, 0);
                    let s = b.ins().iadd(src, o);
                    let v = b.ins().load(ety, sflags(), s, 0);
                    let d = index(b, dst, j, es as i64);
                    b.ins().store(sflags(), v, d, 0);
                });
            }
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Lowered {
        launches: vec![Launch {
            func,
            operands: vec![Operand::Input(0), Operand::Const(tab), Operand::Output(0)],
            items: rows as u64,
            grain: (4096 / row_bytes.max(1)).max(1) as u64,
            name: name.into(),
        }],
        scratch_bytes: 0,
    })
}

/// Bilinear resize of `[N, C, H, W]` f32 to `[N, C, OH, OW]`: `hp[oh] = (h0, h1, w0, w1)` and
/// `wp[ow]` likewise; `y = ww0 * (wh0 x[h0,w0] + wh1 x[h1,w0]) + ww1 * (wh0 x[h0,w1] + wh1
/// x[h1,w1])` (rows first, as the reference resamples H before W).
fn bilinear(
    cx: &mut KernelCx,
    xs: &[usize],
    out: &[usize],
    hp: &[(usize, usize, f32, f32)],
    wp: &[(usize, usize, f32, f32)],
) -> Result<Lowered, String> {
    let (h, w) = (xs[2], xs[3]);
    let (oh, ow) = (out[2], out[3]);
    let planes = out[0] * out[1];
    // Row table per oh: [h0 * W * 4, h1 * W * 4] as i64 then [wh0, wh1] as f32 (24 bytes);
    // column table per ow: [w0 * 4, w1 * 4] as i32 then [ww0, ww1] (16 bytes).
    let mut rt = Vec::with_capacity(oh * 24);
    for &(h0, h1, a, c) in hp {
        rt.extend(((h0 * w * 4) as i64).to_le_bytes());
        rt.extend(((h1 * w * 4) as i64).to_le_bytes());
        rt.extend(a.to_le_bytes());
        rt.extend(c.to_le_bytes());
    }
    let mut ct = Vec::with_capacity(ow * 16);
    for &(w0, w1, a, c) in wp {
        let (o0, o1) = (i32::try_from(w0 * 4), i32::try_from(w1 * 4));
        let (Ok(o0), Ok(o1)) = (o0, o1) else {
            return Err("resize: row too long".into());
        };
        ct.extend(o0.to_le_bytes());
        ct.extend(o1.to_le_bytes());
        ct.extend(a.to_le_bytes());
        ct.extend(c.to_le_bytes());
    }
    let rtab = cx.add_const("resize_rows", rt)?;
    let ctab = cx.add_const("resize_cols", ct)?;
    let func = cx.define_kernel("resize_linear", |b, p| {
        let x = buf(b, p, 0);
        let rt = buf(b, p, 1);
        let ct = buf(b, p, 2);
        let y = buf(b, p, 3);
        for_range(b, p.begin, p.end, |b, item| {
            let ohv = c64(b, oh as i64);
            let plane = b.ins().udiv(item, ohv);
            let o = b.ins().urem(item, ohv);
            let base = index(b, x, plane, (h * w * 4) as i64);
            let re = index(b, rt, o, 24);
            let o0 = b.ins().load(types::I64, sflags(), re, 0);
            let o1 = b.ins().load(types::I64, sflags(), re, 8);
            let a0 = b.ins().load(types::F32, sflags(), re, 16);
            let a1 = b.ins().load(types::F32, sflags(), re, 20);
            let r0 = b.ins().iadd(base, o0);
            let r1 = b.ins().iadd(base, o1);
            let dst = index(b, y, item, (ow * 4) as i64);
            let zero = c64(b, 0);
            let end = c64(b, ow as i64);
            for_range(b, zero, end, |b, j| {
                let ce = index(b, ct, j, 16);
                let c0 = b.ins().sload32(sflags(), ce, 0);
                let c1 = b.ins().sload32(sflags(), ce, 4);
                let b0 = b.ins().load(types::F32, sflags(), ce, 8);
                let b1 = b.ins().load(types::F32, sflags(), ce, 12);
                let col = |b: &mut cranelift_frontend::FunctionBuilder, c: Value| -> Value {
                    let p0 = b.ins().iadd(r0, c);
                    let p1 = b.ins().iadd(r1, c);
                    let v0 = b.ins().load(types::F32, sflags(), p0, 0);
                    let v1 = b.ins().load(types::F32, sflags(), p1, 0);
                    let t0 = b.ins().fmul(v0, a0);
                    let t1 = b.ins().fmul(v1, a1);
                    b.ins().fadd(t0, t1)
                };
                let u0 = col(b, c0);
                let u1 = col(b, c1);
                let t0 = b.ins().fmul(u0, b0);
                let t1 = b.ins().fmul(u1, b1);
                let v = b.ins().fadd(t0, t1);
                let d = index(b, dst, j, 4);
                b.ins().store(sflags(), v, d, 0);
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Lowered {
        launches: vec![Launch {
            func,
            operands: vec![
                Operand::Input(0),
                Operand::Const(rtab),
                Operand::Const(ctab),
                Operand::Output(0),
            ],
            items: (planes * oh) as u64,
            grain: (1024 / ow.max(1)).max(1) as u64,
            name: "resize_linear".into(),
        }],
        scratch_bytes: 0,
    })
}
