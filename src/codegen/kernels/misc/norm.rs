//! Per-channel kernels over NCHW-like f32 tensors (`[N, C, spatial...]`, rank >= 2): LRN,
//! BatchNormalization (inference) and InstanceNormalization. A work item is one `(n, c)`
//! plane of the `S` = product of the spatial dims contiguous elements, vectorized along the
//! plane (f32x4, the tail one lane at a time through the same code).

use cranelift_codegen::ir::{types, InstBuilder, Type, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{buf, c64, for_range, hreduce, index, sflags, vflags};
use super::{const_input, in_shape, input, out_shape, output_used};
use crate::codegen::kernel::{KernelCx, Lowered, Operand};
use crate::codegen::kernels::vmath;

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let f32_in = |i: usize| input(g, node, i).map(|v| g.dtype(v)) == Some(DType::F32);
    if !f32_in(0) || n.outputs.first().map(|o| o.ty.dtype) != Some(DType::F32) {
        return Ok(None);
    }
    if (1..n.outputs.len()).any(|i| output_used(g, node, i)) {
        return Ok(None);
    }
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    if xs != ys || xs.len() < 2 {
        return Ok(None);
    }
    let (nb, c) = (xs[0], xs[1]);
    let s: usize = xs[2..].iter().product();
    // Per-channel parameter inputs: f32 with exactly C values.
    let per_channel = |i: usize| {
        f32_in(i) && in_shape(g, node, i).map(|v| v.iter().product::<usize>()) == Some(c)
    };
    let geo = Geo { n: nb, c, s };
    match &n.op {
        Op::Lrn {
            alpha,
            beta,
            bias,
            size,
        } => {
            if *size <= 0 || n.inputs.len() != 1 {
                return Ok(None);
            }
            lrn(cx, geo, *alpha, *beta, *bias, *size as usize).map(Some)
        }
        Op::BatchNormalization {
            epsilon,
            training_mode,
            ..
        } => {
            if *training_mode != 0 || n.inputs.len() != 5 || !(1..5).all(per_channel) {
                return Ok(None);
            }
            batch_norm(cx, g, node, geo, *epsilon).map(Some)
        }
        Op::InstanceNormalization { epsilon } => {
            if n.inputs.len() != 3 || !(1..3).all(per_channel) || s == 0 {
                return Ok(None);
            }
            instance_norm(cx, geo, *epsilon).map(Some)
        }
        _ => Ok(None),
    }
}

/// `[N, C, S]`.
#[derive(Clone, Copy, Debug)]
struct Geo {
    n: usize,
    c: usize,
    s: usize,
}

impl Geo {
    fn planes(&self) -> usize {
        self.n * self.c
    }

    /// Planes per work-item grain (about 8 KiB of input each).
    fn grain(&self) -> u64 {
        (2048 / self.s.max(1)).max(1) as u64
    }
}

/// An f32 constant of type `ty` (f32 or f32x4).
fn konst(b: &mut FunctionBuilder, ty: Type, v: f32) -> Value {
    let c = b.ins().f32const(v);
    if ty == types::F32 {
        c
    } else {
        b.ins().splat(ty, c)
    }
}

/// A scalar `v` broadcast to `ty`.
fn widen(b: &mut FunctionBuilder, ty: Type, v: Value) -> Value {
    if ty == types::F32 {
        v
    } else {
        b.ins().splat(ty, v)
    }
}

/// A vector math function applied to a value of type `ty` (a scalar goes through lane 0).
fn lift(
    b: &mut FunctionBuilder,
    ty: Type,
    x: Value,
    f: impl FnOnce(&mut FunctionBuilder, Value) -> Value,
) -> Value {
    if ty == types::F32 {
        let v = b.ins().splat(types::F32X4, x);
        let r = f(b, v);
        b.ins().extractlane(r, 0u8)
    } else {
        f(b, x)
    }
}

/// Loads a `ty` at `base + off`.
fn ld(b: &mut FunctionBuilder, ty: Type, base: Value, off: Value) -> Value {
    let a = b.ins().iadd(base, off);
    let fl = if ty == types::F32 { sflags() } else { vflags() };
    b.ins().load(ty, fl, a, 0)
}

/// Stores `v` at `base + off`.
fn st(b: &mut FunctionBuilder, v: Value, base: Value, off: Value) {
    let ty = b.func.dfg.value_type(v);
    let a = b.ins().iadd(base, off);
    let fl = if ty == types::F32 { sflags() } else { vflags() };
    b.ins().store(fl, v, a, 0);
}

/// Runs `body(byte offset, type)` over a row of `n` f32: f32x4 steps, then f32 for the tail.
fn for_lanes(
    b: &mut FunctionBuilder,
    n: usize,
    mut body: impl FnMut(&mut FunctionBuilder, Value, Type),
) {
    let nv = n / 4;
    if nv > 0 {
        let lo = c64(b, 0);
        let hi = c64(b, nv as i64);
        for_range(b, lo, hi, |b, i| {
            let off = b.ins().imul_imm_s(i, 16);
            body(b, off, types::F32X4);
        });
    }
    for k in nv * 4..n {
        let off = c64(b, (k * 4) as i64);
        body(b, off, types::F32);
    }
}

/// The f32 sum of `f(byte offset, type)` over a row of `n` (four vector partial sums, then the
/// tail in order).
fn row_sum(
    b: &mut FunctionBuilder,
    n: usize,
    f: &dyn Fn(&mut FunctionBuilder, Value, Type) -> Value,
) -> Value {
    let zero = b.ins().f32const(0.0);
    let sum = b.declare_var(types::F32);
    b.def_var(sum, zero);
    let nv = n / 4;
    if nv > 0 {
        let acc = b.declare_var(types::F32X4);
        let z = b.ins().splat(types::F32X4, zero);
        b.def_var(acc, z);
        let lo = c64(b, 0);
        let hi = c64(b, nv as i64);
        for_range(b, lo, hi, |b, i| {
            let off = b.ins().imul_imm_s(i, 16);
            let v = f(b, off, types::F32X4);
            let a = b.use_var(acc);
            let s = b.ins().fadd(a, v);
            b.def_var(acc, s);
        });
        let a = b.use_var(acc);
        let h = hreduce(b, a, |b, p, q| b.ins().fadd(p, q));
        b.def_var(sum, h);
    }
    for k in nv * 4..n {
        let off = c64(b, (k * 4) as i64);
        let v = f(b, off, types::F32);
        let a = b.use_var(sum);
        let s = b.ins().fadd(a, v);
        b.def_var(sum, s);
    }
    b.use_var(sum)
}

/// The channel of plane `item`: `item % c`.
fn channel(b: &mut FunctionBuilder, item: Value, c: usize) -> Value {
    if c == 1 {
        c64(b, 0)
    } else {
        let cv = c64(b, c as i64);
        b.ins().urem(item, cv)
    }
}

/// `base^(-beta)` for `base > 0` (lane-wise, type `ty`): exact fast paths for the common
/// exponents (square roots are correctly rounded), otherwise `exp(-beta * log(base))`.
fn pow_neg(b: &mut FunctionBuilder, ty: Type, base: Value, beta: f32) -> Value {
    let one = konst(b, ty, 1.0);
    if beta == 0.0 {
        return one;
    }
    if beta == 1.0 {
        return b.ins().fdiv(one, base);
    }
    if beta == 0.5 {
        let r = b.ins().sqrt(base);
        return b.ins().fdiv(one, r);
    }
    if beta == 0.75 {
        // base^0.75 = sqrt(base) * sqrt(sqrt(base)).
        let r = b.ins().sqrt(base);
        let q = b.ins().sqrt(r);
        let p = b.ins().fmul(r, q);
        return b.ins().fdiv(one, p);
    }
    let l = lift(b, ty, base, vmath::log);
    let nb = konst(b, ty, -beta);
    let t = b.ins().fmul(l, nb);
    lift(b, ty, t, vmath::exp)
}

/// LRN: `y = x * (bias + alpha / size * sum of x^2 over the channel window)^(-beta)`, the
/// window `c - (size-1)/2 ..= c + ceil((size-1)/2)` clipped to the channels. One plane per
/// item; the window's planes are read directly (no running sum, so no drift).
fn lrn(
    cx: &mut KernelCx,
    geo: Geo,
    alpha: f32,
    beta: f32,
    bias: f32,
    size: usize,
) -> Result<Lowered, String> {
    if geo.planes() == 0 || geo.s == 0 {
        return Ok(Lowered::default());
    }
    let (lo, hi) = ((size - 1) / 2, (size - 1).div_ceil(2));
    let Geo { c, s, .. } = geo;
    let coef = (alpha as f64 / size as f64) as f32;
    let plane = (s * 4) as i64;
    let func = cx.define_kernel("lrn", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        for_range(b, p.begin, p.end, |b, item| {
            let ch = channel(b, item, c);
            let xp = index(b, x, item, plane);
            let yp = index(b, y, item, plane);
            // Window [ch - lo, ch + hi] clipped: first = max(ch - lo, 0), count.
            let lo_v = c64(b, lo as i64);
            let zero = c64(b, 0);
            let first = b.ins().isub(ch, lo_v);
            let first = b.ins().smax(first, zero);
            let last = b.ins().iadd_imm_s(ch, hi as i64);
            let cm1 = c64(b, c as i64 - 1);
            let last = b.ins().smin(last, cm1);
            // Pointer to the window's first plane (relative to this plane).
            let delta = b.ins().isub(first, ch);
            let wp = index(b, xp, delta, plane);
            let count = b.ins().isub(last, first);
            let count = b.ins().iadd_imm_s(count, 1);
            for_lanes(b, s, |b, off, ty| {
                let acc = b.declare_var(ty);
                let z = konst(b, ty, 0.0);
                b.def_var(acc, z);
                let zero = c64(b, 0);
                for_range(b, zero, count, |b, k| {
                    let pk = index(b, wp, k, plane);
                    let v = ld(b, ty, pk, off);
                    let sq = b.ins().fmul(v, v);
                    let a = b.use_var(acc);
                    let a = b.ins().fadd(a, sq);
                    b.def_var(acc, a);
                });
                let sum = b.use_var(acc);
                let cf = konst(b, ty, coef);
                let t = b.ins().fmul(sum, cf);
                let bs = konst(b, ty, bias);
                let base = b.ins().fadd(t, bs);
                let f = pow_neg(b, ty, base, beta);
                let xv = ld(b, ty, xp, off);
                let r = b.ins().fmul(xv, f);
                st(b, r, yp, off);
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Output(0)],
        (geo.planes() as u64, geo.grain()),
        "lrn",
        0,
    ))
}

/// BatchNormalization in inference mode: `y = (x - mean) * k + B`, `k = scale / sqrt(var +
/// eps)`. With constant scale and var, `k` is computed here in f64; otherwise per plane (or
/// per lane when there are no spatial dims) in f32.
fn batch_norm(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    geo: Geo,
    eps: f32,
) -> Result<Lowered, String> {
    if geo.planes() == 0 {
        return Ok(Lowered::default());
    }
    let Geo { c, s, .. } = geo;
    // Operands: x, mean, B, then k (constant) or scale and var, then y.
    let folded = match (const_input(g, node, 1), const_input(g, node, 4)) {
        (Some(sc), Some(var)) => {
            let (sc, var) = (sc.to_f64_vec(), var.to_f64_vec());
            if sc.len() != c || var.len() != c {
                return Err("BatchNormalization parameter sizes".into());
            }
            let k: Vec<f32> = sc
                .iter()
                .zip(&var)
                .map(|(s, v)| (s / (v + eps as f64).sqrt()) as f32)
                .collect();
            Some(cx.add_const_f32("bn_k", &k)?)
        }
        _ => None,
    };
    let mut operands = vec![Operand::Input(0), Operand::Input(3), Operand::Input(2)];
    match folded {
        Some(k) => operands.push(Operand::Const(k)),
        None => operands.extend([Operand::Input(1), Operand::Input(4)]),
    }
    operands.push(Operand::Output(0));
    let fold = folded.is_some();
    // k of type ty at byte offset `off` of the parameter arrays.
    let k_at = move |b: &mut FunctionBuilder, ps: &[Value], ty: Type, off: Value| -> Value {
        if fold {
            ld(b, ty, ps[0], off)
        } else {
            let sc = ld(b, ty, ps[0], off);
            let var = ld(b, ty, ps[1], off);
            let e = konst(b, ty, eps);
            let ve = b.ins().fadd(var, e);
            let sd = b.ins().sqrt(ve);
            b.ins().fdiv(sc, sd)
        }
    };
    let nk = if fold { 1 } else { 2 };
    let func = cx.define_kernel("batch_norm", |b, p| {
        let x = buf(b, p, 0);
        let mean = buf(b, p, 1);
        let bias = buf(b, p, 2);
        let ps: Vec<Value> = (0..nk).map(|i| buf(b, p, 3 + i)).collect();
        let y = buf(b, p, 3 + nk);
        if s == 1 {
            // [N, C]: a row of C channels per item, vectorized across channels.
            let row = (c * 4) as i64;
            for_range(b, p.begin, p.end, |b, item| {
                let xp = index(b, x, item, row);
                let yp = index(b, y, item, row);
                for_lanes(b, c, |b, off, ty| {
                    let k = k_at(b, &ps, ty, off);
                    let m = ld(b, ty, mean, off);
                    let bb = ld(b, ty, bias, off);
                    let v = ld(b, ty, xp, off);
                    let t = b.ins().fsub(v, m);
                    let t = b.ins().fmul(t, k);
                    let t = b.ins().fadd(t, bb);
                    st(b, t, yp, off);
                });
            });
        } else {
            let plane = (s * 4) as i64;
            for_range(b, p.begin, p.end, |b, item| {
                let ch = channel(b, item, c);
                let off = b.ins().imul_imm_s(ch, 4);
                let k = k_at(b, &ps, types::F32, off);
                let m = ld(b, types::F32, mean, off);
                let bb = ld(b, types::F32, bias, off);
                let xp = index(b, x, item, plane);
                let yp = index(b, y, item, plane);
                for_lanes(b, s, |b, off, ty| {
                    let (k, m, bb) = (widen(b, ty, k), widen(b, ty, m), widen(b, ty, bb));
                    let v = ld(b, ty, xp, off);
                    let t = b.ins().fsub(v, m);
                    let t = b.ins().fmul(t, k);
                    let t = b.ins().fadd(t, bb);
                    st(b, t, yp, off);
                });
            });
        }
        b.ins().return_(&[]);
        Ok(())
    })?;
    let (items, grain) = if s == 1 {
        (geo.n, (2048 / c.max(1)).max(1) as u64)
    } else {
        (geo.planes(), geo.grain())
    };
    Ok(Lowered::one(
        func,
        operands,
        (items as u64, grain),
        "batch_norm",
        0,
    ))
}

/// InstanceNormalization: per plane, the mean, then the variance of `x - mean` (two passes),
/// then `(x - mean) * inv * scale[c] + B[c]`, `inv = 1 / sqrt(var + eps)`.
fn instance_norm(cx: &mut KernelCx, geo: Geo, eps: f32) -> Result<Lowered, String> {
    if geo.planes() == 0 {
        return Ok(Lowered::default());
    }
    let Geo { c, s, .. } = geo;
    let plane = (s * 4) as i64;
    let func = cx.define_kernel("instance_norm", |b, p| {
        let x = buf(b, p, 0);
        let scale = buf(b, p, 1);
        let bias = buf(b, p, 2);
        let y = buf(b, p, 3);
        for_range(b, p.begin, p.end, |b, item| {
            let ch = channel(b, item, c);
            let coff = b.ins().imul_imm_s(ch, 4);
            let xp = index(b, x, item, plane);
            let yp = index(b, y, item, plane);
            let sum = row_sum(b, s, &|b, off, ty| ld(b, ty, xp, off));
            let dn = b.ins().f32const(s as f32);
            let mean = b.ins().fdiv(sum, dn);
            let q = row_sum(b, s, &|b, off, ty| {
                let v = ld(b, ty, xp, off);
                let m = widen(b, ty, mean);
                let t = b.ins().fsub(v, m);
                b.ins().fmul(t, t)
            });
            let var = b.ins().fdiv(q, dn);
            let e = b.ins().f32const(eps);
            let ve = b.ins().fadd(var, e);
            let sd = b.ins().sqrt(ve);
            let one = b.ins().f32const(1.0);
            let inv = b.ins().fdiv(one, sd);
            let sc = ld(b, types::F32, scale, coff);
            let bb = ld(b, types::F32, bias, coff);
            for_lanes(b, s, |b, off, ty| {
                let v = ld(b, ty, xp, off);
                let (m, i, sc, bb) = (
                    widen(b, ty, mean),
                    widen(b, ty, inv),
                    widen(b, ty, sc),
                    widen(b, ty, bb),
                );
                let t = b.ins().fsub(v, m);
                let t = b.ins().fmul(t, i);
                let t = b.ins().fmul(t, sc);
                let t = b.ins().fadd(t, bb);
                st(b, t, yp, off);
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
        (geo.planes() as u64, geo.grain()),
        "instance_norm",
        0,
    ))
}
