//! Resize (and Upsample, a Resize with asymmetric coordinates) with constant scales or
//! sizes (and roi), its sampling taps computed at compile time by the reference evaluator's
//! own tap function (`graphc_passes::eval::axis_taps`) and baked into constant tables:
//!
//! - `nearest` (every rank, every element type the reference round-trips exactly): a gather;
//!   a work item is one output row (all dims but the last), whose source row is the sum of one
//!   table entry per dim; the last dim is copied through a table of byte offsets (or as one
//!   contiguous run when it is not resized).
//! - two-tap `linear` on 4-D NCHW input resizing H and W only (f32): a work item is one output
//!   row; two source rows blended with per-row weights, two columns with per-column weights.
//! - everything else on f32 (cubic with `cubic_coeff_a`, `exclude_outside`, antialias,
//!   linear over any axes, tf_crop_and_resize): separable passes, one per resized axis in the
//!   reference's order, each a sum of `w * x` over the axis's taps in f64 (intermediates in f64
//!   scratch, rounded to f32 once at the end, so the result is the reference's); positions
//!   tf_crop_and_resize extrapolates are filled with `extrapolation_value` by a last launch.
//!
//! Coordinate modes: half_pixel, half_pixel_symmetric, pytorch_half_pixel, align_corners,
//! asymmetric, tf_crop_and_resize; nearest modes: round_prefer_floor, round_prefer_ceil,
//! floor, ceil; keep_aspect_ratio_policy stretch, not_larger, not_smaller. Declined: run-time
//! scales, sizes or roi, non-f32 types outside plain nearest.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use graphc_passes::eval::{axis_taps, ResizeParams, Taps};
use graphc_passes::ir::{DType, Graph, NodeId, Op, Tensor};

use super::ir::{
    add_off, buf, c64, copy_bytes, for_n, for_range, index, int_type, sflags, unflatten,
};
use super::{const_input, in_shape, input, norm_axis, out_shape, strides};
use crate::codegen::kernel::{KernelCx, Launch, Lowered, Operand};

/// Resize attributes (the reference's, so that its tap tables are the reference's) and where
/// its inputs are (Upsample maps onto them).
struct Params<'a> {
    r: ResizeParams<'a>,
    /// Input slots of roi, scales and sizes.
    roi: Option<usize>,
    scales: usize,
    sizes: Option<usize>,
}

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let p = match &n.op {
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
        } => Params {
            r: ResizeParams {
                antialias: *antialias != 0,
                axes: axes.as_deref(),
                coord_mode: coordinate_transformation_mode,
                cubic_a: *cubic_coeff_a as f64,
                exclude_outside: *exclude_outside != 0,
                extrapolation: *extrapolation_value as f64,
                keep_aspect: keep_aspect_ratio_policy,
                mode,
                nearest_mode,
            },
            roi: Some(1),
            scales: 2,
            sizes: Some(3),
        },
        Op::Upsample { mode } => Params {
            r: ResizeParams {
                antialias: false,
                axes: None,
                coord_mode: "asymmetric",
                cubic_a: -0.75,
                exclude_outside: false,
                extrapolation: 0.0,
                keep_aspect: "stretch",
                mode: match mode.as_str() {
                    "nearest" => "nearest",
                    "linear" | "bilinear" => "linear",
                    _ => return Ok(None),
                },
                nearest_mode: "floor",
            },
            roi: None,
            scales: 1,
            sizes: None,
        },
        _ => return Ok(None),
    };
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    if n.outputs.first().map(|o| o.ty.dtype) != Some(dt) {
        return Ok(None);
    }
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    let r = xs.len();
    if ys.len() != r || r == 0 {
        return Ok(None);
    }
    let axes: Vec<usize> = match p.r.axes {
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
    let Some((scales, out, roi)) = scales_and_sizes(g, node, &xs, &axes, &p) else {
        return Ok(None);
    };
    if out != ys {
        return Ok(None);
    }
    if !matches!(
        p.r.coord_mode,
        "half_pixel"
            | "half_pixel_symmetric"
            | "pytorch_half_pixel"
            | "align_corners"
            | "asymmetric"
            | "tf_crop_and_resize"
    ) || !matches!(p.r.mode, "nearest" | "linear" | "cubic")
        || !matches!(
            p.r.nearest_mode,
            "round_prefer_floor" | "round_prefer_ceil" | "floor" | "ceil"
        )
    {
        return Ok(None);
    }
    // The resized dims (the reference skips the others).
    let changed: Vec<bool> = (0..r)
        .map(|a| {
            !(scales[a] == 1.0
                && out[a] == xs[a]
                && (p.r.coord_mode != "tf_crop_and_resize" || roi[a] == (0.0, 1.0)))
        })
        .collect();
    if (0..r).any(|a| changed[a] && xs[a] == 0) {
        return Ok(None);
    }
    if out.contains(&0) {
        return Ok(Some(Lowered::default()));
    }
    let mut taps: Vec<Option<Taps>> = Vec::with_capacity(r);
    for a in 0..r {
        taps.push(match changed[a] {
            false => None,
            true => match axis_taps(xs[a], out[a], scales[a], roi[a], &p.r) {
                Ok(t) => Some(t),
                Err(_) => return Ok(None),
            },
        });
    }
    let extrapolates = taps.iter().flatten().flatten().any(Option::is_none);
    if p.r.mode == "nearest" && !extrapolates {
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
        if exact {
            let tabs: Vec<Vec<usize>> = (0..r)
                .map(|a| match &taps[a] {
                    Some(t) => t.iter().flatten().map(|v| v[0].0).collect(),
                    None => (0..xs[a]).collect(),
                })
                .collect();
            return nearest(cx, &xs, &out, &tabs, !changed[r - 1], dt.size()).map(Some);
        }
    }
    if dt != DType::F32 {
        return Ok(None);
    }
    // One or two taps per output index along H and W only: the blended-rows kernel.
    let two_taps = |t: &Taps| {
        t.iter()
            .all(|v| matches!(v, Some(v) if (1..=2).contains(&v.len())))
    };
    if p.r.mode == "linear"
        && r == 4
        && !changed[0]
        && !changed[1]
        && taps.iter().flatten().all(two_taps)
    {
        let mut pairs = Vec::new();
        for a in [2, 3] {
            let t: Vec<Vec<(usize, f64)>> = match &taps[a] {
                Some(t) => t.iter().flatten().cloned().collect(),
                None => (0..xs[a]).map(|i| vec![(i, 1.0)]).collect(),
            };
            // Exactly two taps each: a single tap (weight w) splits into two halves at the
            // same index, which sum back to w * x exactly.
            let p: Vec<_> = t
                .into_iter()
                .map(|v| match v.as_slice() {
                    [(i, w)] => (*i, *i, (w / 2.0) as f32, (w / 2.0) as f32),
                    [(i, w), (j, u)] => (*i, *j, *w as f32, *u as f32),
                    _ => unreachable!("one or two taps"),
                })
                .collect();
            pairs.push(p);
        }
        return bilinear(cx, &xs, &out, &pairs[0], &pairs[1]).map(Some);
    }
    separable(cx, &xs, &taps, p.r.extrapolation as f32).map(Some)
}

/// Per-dim scales, the output shape and the per-dim roi, as the reference computes them
/// (constant inputs only).
#[allow(clippy::type_complexity)]
fn scales_and_sizes(
    g: &Graph,
    node: NodeId,
    xs: &[usize],
    axes: &[usize],
    p: &Params,
) -> Option<(Vec<f64>, Vec<usize>, Vec<(f64, f64)>)> {
    let r = xs.len();
    // An input slot that is present and non-empty must be constant.
    let present = |i: Option<usize>| -> Option<Option<&Tensor>> {
        let Some(i) = i else { return Some(None) };
        match input(g, node, i) {
            None => Some(None),
            Some(_) => {
                let t = const_input(g, node, i)?;
                Some(if t.is_empty() { None } else { Some(t) })
            }
        }
    };
    let mut scales = vec![1.0f64; r];
    let mut out = xs.to_vec();
    if let Some(sizes) = present(p.sizes)? {
        let sizes = sizes.to_i64_vec().ok()?;
        if sizes.len() != axes.len() {
            return None;
        }
        for (&a, &s) in axes.iter().zip(&sizes) {
            let s = usize::try_from(s).ok()?;
            scales[a] = s as f64 / xs[a] as f64;
            out[a] = s;
        }
        if p.r.keep_aspect != "stretch" {
            let sel = axes.iter().map(|&a| scales[a]);
            let s = match p.r.keep_aspect {
                "not_larger" => sel.fold(f64::INFINITY, f64::min),
                "not_smaller" => sel.fold(f64::NEG_INFINITY, f64::max),
                _ => return None,
            };
            for &a in axes {
                scales[a] = s;
                out[a] = (s * xs[a] as f64 + 0.5) as usize;
            }
        }
    } else if let Some(s) = present(Some(p.scales))? {
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
    let mut roi = vec![(0.0, 1.0); r];
    if let Some(t) = present(p.roi)? {
        let v = t.to_f64_vec();
        let k = if v.len() == 2 * axes.len() {
            axes.len()
        } else {
            r
        };
        if v.len() != 2 * k {
            return None;
        }
        let which: Vec<usize> = if k == r {
            (0..r).collect()
        } else {
            axes.to_vec()
        };
        for (i, &a) in which.iter().enumerate() {
            roi[a] = (v[i], v[k + i]);
        }
    }
    Some((scales, out, roi))
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
    Ok(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Const(tab), Operand::Output(0)],
        (rows as u64, (4096 / row_bytes.max(1)).max(1) as u64),
        &name,
        0,
    ))
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
    Ok(Lowered::one(
        func,
        vec![
            Operand::Input(0),
            Operand::Const(rtab),
            Operand::Const(ctab),
            Operand::Output(0),
        ],
        ((planes * oh) as u64, (1024 / ow.max(1)).max(1) as u64),
        "resize_linear",
        0,
    ))
}

/// Separable resize of f32 `[..]` of shape `xs`: one launch per resized axis `a` (in order),
/// over `[outer, len_in, inner] -> [outer, len_out, inner]` with a work item per
/// `(outer, o)` row: `y[j] = sum_t w_t * x[idx_t, j]` in f64, taps in the table order. Pass
/// results live in two f64 scratch buffers; the first pass reads f32, the last writes f32.
/// Positions any axis extrapolates (taps `None`) get `extrapolation` in a last launch.
fn separable(
    cx: &mut KernelCx,
    xs: &[usize],
    taps: &[Option<Taps>],
    extrapolation: f32,
) -> Result<Lowered, String> {
    let r = xs.len();
    let axes: Vec<usize> = (0..r).filter(|&a| taps[a].is_some()).collect();
    let mut launches = Vec::new();
    let mut cur = xs.to_vec();
    // The largest intermediate (f64) result, for the two scratch buffers.
    let mut biggest = 0usize;
    {
        let mut c = xs.to_vec();
        for (k, &a) in axes.iter().enumerate() {
            c[a] = taps[a].as_ref().map_or(c[a], Vec::len);
            if k + 1 < axes.len() {
                biggest = biggest.max(c.iter().product());
            }
        }
    }
    let half = (biggest * 8).div_ceil(64) * 64;
    for (k, &a) in axes.iter().enumerate() {
        let t = taps[a].as_ref().expect("a resized axis");
        let (first, last) = (k == 0, k + 1 == axes.len());
        let outer: usize = cur[..a].iter().product();
        let len_in = cur[a];
        let inner: usize = cur[a + 1..].iter().product();
        let len_out = t.len();
        let (ies, oes) = (if first { 4 } else { 8 }, if last { 4 } else { 8 });
        // Header per output index: (first tap, tap count) as u32; then per tap the byte
        // offset of its input row in the lane (i64) and its weight (f64).
        let mut head = Vec::with_capacity(len_out * 8);
        let mut body = Vec::new();
        let mut n = 0u32;
        for v in t {
            let v = v.as_deref().unwrap_or(&[]);
            head.extend(n.to_le_bytes());
            head.extend((v.len() as u32).to_le_bytes());
            for &(i, w) in v {
                body.extend(((i * inner * ies) as i64).to_le_bytes());
                body.extend(w.to_le_bytes());
            }
            n = n
                .checked_add(v.len() as u32)
                .ok_or("resize: too many taps")?;
        }
        let hb = head.len() as i64;
        head.extend(body);
        let tab = cx.add_const("resize_taps", head)?;
        let func = cx.define_kernel("resize_axis", |b, p| {
            let x = buf(b, p, 0);
            let tb = buf(b, p, 1);
            let y = buf(b, p, 2);
            for_range(b, p.begin, p.end, |b, item| {
                let lo = c64(b, len_out as i64);
                let oi = b.ins().udiv(item, lo);
                let o = b.ins().urem(item, lo);
                let src = index(b, x, oi, (len_in * inner * ies) as i64);
                let dst = index(b, y, item, (inner * oes) as i64);
                let h = index(b, tb, o, 8);
                let start = b.ins().uload32(sflags(), h, 0);
                let count = b.ins().uload32(sflags(), h, 4);
                let tp = add_off(b, tb, hb);
                let tp = index(b, tp, start, 16);
                let zero = c64(b, 0);
                let iv = c64(b, inner as i64);
                for_range(b, zero, iv, |b, j| {
                    let col = index(b, src, j, ies as i64);
                    let acc = b.ins().f64const(-0.0);
                    // The tap loop carries the sum as a block parameter.
                    let head = b.create_block();
                    let body = b.create_block();
                    let exit = b.create_block();
                    b.append_block_param(head, types::I64);
                    b.append_block_param(head, types::F64);
                    b.append_block_param(exit, types::F64);
                    b.ins().jump(head, &[zero.into(), acc.into()]);
                    b.switch_to_block(head);
                    let ti = b.block_params(head)[0];
                    let acc = b.block_params(head)[1];
                    let more = b.ins().icmp(IntCC::UnsignedLessThan, ti, count);
                    b.ins().brif(more, body, &[], exit, &[acc.into()]);
                    b.switch_to_block(body);
                    let e = index(b, tp, ti, 16);
                    let off = b.ins().load(types::I64, sflags(), e, 0);
                    let w = b.ins().load(types::F64, sflags(), e, 8);
                    let at = b.ins().iadd(col, off);
                    let v = if first {
                        let v = b.ins().load(types::F32, sflags(), at, 0);
                        b.ins().fpromote(types::F64, v)
                    } else {
                        b.ins().load(types::F64, sflags(), at, 0)
                    };
                    let m = b.ins().fmul(w, v);
                    let acc = b.ins().fadd(acc, m);
                    let next = b.ins().iadd_imm_s(ti, 1);
                    b.ins().jump(head, &[next.into(), acc.into()]);
                    b.switch_to_block(exit);
                    let sum = b.block_params(exit)[0];
                    let d = index(b, dst, j, oes as i64);
                    let v = if last {
                        b.ins().fdemote(types::F32, sum)
                    } else {
                        sum
                    };
                    b.ins().store(sflags(), v, d, 0);
                });
            });
            b.ins().return_(&[]);
            Ok(())
        })?;
        let src = if first {
            Operand::Input(0)
        } else {
            Operand::Scratch(((k - 1) % 2) * half)
        };
        let dst = if last {
            Operand::Output(0)
        } else {
            Operand::Scratch((k % 2) * half)
        };
        let width = t.iter().flatten().map(Vec::len).max().unwrap_or(0);
        launches.push(Launch {
            func,
            operands: vec![src, Operand::Const(tab), dst],
            items: (outer * len_out) as u64,
            grain: (4096 / (inner * width.max(1)).max(1)).max(1) as u64,
            name: "resize_axis".into(),
        });
        cur[a] = len_out;
    }
    // tf_crop_and_resize: per-dim masks of the extrapolated indices.
    if taps.iter().flatten().flatten().any(Option::is_none) {
        let mut masks = Vec::new();
        let mut starts = Vec::new();
        for a in 0..r {
            starts.push(masks.len());
            match &taps[a] {
                Some(t) => masks.extend(t.iter().map(|v| v.is_none() as u8)),
                None => masks.extend(std::iter::repeat_n(0u8, cur[a])),
            }
        }
        let tab = cx.add_const("resize_mask", masks)?;
        let outer = cur[..r - 1].to_vec();
        let rows: usize = outer.iter().product();
        let w = cur[r - 1];
        let func = cx.define_kernel("resize_extrapolate", |b, p| {
            let y = buf(b, p, 0);
            let m = buf(b, p, 1);
            for_range(b, p.begin, p.end, |b, item| {
                let idx = unflatten(b, item, &outer);
                let mut any = b.ins().iconst(types::I8, 0);
                for (k, &i) in idx.iter().enumerate() {
                    let mk = add_off(b, m, starts[k] as i64);
                    let at = b.ins().iadd(mk, i);
                    let v = b.ins().load(types::I8, sflags(), at, 0);
                    any = b.ins().bor(any, v);
                }
                let e = b.ins().f32const(extrapolation);
                let row = index(b, y, item, (w * 4) as i64);
                let ml = add_off(b, m, starts[r - 1] as i64);
                for_n(b, w, 4, |b, j| {
                    let at = b.ins().iadd(ml, j);
                    let v = b.ins().load(types::I8, sflags(), at, 0);
                    let f = b.ins().bor(any, v);
                    let d = index(b, row, j, 4);
                    let old = b.ins().load(types::F32, sflags(), d, 0);
                    let new = b.ins().select(f, e, old);
                    b.ins().store(sflags(), new, d, 0);
                });
            });
            b.ins().return_(&[]);
            Ok(())
        })?;
        launches.push(Launch {
            func,
            operands: vec![Operand::Output(0), Operand::Const(tab)],
            items: rows as u64,
            grain: (4096 / w.max(1)).max(1) as u64,
            name: "resize_extrapolate".into(),
        });
    }
    Ok(Lowered {
        launches,
        scratch_bytes: if axes.len() > 1 { 2 * half } else { 0 },
    })
}
