//! Row kernels over contiguous f32 rows: Softmax and LogSoftmax (the reduced lanes must be
//! contiguous: the last axis, or any axis with `coerce_2d`), FusedSoftmax (`x + mask`, the
//! mask broadcasting, softmax over the last axis), LayerNormalization (Scale and B
//! broadcasting over the normalized block, or single values; the Mean and InvStdDev outputs)
//! and RMSNormalization. A work item is one row; the
//! exponentials use `vmath::exp` on f32x4 (tails go through a lane of a splat).

use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{add_off, buf, c64, for_range, hreduce, index, sflags, vflags, vmax_keep};
use super::movement::rows_loop;
use super::{in_shape, input, norm_axis, out_shape, output_used, strides};
use crate::codegen::kernel::{KernelCx, Launch, Lowered, Operand};
use crate::codegen::kernels::vmath;

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let f32_in = |i: usize| input(g, node, i).map(|v| g.dtype(v)) == Some(DType::F32);
    if !f32_in(0) || n.outputs.first().map(|o| o.ty.dtype) != Some(DType::F32) {
        return Ok(None);
    }
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    let r = xs.len();
    match &n.op {
        Op::Softmax { axis, coerce_2d } | Op::LogSoftmax { axis, coerce_2d } => {
            if xs != ys || r == 0 {
                return Ok(None);
            }
            let a = if *coerce_2d {
                let a = if *axis < 0 { axis + r as i64 } else { *axis };
                if !(0..=r as i64).contains(&a) {
                    return Ok(None);
                }
                a as usize
            } else {
                match norm_axis(*axis, r) {
                    Some(a) if a + 1 == r || xs[a + 1..].iter().all(|&d| d == 1) => a,
                    _ => return Ok(None),
                }
            };
            let outer: usize = xs[..a].iter().product();
            let d: usize = xs[a..].iter().product();
            let log = matches!(n.op, Op::LogSoftmax { .. });
            softmax(cx, outer, d, log, None).map(Some)
        }
        Op::FusedSoftmax { axis } => {
            if !f32_in(1) || xs != ys || r == 0 || norm_axis(*axis, r) != Some(r - 1) {
                return Ok(None);
            }
            let Some(ms) = in_shape(g, node, 1) else {
                return Ok(None);
            };
            if ms.len() > r {
                return Ok(None);
            }
            // Mask strides over the output's dims (0 where it broadcasts).
            let lead = r - ms.len();
            let mst = strides(&ms);
            let mut mstr = vec![0i64; r];
            for k in 0..ms.len() {
                if ms[k] == xs[lead + k] {
                    mstr[lead + k] = (mst[k] * 4) as i64;
                } else if ms[k] != 1 {
                    return Ok(None);
                }
            }
            let outer: usize = xs[..r - 1].iter().product();
            let d = xs[r - 1];
            softmax(cx, outer, d, false, Some((xs[..r - 1].to_vec(), mstr))).map(Some)
        }
        Op::LayerNormalization { axis, epsilon, .. }
        | Op::RmsNormalization { axis, epsilon, .. } => {
            let rms = matches!(n.op, Op::RmsNormalization { .. });
            let Some(a) = norm_axis(*axis, r) else {
                return Ok(None);
            };
            let d: usize = xs[a..].iter().product();
            let outer: usize = xs[..a].iter().product();
            // Mean and InvStdDev (LayerNormalization's optional outputs): one f32 per row.
            let mut stats = [false; 2];
            for (i, used) in stats.iter_mut().enumerate() {
                let Some(o) = n.outputs.get(i + 1) else {
                    continue;
                };
                if !output_used(g, node, i + 1) {
                    continue;
                }
                if o.ty.dtype != DType::F32 || o.ty.shape.num_elements() != Some(outer) {
                    return Ok(None);
                }
                *used = true;
            }
            if xs != ys || (rms && n.outputs.len() != 1) {
                return Ok(None);
            }
            // Scale and B: one value, or one per element of the normalized block.
            let per = |i: usize| -> Option<Option<bool>> {
                if input(g, node, i).is_none() {
                    return Some(None);
                }
                if !f32_in(i) {
                    return None;
                }
                let s = in_shape(g, node, i)?;
                let numel: usize = s.iter().product();
                let strip = |v: &[usize]| -> Vec<usize> {
                    v.iter().copied().skip_while(|&x| x == 1).collect()
                };
                if numel == 1 && s.len() <= r {
                    Some(Some(false))
                } else if numel == d && s.len() <= r && strip(&s) == strip(&xs[a..]) {
                    Some(Some(true))
                } else {
                    None
                }
            };
            let (Some(Some(scale)), Some(bias)) = (per(1), per(2)) else {
                return Ok(None);
            };
            if rms && bias.is_some() {
                return Ok(None);
            }
            let form = Norm {
                eps: *epsilon,
                scale,
                bias,
                rms,
                stats,
            };
            layer_norm(cx, outer, d, &form).map(Some)
        }
        _ => Ok(None),
    }
}

/// `f` on lane 0 of a splat (for row tails).
fn scalar_via_vec(
    b: &mut FunctionBuilder,
    x: Value,
    f: impl FnOnce(&mut FunctionBuilder, Value) -> Value,
) -> Value {
    let v = b.ins().splat(types::F32X4, x);
    let r = f(b, v);
    b.ins().extractlane(r, 0u8)
}

/// Softmax / LogSoftmax over rows of `d` contiguous elements. With `mask = (outer dims, mask
/// byte strides over [outer dims..., d])`, the row is `x + mask` first (FusedSoftmax; operand 1
/// is the mask, the output is operand 2).
fn softmax(
    cx: &mut KernelCx,
    outer: usize,
    d: usize,
    log: bool,
    mask: Option<(Vec<usize>, Vec<i64>)>,
) -> Result<Lowered, String> {
    if outer == 0 || d == 0 {
        return Ok(Lowered::default());
    }
    let nv = d / 4;
    let masked = mask.is_some();
    let func = cx.define_kernel("softmax", |b, p| {
        let x = buf(b, p, 0);
        let (m, y) = if masked {
            (Some(buf(b, p, 1)), buf(b, p, 2))
        } else {
            (None, buf(b, p, 1))
        };
        let row = (d * 4) as i64;
        let (odims, mstr) = match &mask {
            Some((dims, s)) => (dims.clone(), s.clone()),
            None => (vec![outer], vec![0, 0]),
        };
        let ost: Vec<i64> = strides(&odims).iter().map(|&s| s as i64 * row).collect();
        let mlast = *mstr.last().expect("rank >= 1");
        rows_loop(b, p.begin, p.end, &odims, &mstr, &ost, |b, mo, off| {
            let xp = b.ins().iadd(x, off);
            let yp = b.ins().iadd(y, off);
            let mp = m.map(|m| b.ins().iadd(m, mo));
            // Element k of the (masked) row, as a vector at 4k or a scalar at k.
            let vload = |b: &mut FunctionBuilder, i: Value| -> Value {
                let a = index(b, xp, i, 16);
                let v = b.ins().load(types::F32X4, vflags(), a, 0);
                match mp {
                    None => v,
                    Some(mp) => {
                        let mv = if mlast == 0 {
                            let s = b.ins().load(types::F32, sflags(), mp, 0);
                            b.ins().splat(types::F32X4, s)
                        } else {
                            let a = index(b, mp, i, 16);
                            b.ins().load(types::F32X4, vflags(), a, 0)
                        };
                        b.ins().fadd(v, mv)
                    }
                }
            };
            let sload = |b: &mut FunctionBuilder, k: usize| -> Value {
                let v = b.ins().load(types::F32, sflags(), xp, (k * 4) as i32);
                match mp {
                    None => v,
                    Some(mp) => {
                        let o = if mlast == 0 { 0 } else { (k * 4) as i32 };
                        let mv = b.ins().load(types::F32, sflags(), mp, o);
                        b.ins().fadd(v, mv)
                    }
                }
            };
            // Pass 1: the maximum.
            let mx = b.declare_var(types::F32);
            let ninf = b.ins().f32const(f32::NEG_INFINITY);
            b.def_var(mx, ninf);
            if nv > 0 {
                let acc = b.declare_var(types::F32X4);
                let v0 = b.ins().splat(types::F32X4, ninf);
                b.def_var(acc, v0);
                let lo = c64(b, 0);
                let hi = c64(b, nv as i64);
                for_range(b, lo, hi, |b, i| {
                    let v = vload(b, i);
                    let a = b.use_var(acc);
                    let n = vmax_keep(b, v, a);
                    b.def_var(acc, n);
                });
                let a = b.use_var(acc);
                let h = hreduce(b, a, |b, p, q| b.ins().fmax(p, q));
                b.def_var(mx, h);
            }
            for k in nv * 4..d {
                let v = sload(b, k);
                let a = b.use_var(mx);
                let n = b.ins().fmax(a, v);
                b.def_var(mx, n);
            }
            let mxs = b.use_var(mx);
            let mxv = b.ins().splat(types::F32X4, mxs);
            // Pass 2: e = exp(x - max) into y (softmax), and the sum.
            let sum = b.declare_var(types::F32);
            let zero = b.ins().f32const(0.0);
            b.def_var(sum, zero);
            if nv > 0 {
                let acc = b.declare_var(types::F32X4);
                let v0 = b.ins().splat(types::F32X4, zero);
                b.def_var(acc, v0);
                let lo = c64(b, 0);
                let hi = c64(b, nv as i64);
                for_range(b, lo, hi, |b, i| {
                    let v = vload(b, i);
                    let t = b.ins().fsub(v, mxv);
                    let e = vmath::exp(b, t);
                    if !log {
                        let a = index(b, yp, i, 16);
                        b.ins().store(vflags(), e, a, 0);
                    }
                    let a = b.use_var(acc);
                    let n = b.ins().fadd(a, e);
                    b.def_var(acc, n);
                });
                let a = b.use_var(acc);
                let h = hreduce(b, a, |b, p, q| b.ins().fadd(p, q));
                b.def_var(sum, h);
            }
            for k in nv * 4..d {
                let v = sload(b, k);
                let t = b.ins().fsub(v, mxs);
                let e = scalar_via_vec(b, t, vmath::exp);
                if !log {
                    b.ins().store(sflags(), e, yp, (k * 4) as i32);
                }
                let a = b.use_var(sum);
                let n = b.ins().fadd(a, e);
                b.def_var(sum, n);
            }
            let s = b.use_var(sum);
            // Pass 3: scale (softmax) or x - max - log(sum) (log-softmax).
            if log {
                let ls = scalar_via_vec(b, s, vmath::log);
                if nv > 0 {
                    let lo = c64(b, 0);
                    let hi = c64(b, nv as i64);
                    for_range(b, lo, hi, |b, i| {
                        let v = vload(b, i);
                        let t = b.ins().fsub(v, mxv);
                        let ls = b.ins().splat(types::F32X4, ls);
                        let t = b.ins().fsub(t, ls);
                        let a = index(b, yp, i, 16);
                        b.ins().store(vflags(), t, a, 0);
                    });
                }
                for k in nv * 4..d {
                    let v = sload(b, k);
                    let t = b.ins().fsub(v, mxs);
                    let t = b.ins().fsub(t, ls);
                    b.ins().store(sflags(), t, yp, (k * 4) as i32);
                }
            } else {
                let one = b.ins().f32const(1.0);
                let inv = b.ins().fdiv(one, s);
                let invv = b.ins().splat(types::F32X4, inv);
                if nv > 0 {
                    let lo = c64(b, 0);
                    let hi = c64(b, nv as i64);
                    for_range(b, lo, hi, |b, i| {
                        let a = index(b, yp, i, 16);
                        let e = b.ins().load(types::F32X4, vflags(), a, 0);
                        let e = b.ins().fmul(e, invv);
                        b.ins().store(vflags(), e, a, 0);
                    });
                }
                for k in nv * 4..d {
                    let e = b.ins().load(types::F32, sflags(), yp, (k * 4) as i32);
                    let e = b.ins().fmul(e, inv);
                    b.ins().store(sflags(), e, yp, (k * 4) as i32);
                }
            }
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    let operands = if masked {
        vec![Operand::Input(0), Operand::Input(1), Operand::Output(0)]
    } else {
        vec![Operand::Input(0), Operand::Output(0)]
    };
    Ok(Lowered {
        launches: vec![Launch {
            func,
            operands,
            items: outer as u64,
            grain: (2048 / d).max(1) as u64,
            name: if masked {
                "fused_softmax"
            } else if log {
                "log_softmax"
            } else {
                "softmax"
            }
            .into(),
        }],
        scratch_bytes: 0,
    })
}

/// What [`layer_norm`] computes.
struct Norm {
    eps: f32,
    /// Scale: `true` one value per element of the row, `false` one value.
    scale: bool,
    /// B likewise, `None` when absent.
    bias: Option<bool>,
    /// RMSNormalization: no mean is subtracted, `inv = 1 / sqrt(mean(x²) + eps)`.
    rms: bool,
    /// Whether the row's mean and inverse standard deviation are written (outputs 1 and 2).
    stats: [bool; 2],
}

/// LayerNormalization (or RMSNormalization) over rows of `d`: two passes (mean, then
/// variance of `x - mean`), then `(x - mean) * inv * scale + b`.
fn layer_norm(cx: &mut KernelCx, outer: usize, d: usize, form: &Norm) -> Result<Lowered, String> {
    if outer == 0 || d == 0 {
        return Ok(Lowered::default());
    }
    let &Norm {
        eps,
        scale,
        bias,
        rms,
        stats,
    } = form;
    let nv = d / 4;
    let name = if rms { "rms_norm" } else { "layer_norm" };
    let func = cx.define_kernel(name, |b, p| {
        let x = buf(b, p, 0);
        let sc = buf(b, p, 1);
        let mut next = 2;
        let bi = bias.map(|_| {
            next += 1;
            buf(b, p, next - 1)
        });
        let y = buf(b, p, next);
        let stat_bufs: Vec<Option<Value>> = stats
            .iter()
            .map(|&used| {
                used.then(|| {
                    next += 1;
                    buf(b, p, next)
                })
            })
            .collect();
        for_range(b, p.begin, p.end, |b, r| {
            let xp = index(b, x, r, (d * 4) as i64);
            let yp = index(b, y, r, (d * 4) as i64);
            // Sum of a function of the row's elements.
            let row_sum = |b: &mut FunctionBuilder,
                           f: &dyn Fn(&mut FunctionBuilder, Value) -> Value|
             -> Value {
                let zero = b.ins().f32const(0.0);
                let sum = b.declare_var(types::F32);
                b.def_var(sum, zero);
                if nv > 0 {
                    let acc = b.declare_var(types::F32X4);
                    let z = b.ins().splat(types::F32X4, zero);
                    b.def_var(acc, z);
                    let lo = c64(b, 0);
                    let hi = c64(b, nv as i64);
                    for_range(b, lo, hi, |b, i| {
                        let a = index(b, xp, i, 16);
                        let v = b.ins().load(types::F32X4, vflags(), a, 0);
                        let v = f(b, v);
                        let a = b.use_var(acc);
                        let n = b.ins().fadd(a, v);
                        b.def_var(acc, n);
                    });
                    let a = b.use_var(acc);
                    let h = hreduce(b, a, |b, p, q| b.ins().fadd(p, q));
                    b.def_var(sum, h);
                }
                for k in nv * 4..d {
                    let v = b.ins().load(types::F32, sflags(), xp, (k * 4) as i32);
                    let v = b.ins().splat(types::F32X4, v);
                    let v = f(b, v);
                    let v = b.ins().extractlane(v, 0u8);
                    let a = b.use_var(sum);
                    let n = b.ins().fadd(a, v);
                    b.def_var(sum, n);
                }
                b.use_var(sum)
            };
            let dn = b.ins().f32const(d as f32);
            let (mean, q) = if rms {
                (None, row_sum(b, &|b, v| b.ins().fmul(v, v)))
            } else {
                let s = row_sum(b, &|_, v| v);
                let mean = b.ins().fdiv(s, dn);
                let meanv = b.ins().splat(types::F32X4, mean);
                let q = row_sum(b, &|b, v| {
                    let t = b.ins().fsub(v, meanv);
                    b.ins().fmul(t, t)
                });
                (Some((mean, meanv)), q)
            };
            let var = b.ins().fdiv(q, dn);
            let e = b.ins().f32const(eps);
            let ve = b.ins().fadd(var, e);
            let sd = b.ins().sqrt(ve);
            let one = b.ins().f32const(1.0);
            let inv = b.ins().fdiv(one, sd);
            let invv = b.ins().splat(types::F32X4, inv);
            for (stat, value) in stat_bufs.iter().zip([mean.map(|m| m.0), Some(inv)]) {
                if let (Some(base), Some(value)) = (stat, value) {
                    let a = index(b, *base, r, 4);
                    b.ins().store(sflags(), value, a, 0);
                }
            }
            // Scale/bias lane k: per element, or the one value.
            let param =
                |b: &mut FunctionBuilder, base: Value, per: bool, i: Value, vec: bool| match (
                    per, vec,
                ) {
                    (true, true) => {
                        let a = index(b, base, i, 16);
                        b.ins().load(types::F32X4, vflags(), a, 0)
                    }
                    (true, false) => {
                        let a = index(b, base, i, 4);
                        b.ins().load(types::F32, sflags(), a, 0)
                    }
                    (false, true) => {
                        let s = b.ins().load(types::F32, sflags(), base, 0);
                        b.ins().splat(types::F32X4, s)
                    }
                    (false, false) => b.ins().load(types::F32, sflags(), base, 0),
                };
            if nv > 0 {
                let lo = c64(b, 0);
                let hi = c64(b, nv as i64);
                for_range(b, lo, hi, |b, i| {
                    let a = index(b, xp, i, 16);
                    let v = b.ins().load(types::F32X4, vflags(), a, 0);
                    let t = match mean {
                        Some((_, meanv)) => b.ins().fsub(v, meanv),
                        None => v,
                    };
                    let t = b.ins().fmul(t, invv);
                    let s = param(b, sc, scale, i, true);
                    let t = b.ins().fmul(t, s);
                    let t = match (bi, bias) {
                        (Some(bp), Some(per)) => {
                            let bv = param(b, bp, per, i, true);
                            b.ins().fadd(t, bv)
                        }
                        _ => t,
                    };
                    let a = index(b, yp, i, 16);
                    b.ins().store(vflags(), t, a, 0);
                });
            }
            for k in nv * 4..d {
                let kv = c64(b, k as i64);
                let v = b.ins().load(types::F32, sflags(), xp, (k * 4) as i32);
                let t = match mean {
                    Some((mean, _)) => b.ins().fsub(v, mean),
                    None => v,
                };
                let t = b.ins().fmul(t, inv);
                let s = param(b, sc, scale, kv, false);
                let t = b.ins().fmul(t, s);
                let t = match (bi, bias) {
                    (Some(bp), Some(per)) => {
                        let bv = param(b, bp, per, kv, false);
                        b.ins().fadd(t, bv)
                    }
                    _ => t,
                };
                let a = add_off(b, yp, (k * 4) as i64);
                b.ins().store(sflags(), t, a, 0);
            }
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    let mut operands = vec![Operand::Input(0), Operand::Input(1)];
    if bias.is_some() {
        operands.push(Operand::Input(2));
    }
    operands.push(Operand::Output(0));
    for (i, &used) in stats.iter().enumerate() {
        if used {
            operands.push(Operand::Output(i + 1));
        }
    }
    Ok(Lowered::one(
        func,
        operands,
        (outer as u64, (2048 / d).max(1) as u64),
        &name,
        0,
    ))
}
